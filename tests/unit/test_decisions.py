"""The plain functions that decide: etcd's readiness for a membership change, whether a
replica's fault is its own, the beacon's problem timers, the orchestrations' plans, the
master's leases. No loader, no lab: each is imported from its file."""

from __future__ import annotations

import subprocess

import pytest

from unit.helpers import load_file

etcd3 = load_file("_modules/etcd3.py")
patroni = load_file("_modules/patroni.py")
plans = load_file("_utils/pgha_plans.py")
lock = load_file("_utils/pgha_lock.py")

# ---- etcd: who is connected to whom ------------------------------------------------------

METRICS = """\
# HELP etcd_network_active_peers The current number of active peer connections.
# TYPE etcd_network_active_peers gauge
etcd_network_active_peers{Local="c34146e05dc595f6",Remote="5ae566adee59d3c4"} 1
etcd_network_active_peers{Local="c34146e05dc595f6",Remote="afeea9f5fcce7c84"} 0
etcd_server_has_leader 1
"""
A, B, C = "c34146e05dc595f6", "5ae566adee59d3c4", "afeea9f5fcce7c84"


def member(mid, name, learner=False):
    return {"id": mid, "name": name, "peer_urls": [f"https://{name}:2380"], "client_urls": [],
            "is_learner": learner}


def test_active_peers_are_read_from_a_members_metrics():
    assert etcd3._active_peers(METRICS) == {B: True, C: False}


def test_a_member_add_needs_every_voter_connected_to_every_other():
    members = [member(A, "pg-01"), member(B, "pg-02"), member(C, "pg-03")]
    views = {A: {B: True, C: False}, B: {A: True, C: True}, C: {A: True, B: True}}
    assert etcd3._connectivity_problems(members, views) == {A: "pg-01 is not connected to pg-03"}
    views[A][C] = True
    assert etcd3._connectivity_problems(members, views) == {}


def test_a_silent_or_unstarted_member_is_named_and_a_learner_does_not_count():
    members = [member(A, "pg-01"), member(B, "pg-02"), member("d1", "", learner=True),
               {**member("e1", ""), "name": ""}]
    views = {A: {B: True, "e1": True}, B: "etcd at https://pg-02:2379 is unreachable"}
    problems = etcd3._connectivity_problems(members, views)
    assert problems[B] == "pg-02 does not answer: etcd at https://pg-02:2379 is unreachable"
    assert problems["e1"].startswith("e1 (not started, https://:2380) has not started")
    assert "d1" not in problems


def test_a_restart_needs_a_quorum_without_the_member():
    voters = ["pg-01", "pg-02", "pg-03"]
    assert plans.quorum_without("pg-03", voters, {"pg-01", "pg-02", "pg-03"})[0] is True
    assert plans.quorum_without("pg-03", voters, {"pg-01", "pg-02"})[0] is True
    ok, why = plans.quorum_without("pg-03", voters, {"pg-03", "pg-01"})
    assert ok is False and "1 of 3 voting members are healthy without pg-03" in why


# ---- is a replica's fault its own? -------------------------------------------------------

def cluster(**states):
    roles = {"pg-01": "leader"}
    return [{"name": name, "role": roles.get(name, "replica"), "state": state}
            for name, state in states.items()]


@pytest.mark.parametrize("members, paused, log, verdict", [
    (cluster(**{"pg-01": "running", "pg-02": "streaming", "pg-03": "start failed"}), False, [], "local"),
    (cluster(**{"pg-01": "running", "pg-02": "running", "pg-03": "running"}), False, [], "cluster_wide"),
    (cluster(**{"pg-01": "running", "pg-02": "stopped", "pg-03": "running"}), False,
     ["FATAL:  requested timeline 3 is not a child of this server's history"], "local"),
    (cluster(**{"pg-01": "running", "pg-02": "running", "pg-03": "creating replica"}), False, [], "transitional"),
    (cluster(**{"pg-01": "running", "pg-02": "running", "pg-03": "streaming"}), False, [], "healthy"),
    (cluster(**{"pg-01": "running", "pg-02": "streaming", "pg-03": "start failed"}), True, [], "paused"),
    (cluster(**{"pg-01": "stopped", "pg-02": "streaming", "pg-03": "start failed"}), False, [], "no_leader"),
    (cluster(**{"pg-01": "running", "pg-02": "streaming"}), False, [], "missing"),
])
def test_only_a_fault_local_to_the_replica_justifies_a_reinit(members, paused, log, verdict):
    assert patroni._fault_verdict("pg-03", members, paused, log)[0] == verdict


