"""Day-2 operations from the master: modules, states and orchestrations, on the live lab."""

from __future__ import annotations

import json

import pytest
from conftest import (
    PG_NODES,
    PILLAR,
    SUPERUSER,
    orchestrate,
    pg_connect,
    pillar_override,
    salt_data,
    sql,
    wait_for,
    wait_for_minions,
    wait_healthy,
)

from pgha_lab import lab as lab_api
from pgha_lab import node as lab_node
from pgha_lab.topology import NODES, VIP


def call(salt_cli, fun, *args, minion="pg-01", timeout=120):
    """Run one module function on one minion: (returncode, data, stdout)."""
    ret = salt_cli.run(fun, *args, minion_tgt=minion, _timeout=timeout)
    return ret.returncode, salt_data(ret, [minion])[minion], ret.stdout + ret.stderr


def leader(salt_cli):
    return call(salt_cli, "patroni.leader")[1]


# ---- the patroni module ----------------------------------------------------------------

def test_patroni_list_is_like_patronictl(cluster, salt_cli):
    rc, rows, _ = call(salt_cli, "patroni.list")
    assert rc == 0
    assert sorted(r["member"] for r in rows) == PG_NODES
    for row in rows:
        assert set(row) == {"member", "host", "role", "state", "timeline", "lag", "receive_lag",
                            "replay_lag", "pending_restart", "tags"}
        assert row["host"] == NODES[row["member"]].address
        # Patroni 4.1 reports receive and replay lag for every replica.
        if row["role"] != "leader":
            assert isinstance(row["receive_lag"], int) and isinstance(row["replay_lag"], int), row
    assert len({r["timeline"] for r in rows}) == 1


def test_patroni_read_functions(cluster, salt_cli):
    rc, data, _ = call(salt_cli, "patroni.cluster")
    assert rc == 0 and data["scope"] == "pgha"
    rc, who, _ = call(salt_cli, "patroni.leader")
    assert who in PG_NODES
    rc, health, _ = call(salt_cli, "patroni.health", minion="pg-02")
    assert rc == 0 and health["healthy"] is True and health["state"] == "running"
    rc, history, _ = call(salt_cli, "patroni.history")
    assert rc == 0 and isinstance(history, list)
    assert all({"timeline", "lsn", "new_leader"} <= set(h) for h in history)
    rc, config, _ = call(salt_cli, "patroni.config_get")
    assert rc == 0 and config["ttl"] == 20 and config["synchronous_mode"] is True


def test_unreachable_api_gives_a_clear_error_without_traceback(cluster, salt_cli):
    rc, _, out = call(salt_cli, "patroni.cluster", "host=198.51.100.99")
    assert rc != 0
    assert "Patroni REST API at https://198.51.100.99:8008 is unreachable" in out
    assert "Traceback" not in out


def test_switchover_to_an_unknown_member_fails_with_patronis_reason(cluster, salt_cli):
    rc, _, out = call(salt_cli, "patroni.switchover", f"leader={leader(salt_cli)}", "candidate=pg-09")
    assert rc != 0
    assert "returned HTTP 412" in out or "returned HTTP 400" in out, out
    assert "pg-09" in out or "candidate" in out.lower(), out
    assert "Traceback" not in out


def test_bad_arguments_raise_invocation_errors(cluster, salt_cli):
    for fun, args in (("patroni.failover", []), ("patroni.config_patch", ["[]"]),
                      ("patroni.switchover", ["leader="]), ("patroni.reinit", ["pg-09"])):
        rc, _, out = call(salt_cli, fun, *args)
        assert rc != 0, (fun, out)
        assert "Traceback" not in out


def test_reinit_of_the_leader_is_refused_by_patroni(cluster, salt_cli):
    rc, _, out = call(salt_cli, "patroni.reinit", leader(salt_cli))
    assert rc != 0 and "returned HTTP 503" in out, out


def test_restart_pending_only_does_nothing_without_a_pending_restart(cluster, salt_cli):
    replica = next(m for m in PG_NODES if m != leader(salt_cli))
    rc, data, _ = call(salt_cli, "patroni.restart", replica, "pending_only=True")
    assert rc == 0 and data["restarted"] is False


