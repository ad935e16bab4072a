"""Faults under load: a writer through the VIP inserts a numbered row every 25 ms and
logs it as acknowledged only once its commit returned; a monitor asks every node, from
inside it, whether it is a primary. For each fault: no acknowledged row is lost
(synchronous replication is the lab default), no two nodes ever accept writes at once,
and the cluster heals by itself once the fault is gone.

Time bounds here are generous on purpose; the benchmark (bench/run.py) measures speed.
"""

from __future__ import annotations

import json

import pytest

from conftest import HAPROXY_NODES, SUPERUSER, wait_for
from pgha_lab import faults, workload
from pgha_lab.topology import NODES, VIP

LEADER_FAULTS = {"leader_power_cut", "leader_clean_stop", "leader_isolated"}


def vip_holders(lab):
    return [n for n in HAPROXY_NODES if lab.is_running(NODES[n])
            and f" {VIP}/" in lab.exec_(NODES[n], ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout]


@pytest.mark.parametrize("kind", faults.FAULTS)
def test_fault_loses_nothing_never_splits_and_heals(kind, cluster, lab):
    wait_for(lambda: workload.healthy(workload.member_states(faults.PG)), 240,
             "a healthy cluster before the fault")
    holders_before = vip_holders(lab)
    assert len(holders_before) == 1
    report = faults.run_fault(kind, SUPERUSER["password"])
    summary = {k: v for k, v in report.as_dict().items() if k != "timeline"}
    print(json.dumps(summary))

    assert report.acked > 100, "the writer barely wrote; the run proves nothing"
    assert report.lost == [], f"acknowledged rows missing on the primary: {report.lost[:20]}"
    assert report.client_split_brain == []
    assert report.node_split_brain == []
    assert report.healed, "the cluster did not return to one primary + streaming replicas"
    if kind in LEADER_FAULTS:
        assert report.leader_after not in (None, report.leader_before), "no failover happened"
    if kind != "etcd_two_lost":
        # Writes came back while the fault was still in place.
        assert report.write_gap < 60
    holders_after = vip_holders(lab)
    assert len(holders_after) == 1
    if kind == "vip_holder_lost":
        # The backup took the VIP over and keeps it (no preemption when the other returns).
        assert holders_after != holders_before