def test_a_cluster_wide_verdict_says_what_was_seen():
    members = cluster(**{"pg-01": "running", "pg-02": "running", "pg-03": "stopped"})
    verdict, evidence = patroni._fault_verdict("pg-03", members, False, [])
    assert verdict == "cluster_wide" and evidence == "no replica streams from pg-01 (pg-02 running, pg-03 stopped)"


def test_the_leader_is_never_a_candidate():
    assert patroni._fault_verdict("pg-01", cluster(**{"pg-01": "running"}), False, [])[0] == "leader"


# ---- plans -------------------------------------------------------------------------------

def rows(pending=()):
    return [{"member": n, "role": "leader" if n == "pg-01" else "replica", "pending_restart": n in pending}
            for n in ("pg-01", "pg-02", "pg-03")]


def test_a_rolling_restart_does_replicas_first_then_switches_over():
    plan = plans.rolling_restart(rows({"pg-01", "pg-03"}), {})
    assert [s["name"] for s in plan["steps"]] == ["pg-03", "switchover", "pg-01"]
    assert plan["moves_leader"] is True


def test_lowering_a_standby_bound_parameter_starts_at_the_primary():
    reasons = {"pg-01": {"max_connections": {"old_value": "250", "new_value": "200"}}}
    plan = plans.rolling_restart(rows({"pg-01", "pg-02", "pg-03"}), reasons)
    assert [s["name"] for s in plan["steps"]] == ["pg-01-in-place", "pg-02", "pg-03"]
    assert plan["moves_leader"] is False


def test_force_restarts_everyone_and_nothing_pending_plans_nothing():
    assert [s["name"] for s in plans.rolling_restart(rows(), {}, force=True)["steps"]] == \
        ["pg-02", "pg-03", "switchover", "pg-01"]
    assert plans.rolling_restart(rows(), {})["steps"] == []
    assert "no Patroni leader" in plans.rolling_restart([], {})["problem"]


@pytest.mark.parametrize("node, leader, healthy, problem", [
    ("pg-04", "pg-01", ["pg-01", "pg-02", "pg-03", "pg-04"], None),
    ("pg-01", "pg-01", ["pg-01", "pg-02", "pg-03", "pg-04"], "is the Patroni leader; switch over first"),
    ("pg-04", "pg-01", ["pg-01", "pg-04"], "would leave 1 healthy etcd members of 3: no quorum"),
    ("pg-04", None, ["pg-01", "pg-02", "pg-03"], "no remaining member answered"),
    ("pg-09", "pg-01", [], "pg-09 is not a postgres node"),
])
def test_a_removal_keeps_the_leader_and_etcds_quorum(node, leader, healthy, problem):
    found = plans.removal_problem(node, ["pg-01", "pg-02", "pg-03", "pg-04"], leader, healthy)
    assert (found is None) if problem is None else (problem in found), found


def test_a_switch_of_patronis_package_restarts_every_member_the_leader_last_as_a_replica():
    plan = plans.rolling_restart(rows(), {}, service=True)
    assert [(s["name"], s["kind"]) for s in plan["steps"]] == [
        ("pg-02-patroni", "service"), ("pg-03-patroni", "service"), ("switchover", "switchover"),
        ("pg-01-patroni", "service")]
    assert plan["moves_leader"] is True


def test_a_removal_keeps_three_etcd_members():
    assert "at least 3 are needed" in plans.removal_problem("pg-03", ["pg-01", "pg-02", "pg-03"], "pg-01",
                                                          ["pg-01", "pg-02", "pg-03"])


# ---- heal budgets ------------------------------------------------------------------------

def test_a_budget_counts_only_the_attempts_inside_its_window():
    assert plans.attempts_left([100, 200, 300], now=650, window=600, max_attempts=3) == ([100, 200, 300], False)
    assert plans.attempts_left([100, 200, 300], now=701, window=600, max_attempts=3) == ([200, 300], True)
    assert plans.attempts_left([], now=0, window=600, max_attempts=1) == ([], True)


