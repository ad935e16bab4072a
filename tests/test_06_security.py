"""Hardening on the live lab: TLS and authentication on every hop, secrets nowhere they
should not be, and a bad pillar rejected before any node changes."""

from __future__ import annotations

import functools
import json
import uuid

import psycopg
import pytest
import requests
from conftest import (
    CONNECT_PROBE,
    HAPROXY_NODES,
    LAB_MINIONS,
    PG_NODES,
    PILLAR,
    SUPERUSER,
    node_fingerprint,
    orchestrate,
    pg_connect,
    pillar_override,
    probe_from,
    salt_data,
    sql,
    wait_for,
    wait_healthy,
)

from pgha_lab import labpillar, tls, workload
from pgha_lab.topology import NODES, VIP

# The lab pillar over the formula's defaults: the values the formula uses.
CFG = labpillar.merged()


@functools.cache
def secrets() -> dict:
    """Every secret the lab pillar holds, by name: passwords and the nodes' TLS keys."""
    found = {}

    def walk(value, path):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, path + (key,))
        elif path and path[-1] in ("password", "root_password", "patroni_password", "cipher_pass") and value:
            found[":".join(path)] = str(value)
    walk(PILLAR, ("pgha",))
    for name in NODES:
        key = (tls.TLS_DIR / f"node-{name}.key").read_text().splitlines()
        found[f"tls key of {name}"] = key[1]  # a line of the key's base64 body
        backup_key = tls.TLS_DIR / f"pgbackrest-{name}.key"
        if backup_key.exists():
            found[f"pgbackrest key of {name}"] = backup_key.read_text().splitlines()[1]
    assert len(found) >= 5 + len(NODES)
    return found


def leaks(text: str) -> list[str]:
    return sorted(name for name, secret in secrets().items() if secret in text)


# ---- etcd: TLS with client certificates -------------------------------------------------

def test_etcd_refuses_plain_text_and_clients_without_a_certificate(cluster):
    etcd = f"{NODES['pg-01'].address}:2379"
    client = tls.client()
    # Plain text on the TLS port: etcd answers 400 (or drops the connection), never data.
    try:
        plain = requests.post(f"http://{etcd}/v3/maintenance/status", json={}, timeout=3)
        assert plain.status_code == 400 and "header" not in plain.text
    except requests.ConnectionError:
        pass
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(f"https://{etcd}/v3/maintenance/status", json={}, timeout=3,
                      verify=client["ca"])
    # The same request with the lab's client certificate is served.
    ok = requests.post(f"https://{etcd}/v3/maintenance/status", json={}, timeout=3,
                       verify=client["ca"], cert=(client["cert"], client["key"]))
    assert ok.status_code == 200 and "header" in ok.json()


# ---- Patroni's REST API: HTTPS, authentication for what changes things -----------------

def test_switchover_needs_credentials_and_works_with_them(cluster):
    states = workload.member_states(PG_NODES)
    leader = workload.leader(states)
    roles = {m["name"]: m["role"] for m in workload.rest_get(leader, "/cluster").json()["members"]}
    candidate = next(n for n, role in roles.items() if role == "sync_standby")
    url = f"https://{NODES[leader].address}:8008/switchover"
    body = {"leader": leader, "candidate": candidate}
    denied = requests.post(url, json=body, timeout=10, verify=tls.client()["ca"])
    assert denied.status_code == 401
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{NODES[leader].address}:8008/health", timeout=3, verify=True)
    rest = PILLAR["patroni"]["restapi"]
    done = requests.post(url, json=body, timeout=60, verify=tls.client()["ca"],
                         auth=(rest.get("username", "patroni"), rest["password"]))
    assert done.status_code == 200, done.text
    wait_for(lambda: workload.healthy(s := workload.member_states(PG_NODES))
             and workload.leader(s) == candidate, 120, f"{candidate} leading")


# ---- PostgreSQL: TLS, scram, and only the networks pillar names ------------------------

def test_postgres_uses_tls_and_refuses_a_wrong_password(cluster):
    with pg_connect() as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        hba = conn.execute("SELECT type, auth_method FROM pg_hba_file_rules").fetchall()
    assert all(method in ("scram-sha-256", "reject") for _, method in hba), hba
    assert {t for t, _ in hba if t != "local"} == {"hostssl"}
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pg_connect(password="not-the-password").close()
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry|SSL off"):
        pg_connect(sslmode="disable").close()