def test_reload_pause_and_resume(cluster, salt_cli):
    rc, data, _ = call(salt_cli, "patroni.reload")
    assert rc == 0 and data["reloaded"] is True
    try:
        rc, data, _ = call(salt_cli, "patroni.pause")
        assert rc == 0 and data == {"paused": True}
        assert call(salt_cli, "patroni.config_get")[1].get("pause") is True
    finally:
        rc, data, _ = call(salt_cli, "patroni.resume")
    assert rc == 0 and data == {"paused": False}
    assert not call(salt_cli, "patroni.config_get")[1].get("pause")


# ---- the etcd3 module ------------------------------------------------------------------

def test_etcd_status_and_members(cluster, salt_cli):
    rc, status, _ = call(salt_cli, "etcd3.status")
    assert rc == 0
    assert status["leader_name"] in PG_NODES and status["db_size"] > 0 and status["raft_index"] > 0
    assert call(salt_cli, "etcd3.alarms")[1] == []
    rc, defrag, _ = call(salt_cli, "etcd3.defragment", "member=pg-03")
    assert rc == 0 and set(defrag) == {"pg-03"}


def test_etcd_learner_add_and_remove(cluster, salt_cli):
    rc, added, out = call(salt_cli, "etcd3.member_add", "address=198.51.100.200")
    assert rc == 0, out
    assert added["is_learner"] is True and added["peer_urls"] == ["https://198.51.100.200:2380"]
    try:
        members = call(salt_cli, "etcd3.members")[1]
        assert added["id"] in [m["id"] for m in members]
        # A learner that never started cannot be promoted: etcd says why.
        rc, _, out = call(salt_cli, "etcd3.member_promote", added["id"])
        assert rc != 0 and "etcd POST" in out and "Traceback" not in out
    finally:
        rc, removed, out = call(salt_cli, "etcd3.member_remove", added["id"])
    assert rc == 0, out
    assert added["id"] not in [m["id"] for m in call(salt_cli, "etcd3.members")[1]]


def test_etcd_member_remove_of_an_unknown_id_fails(cluster, salt_cli):
    rc, _, out = call(salt_cli, "etcd3.member_remove", "deadbeefdeadbeef")
    assert rc != 0 and "etcd has no member 'deadbeefdeadbeef'" in out


def test_etcd_move_leader(cluster, salt_cli):
    before = call(salt_cli, "etcd3.status")[1]["leader_name"]
    target = next(n for n in PG_NODES if n != before)
    rc, moved, out = call(salt_cli, "etcd3.move_leader", f"to={target}")
    assert rc == 0 and moved == {"moved": True, "leader": target, "previous": before}, out
    assert call(salt_cli, "etcd3.status")[1]["leader_name"] == target


# ---- states ----------------------------------------------------------------------------

DYNAMIC = "pgha-patroni-config-dynamic-matches-pillar"


def state_ret(ret, minion="pg-01", state_id=DYNAMIC):
    """The return of one state (by its ID) from a state.apply run."""
    data = salt_data(ret, [minion])[minion]
    assert isinstance(data, dict), ret.stdout
    return next(s for s in data.values() if s["__id__"] == state_id)


def test_dynamic_config_predicts_applies_only_the_diff_and_then_rests(cluster, salt_cli):
    """On the leader's minion, which keeps the shared configuration in a highstate."""
    at = leader(salt_cli)
    drift = {"loop_wait": 9, "postgresql": {"parameters": {"work_mem": "8MB"}}}
    assert call(salt_cli, "patroni.config_patch", json.dumps(drift))[0] == 0
    predicted = state_ret(salt_cli.run("state.apply", "pgha.patroni.config.dynamic", "test=True",
                                       minion_tgt=at), minion=at)
    assert predicted["result"] is None
    assert predicted["changes"] == {"loop_wait": {"old": 9, "new": 10},
                                    "postgresql.parameters.work_mem": {"old": "8MB", "new": None}}
    # A replica's run leaves it to the leader's.
    replica = next(n for n in PG_NODES if n != at)
    elsewhere = state_ret(salt_cli.run("state.apply", "pgha.patroni.config.dynamic", minion_tgt=replica),
                          minion=replica)
    assert elsewhere["result"] is True and elsewhere["changes"] == {}
    assert f"kept by the leader's run ({at})" in elsewhere["comment"]
    applied = state_ret(salt_cli.run("state.apply", "pgha.patroni.config.dynamic", minion_tgt=at), minion=at)
    assert applied["result"] is True and applied["changes"] == predicted["changes"]
    config = call(salt_cli, "patroni.config_get")[1]
    assert config["loop_wait"] == 10 and "work_mem" not in config["postgresql"]["parameters"]
    again = state_ret(salt_cli.run("state.apply", "pgha.patroni.config.dynamic", minion_tgt=at), minion=at)
    assert again["result"] is True and again["changes"] == {}