def test_a_budget_state_refuses_the_attempt_after_the_last_and_counts_only_when_asked(minion):
    m = minion(minion_id="lab-master")
    name = "reinit/pg-03"
    for attempt in (1, 2, 3):
        peek = m.states.pgha.remediation_allowed(name=name, max_attempts=3, window=600, record=False)
        assert peek["result"] is True and peek["changes"] == {}, peek
        counted = m.states.pgha.remediation_counted(name=name, max_attempts=3, window=600)
        assert counted["changes"] == {"attempts": {"old": attempt - 1, "new": attempt}}, counted
    refused = m.states.pgha.remediation_allowed(name=name, max_attempts=3, window=600, record=False)
    assert refused["result"] is False and "3 attempts in the last 600s" in refused["comment"], refused
    assert m.states.pgha.remediation_allowed(name="reinit/pg-02", max_attempts=3, window=600)["result"] is True


# ---- leases on the master ------------------------------------------------------------------

def test_a_lease_is_held_by_one_owner_until_released_or_expired(tmp_path):
    path = str(tmp_path / "leases.json")
    assert lock.acquire(path, "maintenance", "alice", 60, now=100)[0] is True
    taken, held = lock.acquire(path, "maintenance", "orch.switchover/x", 60, now=110)
    assert taken is False and held["owner"] == "alice"
    assert lock.acquire(path, "maintenance", "alice", 60, now=120)[1]["since"] == 100  # renewed
    assert lock.release(path, "maintenance", "bob", now=130) is None
    assert lock.status(path, now=130)["maintenance"]["owner"] == "alice"
    assert lock.status(path, now=181) == {}  # expired by itself
    assert lock.acquire(path, "maintenance", "orch.switchover/x", 60, now=182)[0] is True
    assert lock.release(path, "maintenance", "orch.switchover/x", now=183)["owner"] == "orch.switchover/x"
    assert lock.status(path, now=184) == {}


# ---- etcd's leader kept off the Patroni primary (the root-run role-change watcher) --------

leader_apart = load_file("salt/pgha/etcd/files/leader_apart.py")
ME, P2, P3 = "11", "22", "33"
MEMBERS = [{"ID": ME, "name": "pg-01"}, {"ID": P2, "name": "pg-02"}, {"ID": P3, "name": "pg-03"}]


def view(leader=ME, applied=100, errors=()):
    return {"leader": leader, "raftAppliedIndex": str(applied), "errors": list(errors)}


def test_leadership_goes_to_the_most_caught_up_healthy_voter():
    target, why = leader_apart.choose_target(ME, ME, MEMBERS, {P2: view(applied=90), P3: view(applied=95)})
    assert (target, why) == (P3, None)


def test_no_move_without_an_etcd_leader_or_when_another_member_leads():
    assert leader_apart.choose_target(ME, "0", MEMBERS, {}) == (None, "etcd has no leader")
    assert leader_apart.choose_target(ME, P2, MEMBERS, {})[1] == "etcd's leader is another member"


def test_a_silent_disagreeing_alarmed_or_learner_member_is_never_the_target():
    members = MEMBERS + [{"ID": "44", "name": "pg-04", "isLearner": True}]
    views = {P2: "https://198.51.100.121:2379: timed out", P3: view(leader=P2), "44": view(applied=500)}
    assert leader_apart.choose_target(ME, ME, members, views) == (
        None, "no healthy voting member to take etcd leadership")
    views[P3] = view(errors=["NOSPACE"])
    assert leader_apart.choose_target(ME, ME, members, views)[0] is None


class FakeClient:
    """The script's Client with canned answers: Patroni's role, then etcd's statuses."""

    def __init__(self, roles, statuses, peers):
        self.roles, self.statuses, self.peers, self.moves = list(roles), list(statuses), peers, []

    def patroni_role(self):
        return self.roles.pop(0) if len(self.roles) > 1 else self.roles[0]

    def login(self):
        pass

    def etcd(self, path, payload=None, url=None, timeout=2.0):
        if path == "/v3/cluster/member/list":
            return {"members": [dict(m, clientURLs=[f"https://{m['name']}:2379"]) for m in MEMBERS]}
        if path == "/v3/maintenance/transfer-leadership":
            self.moves.append(payload["targetID"])
            self.statuses = [{"header": {"member_id": ME}, "leader": payload["targetID"]}]
            return {}
        if url:
            return self.peers[url.split("//")[1].split(":")[0]]
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