def test_postgres_refuses_a_network_not_in_pillar(cluster):
    """From 198.51.100.250 (no pillar network covers it): pg_hba refuses it on a node,
    and HAProxy, behind which PostgreSQL cannot see the client, refuses it on the VIP."""
    targets = [NODES["pg-01"].address, VIP]
    out = probe_from("198.51.100.250", CONNECT_PROBE, SUPERUSER["password"], *targets)
    answers = dict(line.split(" ", 1) for line in out.splitlines())
    assert 'no pg_hba.conf entry for host "198.51.100.250"' in answers[NODES["pg-01"].address], out
    assert answers[VIP] != "CONNECTED" and ("Connection reset by peer" in answers[VIP]
                                            or "server closed the connection" in answers[VIP]), out


# ---- secrets ----------------------------------------------------------------------------

def test_no_file_any_user_can_read_holds_a_secret(cluster, lab):
    """Searched as `nobody`: only what any local user could actually read counts."""
    needles = "\n".join(secrets().values())
    offenders = {}
    for name in LAB_MINIONS:
        proc = lab.exec_(NODES[name], ["sh", "-c",
                                       "cat > /tmp/pgha-needles && chmod 0644 /tmp/pgha-needles && "
                                       "runuser -u nobody -- sh -c 'find / -xdev -type f -readable "
                                       "-size -2M ! -path /tmp/pgha-needles -print0 2>/dev/null | "
                                       "xargs -0 -r grep -lF -f /tmp/pgha-needles 2>/dev/null'; "
                                       "rm -f /tmp/pgha-needles"], input=needles)
        if proc.stdout.strip():
            offenders[name] = proc.stdout.split()
    assert offenders == {}


def test_secret_files_are_private_to_their_service(cluster, lab):
    expected = {
        "pg-01": {"/etc/patroni/config.yml": "600 postgres:postgres",
                  "/etc/pgha/tls/node.key": "640 root:pgha-tls"},
        "haproxy-01": {"/etc/haproxy/haproxy.cfg": "640 root:haproxy",
                       "/etc/pgha/tls/node.pem": "640 root:pgha-tls"},
        "backup-01": {"/etc/pgbackrest.conf": "640 root:postgres",
                      "/etc/pgha/tls/pgbackrest.key": "640 root:pgha-tls"},
    }
    for name, files in expected.items():
        for path, mode in files.items():
            out = lab.exec_(NODES[name], ["stat", "-c", "%a %U:%G", path]).stdout.strip()
            assert out == mode, f"{name}:{path}"


def test_state_output_events_and_logs_carry_no_secret(cluster, salt_cli, salt_run_cli, lab,
                                                      master_events):
    marker = uuid.uuid4().hex
    # A highstate that changes files holding secrets (a hand edit to restore), verbosely.
    for name in ("pg-02", "haproxy-01"):
        path = "/etc/patroni/config.yml" if name.startswith("pg") else "/etc/haproxy/haproxy.cfg"
        lab.exec_(NODES[name], ["sh", "-c", f"echo '# {marker}' >> {path}"])
    out = ""
    for name in ("pg-02", "haproxy-01"):
        ret = salt_cli.run("state.highstate", minion_tgt=name, _timeout=300)
        assert ret.returncode == 0, ret.stdout + ret.stderr
        out += ret.stdout + ret.stderr
    assert marker not in out  # file diffs are not shown at all
    assert leaks(out) == []
    status = salt_run_cli.run("pgha.status", _timeout=90)
    assert leaks(status.stdout + status.stderr) == []
    config = salt_cli.run("pgha.config", minion_tgt="pg-01", _timeout=60)
    assert "******" in config.stdout and leaks(config.stdout) == []
    master_events.all("")  # what is on its way now
    bus = json.dumps([[tag, data] for _, tag, data in master_events.snapshot()], default=str)
    assert "state.highstate" in bus or "highstate" in bus
    assert leaks(bus) == []
    for name in ("pg-02", "haproxy-01"):
        log = lab.exec_(NODES[name], ["sh", "-c", "cat /var/log/salt/minion 2>/dev/null"]).stdout
        assert leaks(log) == [], name


# ---- pillar validation: one message naming the key, and no node touched ---------------

# Every rule, and its message, is checked without the lab (tests/unit/test_validation.py,
# the same table and more). Live, one rule per kind shows that orch.deploy stops at
# validation before it touches any node: a node, a Patroni timing, the front end.
BAD_PILLARS = {
    "duplicate-address": ({"nodes": {"haproxy-02": {"address": "198.51.100.11"}}},
                          "pgha:nodes:haproxy-02:address: 198.51.100.11 is also haproxy-01's address"),
    "timing": ({"patroni": {"dcs": {"retry_timeout": 6}}},
               "pgha:patroni:dcs: loop_wait + 2*retry_timeout = 22 exceeds ttl 20"),
    "hetzner-target-ambiguous": (
        {"frontend": "hetzner", "hetzner": {"load_balancer": {
            "public_interface": True, "proxy_protocol": False,
            "targets": [{"server": "haproxy-01", "ip": "203.0.113.7"}]}}},
        "pgha:hetzner:load_balancer:targets[0]: has ip, server; give exactly one of server, "
        "label_selector or ip"),
}