def test_a_failover_to_an_asynchronous_replica_needs_allow_data_loss(cluster, salt_cli):
    roles = {r["member"]: r["role"] for r in call(salt_cli, "patroni.list")[1]}
    asynchronous = next(n for n, role in roles.items() if role == "replica")
    rc, _, out = call(salt_cli, "patroni.failover", f"candidate={asynchronous}")
    assert rc != 0 and "can lose acknowledged commits" in out and "allow_data_loss" in out, out
    assert call(salt_cli, "patroni.leader")[1] == next(n for n, r in roles.items() if r == "leader")


# ---- orchestrations --------------------------------------------------------------------

def test_switchover_moves_the_leader_and_writes_follow(cluster, salt_run_cli, salt_cli):
    before = leader(salt_cli)
    # The asynchronous replica: in synchronous mode Patroni only promotes a synchronous
    # standby, so the switchover has to make it one first.
    roles = {r["member"]: r["role"] for r in call(salt_cli, "patroni.list")[1]}
    candidate = next(n for n in PG_NODES if roles[n] == "replica")
    result = orchestrate(salt_run_cli, "orch.switchover", pillar={"candidate": candidate}, timeout=240)
    assert result.retcode == 0 and not result.failed, result.comments()
    assert leader(salt_cli) == candidate != before
    assert sql("SELECT host(inet_server_addr()), pg_is_in_recovery()") == [(NODES[candidate].address, False)]
    # And HAProxy on both nodes sends writes only there (the orchestration checked it too).
    assert "pgha-orch-switchover-routing" not in result.changed
    # The synchronous standby count is back to what pillar says.
    assert call(salt_cli, "patroni.config_get")[1]["synchronous_node_count"] == \
        PILLAR.get("patroni", {}).get("dcs", {}).get("synchronous_node_count", 1)


def test_switchover_refuses_an_unknown_candidate(cluster, salt_run_cli):
    result = orchestrate(salt_run_cli, "orch.switchover", pillar={"candidate": "pg-09"}, timeout=120)
    assert result.retcode != 0
    assert "candidate pg-09 is not a postgres node of pgha" in result.comments()


def pending(salt_cli):
    return {r["member"]: r["pending_restart"] for r in call(salt_cli, "patroni.list")[1]}


@pytest.mark.parametrize("max_connections", [250, 200], ids=["raise", "lower-back"])
def test_rolling_restart_applies_a_restart_parameter_everywhere(cluster, salt_run_cli, salt_cli,
                                                                max_connections):
    """Raise max_connections (replicas first), then lower it back (primary first)."""
    with pillar_override(salt_cli, {"pgha": {"patroni": {"dcs": {"postgresql": {
            "parameters": {"max_connections": max_connections}}}}}}):
        at = leader(salt_cli)
        applied = state_ret(salt_cli.run("state.apply", "pgha.patroni.config.dynamic", minion_tgt=at),
                            minion=at)
        assert applied["result"] is True, applied["comment"]
        assert "restart pending" in applied["comment"]
        assert any(pending(salt_cli).values())
        result = orchestrate(salt_run_cli, "orch.rolling_restart", timeout=480)
        assert result.retcode == 0 and not result.failed, result.comments()
    assert not any(pending(salt_cli).values()), pending(salt_cli)
    for name in PG_NODES:
        assert sql("SHOW max_connections", host=NODES[name].address) == [(str(max_connections),)]
    wait_healthy(salt_cli)