def run_with(monkeypatch, client):
    monkeypatch.setattr(leader_apart, "Client", lambda cfg: client)
    clock = iter(range(0, 1000))
    return leader_apart.run({"name": "pg-01", "timeout": 10}, sleep=lambda s: None, clock=lambda: next(clock))


def test_a_new_primary_leading_etcd_hands_it_over_once_etcd_has_a_leader(monkeypatch):
    client = FakeClient(["replica", "primary"],
                        [{"header": {"member_id": ME}, "leader": "0"}, {"header": {"member_id": ME}, "leader": ME}],
                        {"pg-02": view(applied=7), "pg-03": view(applied=9)})
    assert run_with(monkeypatch, client) == 0
    assert client.moves == [P3]


def test_a_replica_or_a_primary_not_leading_etcd_moves_nothing(monkeypatch):
    leading = [{"header": {"member_id": ME}, "leader": ME}]
    assert run_with(monkeypatch, replica := FakeClient(["replica"], leading, {})) == 0 and replica.moves == []
    apart = FakeClient(["primary"], [{"header": {"member_id": ME}, "leader": P2}], {})
    assert run_with(monkeypatch, apart) == 0 and apart.moves == []


def test_no_healthy_target_gives_up_with_an_error_and_moves_nothing(monkeypatch):
    client = FakeClient(["primary"], [{"header": {"member_id": ME}, "leader": ME}],
                        {"pg-02": view(leader="0"), "pg-03": view(errors=["CORRUPT"])})
    assert run_with(monkeypatch, client) == 1 and client.moves == []


# ---- etcd's stale peer status after a partition heals (the peer-watch timer) --------------

PEERS = [{"ID": ME, "name": "pg-01", "peerURLs": ["https://198.51.100.120:2380"]},
         {"ID": "6549754130294494148", "name": "pg-02", "peerURLs": ["https://198.51.100.121:2380"]},
         {"ID": "12677256875067997316", "name": "pg-03", "peerURLs": ["https://198.51.100.122:2380"]},
         {"ID": "99", "name": "pg-04", "peerURLs": ["https://198.51.100.123:2380"], "isLearner": True}]


def metrics(pg02, pg03):
    # etcd labels peers by their hex id: 6549754130294494148 is 5ae566adee59d3c4.
    return ("# TYPE etcd_network_active_peers gauge\n"
            f'etcd_network_active_peers{{Local="b",Remote="5ae566adee59d3c4"}} {pg02}\n'
            + ("" if pg03 is None else f'etcd_network_active_peers{{Local="b",Remote="afeea9f5fcce7c84"}} {pg03}\n'))


def test_a_voting_peer_not_reported_active_is_inactive_and_learners_are_ignored():
    assert leader_apart.inactive_peers(ME, PEERS, metrics(1, 1)) == {}
    assert leader_apart.inactive_peers(ME, PEERS, metrics(1, 0)) == {
        "12677256875067997316": ("pg-03", "198.51.100.122", 2380)}
    # Never connected at all: no series for it.
    assert list(leader_apart.inactive_peers(ME, PEERS, metrics(0, None)).values()) == [
        ("pg-02", "198.51.100.121", 2380), ("pg-03", "198.51.100.122", 2380)]


def test_only_a_peer_inactive_twice_with_its_streams_up_and_its_port_open_is_stale():
    first = leader_apart.inactive_peers(ME, PEERS, metrics(0, 0))
    second = leader_apart.inactive_peers(ME, PEERS, metrics(1, 0))
    up = {"198.51.100.121", "198.51.100.122"}
    assert list(leader_apart.stale(first, second, up, lambda h, p: True)) == ["12677256875067997316"]
    # Really cut off: no stream from it, or its peer port does not answer.
    assert leader_apart.stale(first, second, {"198.51.100.121"}, lambda h, p: True) == {}
    assert leader_apart.stale(first, second, up, lambda h, p: False) == {}
    # Inactive only at the second reading: a reconnect may be under way.
    assert leader_apart.stale({}, second, up, lambda h, p: True) == {}