@pytest.fixture(scope="module")
def fingerprint_before(switched, salt_cli):
    wait_healthy(salt_cli)
    return node_fingerprint(salt_cli)


@pytest.mark.parametrize("rule", list(BAD_PILLARS))
def test_a_bad_pillar_is_rejected_before_any_node_changes(rule, salt_cli, salt_run_cli,
                                                          fingerprint_before):
    bad, message = BAD_PILLARS[rule]
    with pillar_override(salt_cli, {"pgha": bad}):
        result = orchestrate(salt_run_cli, "orch.deploy", timeout=120)
    assert result.retcode != 0
    validate = next(s for s in result.states.values() if s["__id__"] == "pgha-orch-deploy-validate")
    assert validate["result"] is False and message in validate["comment"], validate["comment"]
    # One message for the one mistake, and failhard: nothing else ran.
    assert validate["comment"].count("\n- ") == 1, validate["comment"]
    assert [s["__id__"] for s in result.states.values() if s.get("result") is True] == []
    assert node_fingerprint(salt_cli) == fingerprint_before


def test_highstate_with_a_bad_pillar_stops_at_validation(salt_cli, fingerprint_before):
    with pillar_override(salt_cli, {"pgha": {"keepalived": {"vip": "10.9.8.7"}}}):
        ret = salt_cli.run("state.highstate", minion_tgt="haproxy-01", _timeout=180)
    states = salt_data(ret, ["haproxy-01"])["haproxy-01"]
    assert ret.returncode != 0 and isinstance(states, dict)
    ran = {v["__id__"]: v for v in states.values()}
    assert ran["pgha-validate-pillar-validated"]["result"] is False
    assert "pgha:keepalived:vip: 10.9.8.7" in ran["pgha-validate-pillar-validated"]["comment"]
    assert not [sid for sid, v in ran.items() if v["result"] is True or v["changes"]]
    assert node_fingerprint(salt_cli) == fingerprint_before


def test_haproxy_stats_need_tls_and_the_password(cluster):
    address, port = NODES[HAPROXY_NODES[0]].address, CFG["haproxy"]["stats"]["port"]
    url = f"https://{address}:{port}/"
    ca = tls.client()["ca"]
    assert requests.get(url, timeout=5, verify=ca).status_code == 401
    stats = CFG["haproxy"]["stats"]
    ok = requests.get(url + ";csv", timeout=5, verify=ca, auth=(stats["username"], stats["password"]))
    assert ok.status_code == 200 and "postgres_writer" in ok.text
    # Plain HTTP gets no page (the listener speaks TLS only).
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://{address}:{port}/", timeout=5)


def test_haproxy_stats_and_health_listen_on_the_cluster_network_only(cluster, lab):
    for name in HAPROXY_NODES:
        listening = lab.exec_(NODES[name], ["ss", "-Hltn"]).stdout.split()
        for port in (CFG["haproxy"]["stats"]["port"], CFG["haproxy"]["health"]["port"]):
            bound = sorted(a for a in listening if a.endswith(f":{port}"))
            assert bound == [f"{NODES[name].address}:{port}"], (name, port, bound)


def test_haproxy_checks_verify_each_members_name(cluster, lab):
    cfg = lab.exec_(NODES[HAPROXY_NODES[0]], ["cat", "/etc/haproxy/haproxy.cfg"]).stdout
    for name in PG_NODES:
        assert f"server {name} " in cfg and f"verify required ca-file /etc/pgha/tls/ca.crt verifyhost {name}" in cfg


def test_replication_verifies_the_primarys_certificate(cluster):
    states = workload.member_states(PG_NODES)
    leader = workload.leader(states)
    for name in PG_NODES:
        if name == leader:
            continue
        conninfo = sql("SELECT conninfo FROM pg_stat_wal_receiver", host=NODES[name].address)[0][0]
        assert "sslmode=verify-full" in conninfo and "sslrootcert=/etc/pgha/tls/ca.crt" in conninfo, conninfo
        assert f"host={NODES[leader].address}" in conninfo, conninfo


# ---- trust between minions ----------------------------------------------------------------

POSTGRES_SECRETS = ("pgha:patroni:superuser:password", "pgha:patroni:replication:password",
                    "pgha:patroni:rewind:password", "pgha:patroni:restapi:password",
                    "pgha:etcd:root_password", "pgha:etcd:patroni_password")


