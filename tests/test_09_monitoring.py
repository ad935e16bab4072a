"""Monitoring against the live lab: Prometheus on the monitor node (backup-01) scrapes
every component, its alert rules fire on real faults and resolve after healing, and
Alertmanager's webhook reaches the Salt master as pgha/alert/prometheus/* events, while
a post without the token is refused.

Bounds: a scrape and an evaluation every 5 s and `for: 10s` on the "down" rules put an
alert in Alertmanager 10 to 20 s after a service stops (group_wait, 5 s, delays only its
post to the webhook); the tests allow 90 s and record what they saw (FIGURES). README:
How soon an alert fires."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest
import requests
from conftest import FIGURES, HAPROXY_NODES, PG_NODES, SUPERUSER, salt_data, wait_for

from pgha_lab import faults, labpillar, tls, workload
from pgha_lab.topology import HOST_ADDRESS, NODES, SALT_API_PORT

CFG = labpillar.merged()
MONITOR = next(n for n, node in CFG["nodes"].items() if "monitor" in node["roles"])
MON = CFG["monitoring"]
PROMETHEUS = f"https://{NODES[MONITOR].address}:{MON['prometheus']['port']}"
ALERTMANAGER = f"https://{NODES[MONITOR].address}:{MON['alertmanager']['port']}"
WEBHOOK = f"https://{HOST_ADDRESS}:{SALT_API_PORT}/hook/pgha/alert"


def prometheus(path: str, **params):
    resp = requests.get(PROMETHEUS + path, params=params, timeout=10, verify=tls.client()["ca"])
    resp.raise_for_status()
    return resp.json()["data"]


def active_alerts(name: str) -> list[dict]:
    """The alerts named *name* that Alertmanager holds now (its own API)."""
    resp = requests.get(f"{ALERTMANAGER}/api/v2/alerts", params={"filter": f'alertname="{name}"', "active": "true"},
                        timeout=10, verify=tls.client()["ca"])
    resp.raise_for_status()
    return resp.json()


def firing_for(name: str, member: str, timeout: float) -> float:
    """Seconds until Alertmanager holds *name* for *member*."""
    start = time.monotonic()
    wait_for(lambda: any(a["labels"].get("member") == member for a in active_alerts(name)), timeout,
             f"{name} for {member} in Alertmanager", interval=1)
    return time.monotonic() - start


def resolved(name: str, member: str, timeout: float) -> float:
    start = time.monotonic()
    wait_for(lambda: not any(a["labels"].get("member") == member for a in active_alerts(name)), timeout,
             f"{name} for {member} resolved in Alertmanager", interval=2)
    return time.monotonic() - start


def replica() -> str:
    states = workload.member_states(PG_NODES)
    leader = workload.leader(states)
    return next(n for n in PG_NODES if n != leader)


@pytest.fixture(scope="module")
def monitored(switched, salt_cli):
    """orch.deploy's monitoring step has run: wait for Prometheus to scrape everything."""
    wait_for(lambda: (t := prometheus("/api/v1/targets", state="active")["activeTargets"])
             and all(x["health"] == "up" for x in t), 180, "every scrape target up", interval=3)
    return switched


def test_every_scrape_target_is_up_under_its_job(monitored, salt_cli):
    ret = salt_cli.run("pgha_monitor.targets", minion_tgt=MONITOR, _timeout=60)
    found = salt_data(ret, [MONITOR])[MONITOR]
    assert isinstance(found, list), found
    by_job: dict[str, list[str]] = {}
    for t in found:
        assert t["health"] == "up", t
        by_job.setdefault(t["job"], []).append(t["member"])
    everyone = sorted(n for n, node in CFG["nodes"].items())
    assert {job: sorted(m) for job, m in by_job.items()} == {
        "node": everyone, "postgres": PG_NODES, "patroni": PG_NODES, "etcd": PG_NODES,
        "haproxy": HAPROXY_NODES, "prometheus": [MONITOR], "alertmanager": [MONITOR]}
    # The exporters admit only clients with a certificate from the CA.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{NODES['pg-01'].address}:{MON['node_exporter']['port']}/metrics", timeout=5,
                     verify=tls.client()["ca"])
    # And PostgreSQL's exporter logs in as the pg_monitor-only role.
    assert prometheus("/api/v1/query", query='min(pg_up{job="postgres"})')["result"][0]["value"][1] == "1"


def test_a_stopped_postgres_exporter_fires_its_alert_reaches_salt_and_is_healed(monitored, lab, master_events):
    node = replica()
    service = MON["postgres_exporter"]["service"]
    lab.exec_(NODES[node], ["systemctl", "stop", service], check=True)
    fired = firing_for("ExporterDown", node, 90)
    # Alertmanager's webhook post became an event on the master's bus...
    _, alert = master_events.wait("pgha/alert/prometheus/ExporterDown", 60)
    assert alert["member"] == node and alert["status"] == "firing" and alert["labels"]["job"] == "postgres", alert
    # ... and its reaction applied the exporters' state there, which started it.
    _, done = master_events.wait(f"pgha/remediation/exporter/{node}/postgres", 120)
    assert done["result"] == "converged", done
    assert lab.exec_(NODES[node], ["systemctl", "is-active", service]).stdout.strip() == "active"
    cleared = resolved("ExporterDown", node, 120)
    FIGURES.append(f"postgres exporter stopped on {node}: ExporterDown in Alertmanager after {fired:.0f} s, "
                   f"resolved {cleared:.0f} s after that")