def test_the_peer_watch_with_etcd_down_checks_nothing_and_does_not_fail_its_unit(monkeypatch, tmp_path):
    class Down:
        def __init__(self, cfg):
            pass

        def etcd(self, path, payload=None, url=None, timeout=2.0):
            raise RuntimeError("https://198.51.100.120:2379/v3/maintenance/status: [Errno 111] Connection refused")

    monkeypatch.setattr(leader_apart, "Client", Down)
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"name": "pg-01", "peer_port": 2380, "confirm": 0}')
    assert leader_apart.main(["leader_apart.py", str(cfg), "--stale-peers"]) == 0
    assert leader_apart.main(["leader_apart.py", str(cfg), "--bogus"]) == 2


def test_addresses_from_ss_and_peer_urls_compare_alike():
    assert leader_apart._address("198.51.100.122") == "198.51.100.122"
    assert leader_apart._address("[::ffff:198.51.100.122]") == "198.51.100.122"
    assert leader_apart._address("[2001:db8::2]") == leader_apart._address("2001:db8:0::2") == "2001:db8::2"


def test_the_peer_watch_closes_only_the_stale_peers_inbound_streams(monkeypatch):
    class Stale:
        def __init__(self, cfg):
            pass

        def etcd(self, path, payload=None, url=None, timeout=2.0):
            if path == "/v3/cluster/member/list":
                return {"members": PEERS}
            return {"header": {"member_id": ME}}

        def metrics(self):
            return metrics(1, 0)

    calls = []

    def run(cmd, **kw):
        calls.append(cmd)
        out = ("0 0 198.51.100.120:2380 198.51.100.121:40000\n0 0 198.51.100.120:2380 [::ffff:198.51.100.122]:52910\n"
               if "-K" not in cmd else "0 0 198.51.100.120:2380 198.51.100.122:52910\n")
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    monkeypatch.setattr(leader_apart, "Client", Stale)
    monkeypatch.setattr(leader_apart.subprocess, "run", run)
    monkeypatch.setattr(leader_apart, "port_open", lambda host, port: True)
    assert leader_apart.repair_stale_peers({"name": "pg-01", "peer_port": 2380, "confirm": 5},
                                           sleep=lambda s: None) == 0
    assert calls[-1] == ["ss", "-K", "-Htn", "state", "established", "( sport = :2380 and dst 198.51.100.122 )"]
    assert sum("-K" in c for c in calls) == 1


def test_a_fault_is_the_replicas_own_only_once_that_has_held_for_the_whole_grace():
    """CI: replication broke for every replica, the password was put back, pg-03 streamed
    again a little before pg-01, and pg-01 was reinitialised at once (the evidence
    "pg-03 streams from pg-02 while pg-01 is in archive recovery" was true only at the
    end of its grace)."""
    settled = patroni._settled_verdict
    local = ("local", "pg-03 streams from pg-02 while pg-01 is running")
    # Twenty-five seconds of a cluster-wide outage, then the other replica streams.
    assert settled(*local, elapsed=30, local_for=5, grace=30) is None
    assert settled(*local, elapsed=54, local_for=29, grace=30) is None
    assert settled(*local, elapsed=55, local_for=30, grace=30) == local
    # Flipping to the end: no verdict that condemns it.
    verdict, evidence = settled(*local, elapsed=60, local_for=10, grace=30)
    assert verdict == "unsettled" and "only for 10 s of the 30 s" in evidence
    # A cluster-wide outage is reported after the grace, as before; no grace: at once.
    assert settled("cluster_wide", "no replica streams", elapsed=29, local_for=None, grace=30) is None
    assert settled("cluster_wide", "no replica streams", elapsed=30, local_for=None, grace=30)[0] == "cluster_wide"
    assert settled(*local, elapsed=0, local_for=0, grace=0) == local
    # A healthy or transitional sighting ends the check at once.
    assert settled("healthy", "pg-01 streams", elapsed=1, local_for=None, grace=30) == ("healthy", "pg-01 streams")