def test_add_node_then_remove_node(cluster, salt_run_cli, salt_cli, minions, master_events):
    spare = NODES["pg-04"]
    lab_api.add("pg-04")
    try:
        wait_for_minions(salt_cli, ["pg-04"])
        with pillar_override(salt_cli, {"pgha": {"nodes": {"pg-04": {
                "address": spare.address, "roles": ["postgres"], "etcd_join": "existing"}}}}):
            added = orchestrate(salt_run_cli, "orch.add_node", pillar={"node": "pg-04"}, timeout=480)
            assert added.retcode == 0 and not added.failed, added.comments()
            rows = call(salt_cli, "patroni.list")[1]
            assert sorted(r["member"] for r in rows) == PG_NODES + ["pg-04"]
            assert all(r["state"] in ("running", "streaming") for r in rows)
            health = call(salt_cli, "etcd3.health")[1]
            assert health == {n: {"healthy": True, "reason": ""} for n in PG_NODES + ["pg-04"]}
            assert not any(m["is_learner"] for m in call(salt_cli, "etcd3.members")[1])

            refused = orchestrate(salt_run_cli, "orch.remove_node", pillar={"node": leader(salt_cli)},
                                  timeout=120)
            assert refused.retcode != 0
            assert "is the Patroni leader; switch over first" in refused.comments()

            removed = orchestrate(salt_run_cli, "orch.remove_node", pillar={"node": "pg-04"}, timeout=300)
            assert removed.retcode == 0 and not removed.failed, removed.comments()
            order = [s["__id__"] for s in sorted(removed.states.values(), key=lambda s: s["__run_num__"])]
            # Its beacons went first, and it was checked not to lead right before Patroni stopped.
            assert order.index("pgha-orch-remove-node-beacons-off") < \
                order.index("pgha-orch-remove-node-not-leader") < \
                order.index("pgha-orch-remove-node-patroni-stopped"), order
            # Nothing started Patroni again behind the orchestration's back.
            assert master_events.all("pgha/remediation/service/pg-04/") == []
            wait_for(lambda: sorted(r["member"] for r in call(salt_cli, "patroni.list")[1]) == PG_NODES,
                     60, "pg-04 to leave Patroni's member list")
            assert sorted(m["name"] for m in call(salt_cli, "etcd3.members")[1]) == PG_NODES
    finally:
        lab_api.remove("pg-04")
    # The remaining nodes' configuration no longer mentions pg-04 once pillar forgets it.
    ret = salt_cli.run("state.highstate", minion_tgt="*", _timeout=300)
    assert ret.returncode == 0, ret.stdout + ret.stderr
    wait_healthy(salt_cli)


def test_the_run_time_leader_check_refuses_the_leader(cluster, salt_cli):
    """What orch.remove_node runs right before it stops a member: the leader may have
    changed since the orchestration was planned."""
    now = leader(salt_cli)
    ret = salt_cli.run("state.apply", "pgha.check.not_leader", f'pillar={{"pgha_run": {{"member": "{now}"}}}}',
                       minion_tgt="pg-01", _timeout=60)
    assert ret.returncode != 0
    check = state_ret(ret, state_id="pgha-check-not-leader")
    assert check["result"] is False and "is the Patroni leader; switch over first" in check["comment"]
    other = next(n for n in PG_NODES if n != now)
    ret = salt_cli.run("state.apply", "pgha.check.not_leader", f'pillar={{"pgha_run": {{"member": "{other}"}}}}',
                       minion_tgt="pg-01", _timeout=60)
    assert ret.returncode == 0, ret.stdout


def test_status_runner_exit_code_follows_cluster_health(cluster, salt_run_cli, lab, salt_cli):
    healthy = salt_run_cli.run("pgha.status", _timeout=90)
    assert healthy.returncode == 0, healthy.stdout
    assert healthy.data["data"]["healthy"] is True
    replica = next(n for n in PG_NODES if n != leader(salt_cli))
    lab.exec_(NODES[replica], ["systemctl", "stop", "patroni"], check=True)
    try:
        sick = salt_run_cli.run("pgha.status", _timeout=90)
        assert sick.returncode != 0
        assert any(replica in p for p in sick.data["data"]["problems"]), sick.data["data"]["problems"]
    finally:
        lab.exec_(NODES[replica], ["systemctl", "start", "patroni"], check=True)
    wait_healthy(salt_cli)
    for name in PG_NODES:
        assert lab_node.is_running(NODES[name])


# ---- failover speed: etcd's leader, client sessions, the proxy-free path ------------------

