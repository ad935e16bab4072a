"""Monitoring without the lab: the files pgha.monitoring renders for the lab's monitor
node, checked by the tools that will load them (promtool and amtool, from the monitor
node's own Debian packages: lab/prometheus-tools.sh), the alert rules against their
promtool unit tests, the scrape targets against the node list, and the webhook's
trust rules."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from unit.helpers import REPO_ROOT, load_file

FILES = REPO_ROOT / "salt/pgha/monitoring/files"
BIN = Path(REPO_ROOT / ".venv/bin")
TESTS = sorted((REPO_ROOT / "tests/unit/promtool").glob("rules_test*.yml"))


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: make unit installs it (lab/prometheus-tools.sh)")
    return str(path)


def render(minion, template: str, node: str = "backup-01", **context) -> str:
    m = minion(minion_id=node, tls=True)
    return m.modules.file.apply_template_on_contents((FILES / template).read_text(), template="jinja",
                                                     context=context, defaults={}, saltenv="base")


@pytest.fixture
def rendered(minion, tmp_path):
    """The monitor node's rules, Prometheus and Alertmanager configuration, in a folder."""
    for template, name in (("rules.yml.jinja", "pgha-rules.yml"), ("prometheus.yml.jinja", "prometheus.yml"),
                           ("alertmanager.yml.jinja", "alertmanager.yml")):
        (tmp_path / name).write_text(render(minion, template))
    return tmp_path


def run(*argv, cwd=None):
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60)


def test_promtool_passes_every_rule_unit_test(rendered):
    tests = [p.name for p in TESTS]
    for name in tests:
        shutil.copy(REPO_ROOT / "tests/unit/promtool" / name, rendered / name)
    check = run(tool("promtool"), "check", "rules", "pgha-rules.yml", cwd=rendered)
    assert check.returncode == 0, check.stdout + check.stderr
    test = run(tool("promtool"), "test", "rules", *tests, cwd=rendered)
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_alert_rule_has_a_unit_test_and_a_summary_that_names_a_member(rendered):
    rules = [r for g in yaml.safe_load((rendered / "pgha-rules.yml").read_text())["groups"] for r in g["rules"]]
    tests = [t for path in TESTS for t in yaml.safe_load(path.read_text())["tests"]]
    tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])
              if case.get("exp_alerts")}
    untested = sorted({r["alert"] for r in rules} - tested)
    assert not untested, f"alerts without a firing promtool test: {untested}"
    # Aggregations over the whole cluster name what they count instead of a member.
    cluster_wide = {"PatroniNoLeader", "EtcdQuorumAtRisk", "VipHeldByNoNode"}
    for r in rules:
        if r["alert"] not in cluster_wide:
            assert "$labels.member" in r["annotations"]["summary"], r


def test_prometheus_and_alertmanager_configurations_pass_their_own_checks(rendered):
    prom = run(tool("promtool"), "check", "config", "--syntax-only", "prometheus.yml", cwd=rendered)
    assert prom.returncode == 0, prom.stdout + prom.stderr
    # amtool reads the token file it names: give it one where the config says.
    config = yaml.safe_load((rendered / "alertmanager.yml").read_text())
    webhook = config["receivers"][0]["webhook_configs"][0]
    token = rendered / "token"
    token.write_text("t")
    webhook["http_config"]["authorization"]["credentials_file"] = str(token)
    webhook["http_config"]["tls_config"]["ca_file"] = str(token)
    (rendered / "am.yml").write_text(yaml.safe_dump(config))
    am = run(tool("amtool"), "check-config", "am.yml", cwd=rendered)
    assert am.returncode == 0, am.stdout + am.stderr