def test_a_stopped_patroni_on_a_replica_fires_patroni_down_and_resolves_after_healing(
        monitored, lab, salt_run_cli):
    node = replica()
    # Healing held off (maintenance lock) so that the alert has time to fire at all: the
    # beacon restarts Patroni within about 10 s, faster than the rule's `for: 10s`.
    held = salt_run_cli.run("pgha.maintenance", "on", "reason=test_09 PatroniDown", "timeout=300")
    assert held.returncode == 0 and held.data.get("maintenance") is True and "refused" not in held.data, held.stdout
    try:
        lab.exec_(NODES[node], ["systemctl", "stop", "patroni"], check=True)
        fired = firing_for("PatroniDown", node, 90)
    finally:
        released = salt_run_cli.run("pgha.maintenance", "off")
    assert released.data.get("maintenance") is False, released.stdout
    # The services beacon reports it again (pgha:heal:repeat) and the reaction starts it.
    cleared = resolved("PatroniDown", node, 180)
    wait_for(lambda: workload.healthy(workload.member_states(PG_NODES)), 180, "three members streaming")
    FIGURES.append(f"Patroni stopped on {node}: PatroniDown in Alertmanager after {fired:.0f} s, resolved "
                   f"{cleared:.0f} s after healing was allowed")


def test_a_leader_power_cut_fires_no_leader_only_when_the_failover_outlasts_the_rule_and_never_two_primaries(
        monitored):
    start = time.time()
    report = faults.run_fault("leader_power_cut", SUPERUSER["password"])
    assert report.healed and report.lost == [] and not report.node_split_brain, report.as_dict()
    time.sleep(15)  # one more evaluation and Alertmanager's group_wait
    window = f"{int(time.time() - start) + 30}s"
    ever = prometheus("/api/v1/query", query=f'max_over_time(ALERTS{{alertname="PatroniNoLeader",alertstate="firing"}}[{window}])')
    many = prometheus("/api/v1/query", query=f'max_over_time(ALERTS{{alertname="PatroniManyPrimaries"}}[{window}])')
    assert many["result"] == [], many
    # How long no member said it was primary, as Prometheus saw it (5 s samples).
    unled = prometheus("/api/v1/query",
                       query=f'count_over_time((absent(patroni_primary == 1))[{window}:5s])')["result"]
    seconds_unled = 5 * int(unled[0]["value"][1]) if unled else 0
    fired = bool(ever["result"])
    rule_for = 10
    # The rule needs `for: 10s` of no primary, seen on two evaluations 5 s apart.
    if seconds_unled >= rule_for + 10:
        assert fired, f"no primary for ~{seconds_unled}s but PatroniNoLeader never fired"
    elif seconds_unled < rule_for:
        assert not fired, f"PatroniNoLeader fired with only ~{seconds_unled}s without a primary"
    FIGURES.append(f"leader power cut: write gap {report.write_gap:.1f} s, ~{seconds_unled} s without a primary "
                   f"in Prometheus, PatroniNoLeader {'fired' if fired else 'did not fire'} (for: {rule_for}s)")


def test_a_webhook_post_without_the_token_is_refused_and_raises_no_alert_event(monitored, master_events):
    # About a node no test here disturbs: the power cut before this test leaves genuine
    # ExporterDown alerts (and their reactions) for the nodes it cut.
    bystander = HAPROXY_NODES[-1]
    forged = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "ExporterDown", "member": bystander, "job": "node"},
         "annotations": {"summary": "forged"}}]}
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        resp = requests.post(WEBHOOK, json=forged, headers=headers, timeout=10, verify=tls.client()["ca"])
        assert resp.status_code == 200, resp.text  # salt-api puts every post on the bus
        _, refused = master_events.wait("pgha/alert/rejected_webhook", 60)
        assert refused["problems"] == ["no valid token (Authorization: Bearer ...)"], refused
    # (Alertmanager's own, genuine notifications may arrive meanwhile: BackupTooOld.)
    assert [e for e in master_events.all("pgha/alert/prometheus/") if e.get("summary") == "forged"] == []
    assert master_events.all(f"pgha/remediation/exporter/{bystander}/") == []
    # With the token (what Alertmanager sends) the same post is taken.
    token = labpillar.raw()["monitoring"]["alertmanager"]["webhook"]["token"]
    test_alert = dict(forged, alerts=[dict(forged["alerts"][0], labels={"alertname": "PghaWebhookTest",
                                                                         "member": bystander})])
    resp = requests.post(WEBHOOK, json=test_alert, headers={"Authorization": f"Bearer {token}"}, timeout=10,
                         verify=tls.client()["ca"])
    assert resp.status_code == 200
    _, taken = master_events.wait("pgha/alert/prometheus/PghaWebhookTest", 60)
    assert taken["member"] == bystander and taken["summary"] == "forged"
    assert hashlib.sha256(f"Bearer {token}".encode()).hexdigest() not in str(taken)


def test_prometheus_targets_page_in_headless_chromium_shows_every_target_up(monitored, tmp_path):
    """The UI an operator opens (README: Monitoring), rendered by a real browser."""
    chromium = "/usr/bin/chromium"
    assert Path(chromium).exists(), "chromium missing: lab/host-setup.sh installs it"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--ignore-certificate-errors", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=15000", "--window-size=1400,1800"]
    # Debian's Prometheus ships the classic UI only (its React UI is not packaged).
    url = f"{PROMETHEUS}/classic/targets"
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    shot = tmp_path / "prometheus-targets.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, "no screenshot"
    FIGURES.append(f"Prometheus' targets page in headless Chromium: {shot}")
    expected = {"node": 6, "postgres": 3, "patroni": 3, "etcd": 3, "haproxy": 2, "prometheus": 1, "alertmanager": 1}
    for job, count in expected.items():
        assert f"{job} ({count}/{count} up)" in dom, (job, dom[-3000:])