def test_a_new_primary_hands_etcd_leadership_on_at_once_and_no_session_stays_on_the_old(cluster, salt_cli, lab):
    """etcd's leader is put on the switchover's candidate first (the case the watcher is
    for). Patroni's switchover is asked directly, not through orch.switchover, whose own
    pgha.etcd.leader step would move it too. Meanwhile a client keeps opening sessions
    through the VIP's writer port and holds each one open."""
    import threading
    import time

    import psycopg

    from pgha_lab import workload

    wait_healthy(salt_cli)
    roles = wait_for(lambda: (r := {m["member"]: m["role"] for m in call(salt_cli, "patroni.list")[1]})
                     and "sync_standby" in r.values() and r, 60, "a synchronous standby")
    old = next(n for n, r in roles.items() if r == "leader")
    candidate = next(n for n, r in roles.items() if r == "sync_standby")
    rc, _, out = call(salt_cli, "etcd3.move_leader", f"to={candidate}")
    assert rc == 0 and workload.etcd_leader(PG_NODES) == candidate, out

    held, halt = [], threading.Event()

    def hold_sessions():
        while not halt.is_set():
            try:
                held.append(pg_connect(VIP, 5432, application_name="pgha-held"))
            except psycopg.Error:
                pass
            halt.wait(0.1)

    holder = threading.Thread(target=hold_sessions, daemon=True)
    holder.start()
    try:
        rc, _, out = call(salt_cli, "patroni.switchover", f"leader={old}", f"candidate={candidate}")
        assert rc == 0, out
        promoted = wait_for(lambda: workload.leader(workload.member_states(PG_NODES)) == candidate
                            and time.monotonic(), 30, f"{candidate} to lead", interval=0.1)
        moved = wait_for(lambda: workload.etcd_leader(PG_NODES) not in (candidate, None) and time.monotonic(),
                         20, f"etcd's leadership to leave {candidate}", interval=0.1)
        assert moved - promoted <= 2.0, f"etcd's leader left the new primary {moved - promoted:.2f}s after it led"
        journal = lab.exec_(NODES[candidate], ["journalctl", "-u", "pgha-etcd-leader-apart.service",
                                               "--no-pager", "-n", "20"]).stdout
        assert f"moved etcd leadership from {candidate} (the Patroni primary)" in journal, journal
        # HAProxy marks the old primary down (two checks at fastinter) and cuts its sessions.
        time.sleep(3)
    finally:
        halt.set()
        holder.join(timeout=10)
    try:
        def sessions_on_old():
            # The demoted primary restarts as a replica: it may still be starting up.
            try:
                return [sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgha-held'",
                            host=NODES[old].address)[0][0]]
            except psycopg.OperationalError:
                return None
        left = wait_for(sessions_on_old, 60, f"the demoted {old} to take connections")[0]
        assert left == 0, f"{left} client session(s) through the writer port stayed on the demoted {old}"
        alive = []
        for conn in held:
            try:
                alive.append(conn.execute("SELECT host(inet_server_addr()), pg_is_in_recovery()").fetchone())
            except psycopg.Error:
                pass
        assert alive and set(alive) == {(NODES[candidate].address, False)}, alive
    finally:
        for conn in held:
            conn.close()
    wait_healthy(salt_cli)


def test_the_multi_host_strings_of_pgha_status_reach_the_primary_and_a_replica(cluster, salt_run_cli, salt_cli):
    import psycopg

    from pgha_lab import tls

    status = salt_run_cli.run("pgha.status", _timeout=90)
    conninfo = status.data["data"]["conninfo"]
    hosts = ",".join(NODES[n].address for n in PG_NODES)
    assert conninfo["writer"].startswith(f"host={hosts} port=5432") and \
        "target_session_attrs=read-write" in conninfo["writer"], conninfo
    assert "target_session_attrs=prefer-standby load_balance_hosts=random" in conninfo["readers"], conninfo
    extra = dict(user=SUPERUSER.get("username", "postgres"), password=SUPERUSER["password"], dbname="postgres",
                 sslrootcert=tls.client()["ca"])
    primary = leader(salt_cli)
    with psycopg.connect(conninfo["writer"], **extra) as conn:
        assert conn.execute("SELECT host(inet_server_addr()), pg_is_in_recovery()").fetchone() == \
            (NODES[primary].address, False)
    replicas = {NODES[n].address for n in PG_NODES if n != primary}
    with psycopg.connect(conninfo["readers"], **extra) as conn:
        served, in_recovery = conn.execute("SELECT host(inet_server_addr()), pg_is_in_recovery()").fetchone()
    assert served in replicas and in_recovery is True