def test_scrape_targets_follow_the_node_list_and_each_job_names_its_members(minion, rendered):
    config = yaml.safe_load((rendered / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    members = lambda job: sorted(sc["labels"]["member"] for sc in jobs[job]["static_configs"])  # noqa: E731
    assert members("node") == ["backup-01", "haproxy-01", "haproxy-02", "pg-01", "pg-02", "pg-03"]
    for job in ("postgres", "patroni", "etcd"):
        assert members(job) == ["pg-01", "pg-02", "pg-03"], job
    assert members("haproxy") == ["haproxy-01", "haproxy-02"]
    assert jobs["etcd"]["scheme"] == "https" and jobs["etcd"]["tls_config"]["cert_file"] == "/etc/pgha/tls/node.crt"
    assert jobs["patroni"]["static_configs"][0]["targets"] == ["198.51.100.120:8008"]
    # A node added to the pillar is scraped after the next highstate: nothing else to do.
    m = minion({"nodes": {"pg-04": {"address": "198.51.100.123", "roles": ["postgres"]}}},
               minion_id="backup-01", tls=True)
    text = m.modules.file.apply_template_on_contents((FILES / "prometheus.yml.jinja").read_text(),
                                                     template="jinja", context={}, defaults={}, saltenv="base")
    jobs = {j["job_name"]: j for j in yaml.safe_load(text)["scrape_configs"]}
    assert "198.51.100.123:9187" in [t for sc in jobs["postgres"]["static_configs"] for t in sc["targets"]]


def test_alerts_go_to_the_salt_webhook_with_the_token_from_a_file(rendered):
    config = yaml.safe_load((rendered / "alertmanager.yml").read_text())
    hook = config["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "https://198.51.100.1:8000/hook/pgha/alert" and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"] == {"type": "Bearer",
                                                    "credentials_file": "/etc/prometheus/pgha-webhook.token"}
    assert "lab-webhook" not in (rendered / "alertmanager.yml").read_text()


def test_a_postgres_node_renders_its_exporters_and_a_role_with_pg_monitor_only(minion):
    high = minion(minion_id="pg-02", tls=True).modules.state.show_highstate()
    assert isinstance(high, dict), high
    for state_id in ("pgha-monitoring-exporters-role-present",
                     "pgha-monitoring-exporters-service-prometheus-postgres-exporter-running",
                     "pgha-monitoring-exporters-service-textfile-timer-running"):
        assert state_id in high, state_id
    assert "pgha-monitoring-server-service-prometheus-running" not in high
    defaults = render(minion, "postgres_exporter.default.jinja", node="pg-02")
    assert "postgresql://pgha_monitor:lab-monitor-2e8b51@:5432/postgres?host=%2Fvar%2Frun%2Fpostgresql" in defaults
    monitor = load_file("salt/_modules/pgha_monitor.py")
    statements, changes = monitor.role_sql("pgha_monitor", "it's", {"exists": False})
    assert statements == ["CREATE ROLE \"pgha_monitor\" LOGIN PASSWORD 'it''s'", 'GRANT pg_monitor TO "pgha_monitor"']
    statements, changes = monitor.role_sql("pgha_monitor", "pw", {"exists": True, "login": True, "extra": ["superuser"],
                                                                  "password_ok": True, "pg_monitor": True})
    assert statements == ['ALTER ROLE "pgha_monitor" LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS']
    assert monitor.role_sql("pgha_monitor", "pw", {"exists": True, "login": True, "extra": [],
                                                   "password_ok": True, "pg_monitor": True}) == ([], {})


def test_the_webhook_takes_only_a_post_with_the_token_and_well_formed_alerts():
    event = load_file("salt/_modules/pgha_event.py")
    nodes = {"pg-01": {}, "pg-02": {}}
    good = hashlib.sha256(b"Bearer s3cret").hexdigest()
    post = {"alerts": [{"status": "firing", "labels": {"alertname": "PatroniDown", "member": "pg-02", "job": "patroni",
                                                        "evil": "x" * 5000},
                        "annotations": {"summary": "Patroni on pg-02 does not answer"}}]}
    found, alerts = event.webhook_problems(good, "s3cret", post, nodes)
    assert found == [] and alerts[0]["name"] == "PatroniDown" and alerts[0]["member"] == "pg-02"
    assert "evil" not in alerts[0]["labels"]
    assert event.webhook_problems(hashlib.sha256(b"Bearer wrong").hexdigest(), "s3cret", post, nodes)[0]
    assert event.webhook_problems(hashlib.sha256(b"").hexdigest(), "s3cret", post, nodes)[0]
    assert event.webhook_problems(good, None, post, nodes)[0] == [
        "the master has no pgha:monitoring:alertmanager:webhook:token"]
    forged = {"alerts": [{"status": "firing", "labels": {"alertname": "x/../../salt/beacon"}}]}
    assert "not a plain name" in event.webhook_problems(good, "s3cret", forged, nodes)[0][0]
    stranger = {"alerts": [{"status": "firing", "labels": {"alertname": "ExporterDown", "member": "'*'"}}]}
    assert event.webhook_problems(good, "s3cret", stranger, nodes)[1][0]["member"] is None


def test_the_servers_restart_too_slowly_for_systemds_start_limit_from_the_packages_first_start(minion):
    """Debian's units restart 0.1 s after a failure: the packages' first start (Debian's
    defaults, with which Alertmanager exits) used up systemd's start limit, and pgha's own
    start was refused. The drop-in is in place before the package is installed."""
    low = minion(minion_id="backup-01", tls=True).modules.state.show_lowstate()
    assert isinstance(low, list), low
    chunks = {chunk["__id__"]: chunk for chunk in low}
    package = chunks["pgha-monitoring-server-package-installed"]
    for service in ("prometheus", "prometheus-alertmanager"):
        dropin = chunks[f"pgha-monitoring-server-package-{service}-dropin"]
        assert dropin["name"] == f"/etc/systemd/system/{service}.service.d/pgha.conf"
        assert "[Service]\nRestartSec=5\n" in dropin["contents"]
        assert {"file": dropin["__id__"]} in package["require"]
