"""The rollout: orch.deploy from bare nodes to a checked cluster behind the VIP."""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import HAPROXY_NODES, PG_NODES, node_fingerprint, orchestrate, pg_connect, pillar_override, salt_data, sql, wait_for

from pgha_lab.topology import NODES, VIP


def test_rollout_from_bare_nodes_succeeds(deploy):
    expected = ["pgha-orch-deploy-validate", "pgha-orch-deploy-maintenance",
                "pgha-orch-deploy-sync", "pgha-orch-deploy-etcd",
                "pgha-orch-deploy-etcd-quorum", "pgha-orch-deploy-pgbackrest",
                "pgha-orch-deploy-bootstrap",
                "pgha-orch-deploy-leader", "pgha-orch-deploy-replicas",
                "pgha-orch-deploy-streaming", "pgha-orch-deploy-etcd-leader",
                "pgha-orch-deploy-backup", "pgha-orch-deploy-haproxy",
                "pgha-orch-deploy-frontend", "pgha-orch-deploy-end-to-end",
                "pgha-orch-deploy-exporters", "pgha-orch-deploy-monitoring",
                "pgha-orch-deploy-beacons", "pgha-orch-deploy-maintenance-release"]
    ran = sorted(deploy.states.values(), key=lambda s: s["__run_num__"])
    assert [s["__id__"] for s in ran] == expected
    assert all(s["result"] is True for s in ran), deploy.comments()
    print(f"orch.deploy took {deploy.seconds:.1f}s")


def test_the_rollout_deployed_debians_patroni(deploy):
    """install_method: deb, the other supported install: Debian 13's Patroni 4.0.7."""
    assert deploy.versions == {name: "4.0.7" for name in PG_NODES}, deploy.versions


def test_switching_from_deb_to_pip_is_rolling_and_loses_nothing(switched, lab):
    """orch.rolling_restart with service: true: replicas one at a time, a switchover,
    then the old leader; a client writing through the VIP all along loses nothing."""
    assert all(v.startswith("4.1.") for v in switched.after.values()), switched.after
    order = [s["__id__"] for s in sorted(switched.result.states.values(), key=lambda s: s["__run_num__"])]
    steps = [i.removeprefix("pgha-orch-rolling-restart-") for i in order
             if i.endswith("-patroni") or i.endswith("-switchover")]
    old_leader = steps[-1].removesuffix("-patroni")
    assert steps[-2:] == ["switchover", f"{old_leader}-patroni"], steps
    assert sorted(s.removesuffix("-patroni") for s in steps if s != "switchover") == PG_NODES, steps
    assert switched.acked > 100 and switched.lost == [], (switched.acked, switched.lost[:10])
    print(f"deb to pip, rolling: {switched.result.seconds:.0f}s, longest write gap {switched.write_gap}s, "
          f"{switched.acked} writes acknowledged, none lost")
    for name in PG_NODES:
        node = NODES[name]
        # The unit Patroni 4.1 documents, and patronictl on the PATH.
        assert lab.exec_(node, ["systemctl", "show", "-p", "Type", "--value", "patroni"]).stdout.strip() == "notify"
        assert lab.exec_(node, ["patronictl", "version"]).stdout.strip().endswith(switched.after[name])


def test_one_leader_and_two_streaming_replicas(cluster, salt_cli):
    data = salt_data(salt_cli.run("patroni.list", minion_tgt="pg-01"), ["pg-01"])["pg-01"]
    roles = sorted(m["role"] for m in data)
    assert roles.count("leader") == 1 and len(data) == 3
    assert all(m["state"] == "streaming" for m in data if m["role"] != "leader")
    leader = next(m for m in data if m["role"] == "leader")
    standbys = sql("SELECT application_name, state FROM pg_stat_replication ORDER BY 1",
                   host=NODES[leader["member"]].address)
    assert standbys == [(name, "streaming") for name in PG_NODES if name != leader["member"]]
    version = sql("SHOW server_version")[0][0]
    assert version.startswith("17."), version
    # Synchronous mode (the lab default): one of them confirms every commit.
    sync = sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
               host=NODES[leader["member"]].address)
    assert sync == [(1,)]


def test_etcd_has_three_healthy_members(cluster, salt_cli):
    health = salt_data(salt_cli.run("etcd3.health", minion_tgt="pg-02"), ["pg-02"])["pg-02"]
    assert health == {name: {"healthy": True, "reason": ""} for name in PG_NODES}
    members = salt_data(salt_cli.run("etcd3.members", minion_tgt="pg-02"), ["pg-02"])["pg-02"]
    assert sorted(m["name"] for m in members) == PG_NODES
    assert not any(m["is_learner"] for m in members)


def test_vip_writer_port_reaches_the_primary_and_reader_port_a_replica(cluster):
    assert sql("SELECT pg_is_in_recovery()", port=5432) == [(False,)]
    assert sql("SELECT pg_is_in_recovery()", port=5433) == [(True,)]


def test_vip_is_held_by_exactly_one_haproxy_node(cluster, lab):
    holders = [n for n in HAPROXY_NODES
               if f" {VIP}/" in lab.exec_(NODES[n], ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout]
    assert len(holders) == 1, holders


def test_original_end_to_end_scenario_through_the_vip(cluster):
    """The original deployment's E2E plan: create a database, insert, read, clean up."""
    dbname = f"e2e_{uuid.uuid4().hex[:8]}"
    with pg_connect() as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
        try:
            with pg_connect(dbname=dbname) as conn:
                conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text)")
                conn.execute("INSERT INTO orders (item) SELECT 'item ' || g FROM generate_series(1, 100) g")
                assert conn.execute("SELECT count(*) FROM orders").fetchone() == (100,)

            def replica_has_rows():
                try:
                    with pg_connect(port=5433, dbname=dbname) as conn:
                        return conn.execute("SELECT count(*), pg_is_in_recovery() FROM orders").fetchone() == (100, True)
                except Exception:  # database not replayed yet
                    return False
            wait_for(replica_has_rows, 30, "the rows on a replica through port 5433")
        finally:
            admin.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
    assert sql("SELECT count(*) FROM pg_database WHERE datname = %s", dbname) == [(0,)]


