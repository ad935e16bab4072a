"""Faults under load: a writer through the VIP inserts a numbered row every 25 ms and
logs it as acknowledged only once its commit returned; a monitor asks every node, from
inside it, whether it is a primary. For each fault: no acknowledged row is lost
(synchronous replication is the lab default), no two nodes ever accept writes at once,
writes are acknowledged again after the fault is put back, and the cluster heals by
itself once the fault is gone.

These measure Patroni, etcd and keepalived themselves: self-healing is off for the
module (its beacons are removed), so no reaction of pgha's starts or restarts anything
behind a fault's back. Time bounds here are generous on purpose; the benchmark
(bench/run.py) measures speed.
"""

from __future__ import annotations

import json

import pytest
from conftest import LAB_MINIONS, SUPERUSER, pillar_override, vip_holders, wait_for

from pgha_lab import faults, workload

LEADER_FAULTS = {"leader_power_cut", "leader_clean_stop", "leader_isolated"}
# The two faults that once left etcd refusing member adds for minutes run last, so that
# the membership test below comes straight after them.
ETCD_UPSETTING = ("leader_isolated", "leader_power_cut")
FAULT_ORDER = [k for k in faults.FAULTS if k not in ETCD_UPSETTING] + list(ETCD_UPSETTING)


def apply_beacons(salt_cli):
    ret = salt_cli.run("state.sls", "pgha.beacons", "queue=True", minion_tgt=",".join(LAB_MINIONS),
                       tgt_type="list", _timeout=180)
    assert ret.returncode == 0, ret.stdout + ret.stderr


@pytest.fixture(scope="module", autouse=True)
def healing_off(proven_cluster, salt_cli):
    """pgha:heal:enabled false for this module: the beacons go, and every reaction would
    do nothing; they come back afterwards."""
    with pillar_override(salt_cli, {"pgha": {"heal": {"enabled": False}}}):
        apply_beacons(salt_cli)
        yield
    apply_beacons(salt_cli)


@pytest.mark.parametrize("kind", FAULT_ORDER)
def test_fault_loses_nothing_never_splits_and_heals(kind, cluster, lab):
    wait_for(lambda: workload.healthy(workload.member_states(faults.PG)), 240,
             "a healthy cluster before the fault")
    holders_before = vip_holders(lab)
    assert len(holders_before) == 1
    report = faults.run_fault(kind, SUPERUSER["password"])
    summary = {k: v for k, v in report.as_dict().items() if k != "timeline"}
    print(json.dumps(summary))

    assert report.acked > 100, "the writer barely wrote; the run proves nothing"
    assert report.acked_after_restore > 0, "no write was acknowledged after the fault was put back"
    assert report.lost == [], f"acknowledged rows missing on the primary: {report.lost[:20]}"
    assert report.client_split_brain == []
    assert report.node_split_brain == []
    assert report.healed, "the cluster did not return to one primary + streaming replicas"
    if kind in LEADER_FAULTS:
        assert report.leader_after not in (None, report.leader_before), "no failover happened"
    if kind == "etcd_two_lost":
        # failsafe_mode: with etcd's quorum gone the primary keeps serving while every
        # member confirms it over Patroni's REST API. Writes go on.
        assert report.write_gap < 10, f"writes stopped for {report.write_gap}s without etcd's quorum"
    else:
        # Writes came back while the fault was still in place.
        assert report.write_gap < 60
    holders_after = vip_holders(lab)
    assert len(holders_after) == 1
    if kind == "vip_holder_lost":
        # The backup took the VIP over and keeps it (no preemption when the other returns).
        assert holders_after != holders_before


def test_etcd_membership_changes_right_after_isolation_and_a_power_cut(cluster, salt_cli):
    """The faults that once left etcd refusing member adds ("unhealthy cluster") for
    minutes while every /health said healthy ran just before (FAULT_ORDER). Straight
    after them, with no waiting by hand, a member is added and removed: etcd3.member_add
    and member_remove wait until etcd accepts the change, and send it to a member
    connected to all the others."""
    asker = workload.leader(workload.member_states(faults.PG)) or faults.PG[0]
    added = salt_cli.run("etcd3.member_add", "address=198.51.100.201", minion_tgt=asker,
                         _timeout=180)
    assert added.returncode == 0, added.stdout + added.stderr
    member = added.data[asker]
    assert member["is_learner"] is True and member["peer_urls"] == ["https://198.51.100.201:2380"]
    removed = salt_cli.run("etcd3.member_remove", member["id"], minion_tgt=asker, _timeout=180)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    names = [m["name"] or m["id"] for m in salt_cli.run("etcd3.members", minion_tgt=asker).data[asker]]
    assert member["id"] not in names and sorted(names) == faults.PG

    # Every member ends connected to every other one: a peer status etcd left inactive
    # after the isolation healed (its streams up, nothing marking it active again) is
    # repaired by pgha-etcd-peer-watch.timer within a check or two.
    ready = salt_cli.run("etcd3.wait_membership_ready", "timeout=90", minion_tgt=asker, _timeout=120)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    repairs = salt_cli.run("cmd.run", "journalctl -u pgha-etcd-peer-watch --no-pager -o cat | grep 'closed them' || true",
                           minion_tgt=",".join(faults.PG), tgt_type="list", _timeout=60)
    print("peer-watch repairs:", {n: out for n, out in (repairs.data or {}).items() if out})