def test_a_haproxy_node_holds_no_postgres_or_etcd_secret(cluster, salt_cli):
    ret = salt_cli.run("pillar.items", minion_tgt="haproxy-01", _timeout=60)
    assert ret.returncode == 0, ret.stderr
    held = leaks(ret.stdout)
    assert not [name for name in held if name in POSTGRES_SECRETS], held
    # It has what its role needs: the stats password, its own key and no other's.
    assert "pgha:haproxy:stats:password" in held and "tls key of haproxy-01" in held
    assert not [name for name in held if name.startswith("tls key of") and name != "tls key of haproxy-01"]
    # And the postgres nodes have theirs.
    assert set(POSTGRES_SECRETS) <= set(leaks(salt_cli.run("pillar.items", minion_tgt="pg-01").stdout))


def test_only_the_backup_node_holds_the_repositorys_passphrase(cluster, salt_cli):
    passphrase = "pgha:backup:repo:cipher_pass"
    backup = leaks(salt_cli.run("pillar.items", minion_tgt="backup-01", _timeout=60).stdout)
    assert passphrase in backup and "pgbackrest key of backup-01" in backup
    assert not [name for name in backup if name in POSTGRES_SECRETS], backup
    for node in ("pg-01", "haproxy-01"):
        assert passphrase not in leaks(salt_cli.run("pillar.items", minion_tgt=node, _timeout=60).stdout), node


def test_etcd_refuses_a_haproxy_nodes_certificate(cluster):
    """haproxy-01's certificate is signed by the same CA, but only for serving."""
    etcd = f"https://{NODES['pg-01'].address}:2379/v3/maintenance/status"
    ca = tls.client()["ca"]
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(etcd, json={}, timeout=5, verify=ca,
                      cert=(str(tls.TLS_DIR / "node-haproxy-01.crt"), str(tls.TLS_DIR / "node-haproxy-01.key")))
    ok = requests.post(etcd, json={}, timeout=5, verify=ca, cert=(tls.client()["cert"], tls.client()["key"]))
    assert ok.status_code == 200 and "header" in ok.json()


def test_pgha_config_never_returns_secrets_to_a_remote_caller(cluster, salt_cli):
    ret = salt_cli.run("pgha.config", "redact=False", minion_tgt="pg-01", _timeout=60)
    assert ret.returncode == 0, ret.stderr
    assert "******" in ret.stdout and leaks(ret.stdout) == []


def fire_from(salt_cli, minion: str, tag: str, data: dict, batched: bool) -> None:
    """Make *minion* send an event to the master: as a plain event (event.send), or
    batched the way beacons are (the minion forwards them as they are)."""
    if batched:
        ret = salt_cli.run("event.fire", json.dumps({"beacons": [{"tag": tag, "data": data}]}),
                           "__beacons_return", minion_tgt=minion, _timeout=30)
    else:
        ret = salt_cli.run("event.send", tag, json.dumps(data), minion_tgt=minion, _timeout=30)
    assert ret.returncode == 0, ret.stdout + ret.stderr


def test_events_forged_by_a_haproxy_node_run_nothing_and_are_reported(cluster, salt_cli, master_events):
    """haproxy-01 claims to be pg-02 and names pg-03: unsigned, signed with its own key,
    and with a target pattern, a newline and YAML in its values. Nothing runs anywhere;
    every one is refused with a rejected_event alert."""
    before = node_fingerprint(salt_cli)
    claim = "salt/beacon/pg-02/pgha_patroni/state"
    forged = {"id": "pg-02", "member": "pg-03", "state": "stopped", "role": "replica"}
    fire_from(salt_cli, "haproxy-01", claim, forged, batched=False)
    signed = salt_cli.run("pgha_event.sign", claim, json.dumps(forged), minion_tgt="haproxy-01").data["haproxy-01"]
    fire_from(salt_cli, "haproxy-01", claim, dict(signed, id="pg-02"), batched=True)
    fire_from(salt_cli, "haproxy-01", claim, signed, batched=True)
    nasty = "patroni\n  - tgt: '*'\n  - sls: [pgha.patroni.service.running]"
    fire_from(salt_cli, "haproxy-01", "salt/beacon/'*'/pgha_services/patroni",
              {"id": "'*'", "service": nasty, "running": False}, batched=True)

    for count in range(1, 5):
        master_events.wait("pgha/alert/rejected_event", 90,
                           lambda d, count=count: len(master_events.all("pgha/alert/rejected_event")) >= count)
    alerts = master_events.all("pgha/alert/rejected_event")
    by_sender = [a["sender"] for a in alerts]
    # The plain event carries the id the master authenticated; the signed one, the key
    # that really signed it: both name haproxy-01. The unsigned batch is "unknown".
    assert sum("haproxy-01" in s for s in by_sender) >= 2, alerts
    assert all(a["problems"] for a in alerts)
    assert master_events.all("pgha/remediation/") == []
    assert node_fingerprint(salt_cli) == before