def test_highstate_after_rollout_reports_zero_changes(cluster, salt_cli):
    ret = salt_cli.run("state.highstate", minion_tgt="*", _timeout=300)
    assert ret.returncode == 0, ret.stdout + ret.stderr
    for minion, states in ret.data.items():
        changed = {s["__id__"]: s["changes"] for s in states.values() if s.get("changes")}
        failed = [s["__id__"] for s in states.values() if s.get("result") is not True]
        assert not changed and not failed, (minion, changed, failed)


def test_rerun_of_deploy_reports_zero_changes_and_restarts_nothing(cluster, salt_run_cli, salt_cli):
    def started():
        ret = salt_cli.run("cmd.run", "systemctl show -p MainPID --value patroni etcd haproxy keepalived",
                           minion_tgt="*", _timeout=60)
        return ret.data
    before = started()
    result = orchestrate(salt_run_cli, "orch.deploy", timeout=300)
    assert result.retcode == 0 and not result.failed, result.comments()
    assert result.changed == [], result.comments()
    assert started() == before


def test_missing_required_key_stops_the_rollout_before_any_node_is_touched(cluster, salt_run_cli, salt_cli):
    before = node_fingerprint(salt_cli)
    with pillar_override(salt_cli, {"pgha": {"patroni": {"superuser": {"password": None}}}}):
        result = orchestrate(salt_run_cli, "orch.deploy", timeout=120)
    assert result.retcode != 0
    validate = next(s for s in result.states.values() if s["__id__"] == "pgha-orch-deploy-validate")
    assert validate["result"] is False
    assert "pgha:patroni:superuser:password: missing" in validate["comment"]
    # failhard: no other step ran at all.
    assert [s["__id__"] for s in result.states.values() if s.get("result") is True] == []
    assert node_fingerprint(salt_cli) == before


@pytest.mark.parametrize("victim", ["pg-03"])
def test_a_repaired_node_is_brought_back_by_highstate(cluster, salt_cli, lab, victim):
    """A node whose pgha config and services are gone rejoins with one highstate."""
    node = NODES[victim]
    lab.exec_(node, ["sh", "-c", "systemctl stop patroni etcd; rm -f /etc/patroni/config.yml "
                     "/etc/default/etcd /etc/systemd/system/patroni.service.d/pgha.conf"], check=True)
    # queue: the services beacon may already have the reactor starting them again; an
    # operator's highstate waits for that run instead of being refused.
    ret = salt_cli.run("state.highstate", "queue=True", minion_tgt=victim, _timeout=300)
    assert ret.returncode == 0, ret.stdout + ret.stderr

    def streams():
        rows = salt_data(salt_cli.run("patroni.list", minion_tgt="pg-01"), ["pg-01"])["pg-01"]
        return isinstance(rows, list) and any(
            r["member"] == victim and r["state"] == "streaming" for r in rows)
    wait_for(streams, 180, f"{victim} to stream again")


def reader_status(salt_cli, node: str, member: str) -> str:
    servers = salt_cli.run("pgha_haproxy.backends", minion_tgt=node, _timeout=30).data[node]
    return next(s["status"] for s in servers if s["proxy"] == "postgres_readers" and s["server"] == member)


def test_a_replica_cut_off_from_its_primary_leaves_the_reader_pool(cluster, salt_cli, lab):
    """The reader check asks /readiness too (Patroni 4.1: replication must be streaming):
    a replica whose last lag was small but that lost its primary leaves port 5433 within
    two checks, and comes back once it streams again."""
    roles = {m["member"]: m["role"] for m in salt_data(salt_cli.run("patroni.list", minion_tgt="pg-01"),
                                                         ["pg-01"])["pg-01"]}
    leader = next(n for n, r in roles.items() if r == "leader")
    replica = next(n for n, r in roles.items() if r == "replica")  # the asynchronous one
    haproxy = HAPROXY_NODES[0]
    assert reader_status(salt_cli, haproxy, replica) == "UP"
    route = ["ip", "route", "add", "blackhole", f"{NODES[leader].address}/32"]
    lab.exec_(NODES[replica], route, check=True)
    try:
        sql("SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = %s",
            replica, host=NODES[leader].address)
        cut = time.monotonic()
        wait_for(lambda: reader_status(salt_cli, haproxy, replica) == "DOWN", 20,
                 f"{replica} to leave {haproxy}'s reader pool", interval=0.2)
        left = time.monotonic() - cut
        # Two failed checks at fastinter (500 ms) after at most one inter (1 s), plus the
        # moment Patroni needs to see the walreceiver gone.
        assert left < 6, f"{replica} left the reader pool {left:.1f}s after losing its primary"
        print(f"{replica} left the reader pool {left:.1f}s after losing its primary")
    finally:
        lab.exec_(NODES[replica], ["ip", "route", "del", "blackhole", f"{NODES[leader].address}/32"])
    wait_for(lambda: reader_status(salt_cli, haproxy, replica) == "UP", 60, f"{replica} back in the pool")
