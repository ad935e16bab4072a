"""The fault catalogue, and one measured run of a fault under a live writer.

Each fault picks its victim from the live cluster, breaks it, and later restores it
the way an operator (or the hardware) would. `run_fault` drives a writer through the
VIP and a primary monitor around it and reports what a client and the nodes saw.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from . import net, workload
from . import node as lab_node
from .sh import LabError
from .topology import NODES, VIP, members

PG = members("postgres")
HAPROXY = members("haproxy")


def _sh(name: str, script: str) -> None:
    proc = lab_node.exec_(NODES[name], ["sh", "-c", script], timeout=60)
    if proc.returncode != 0:
        raise LabError(f"{name}: {script}: {proc.stderr.strip() or proc.stdout.strip()}")


def _vip_holder() -> str | None:
    for name in HAPROXY:
        if lab_node.is_running(NODES[name]):
            out = lab_node.exec_(NODES[name], ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout
            if f" {VIP}/" in out:
                return name
    return None


def _ran_pg_rewind(name: str, since: str) -> bool:
    if not lab_node.is_running(NODES[name]):
        return False
    log = lab_node.exec_(NODES[name], ["journalctl", "-u", "patroni", "--no-pager", "-q",
                                       "--since", since], timeout=30).stdout
    return "running pg_rewind" in log


@dataclass
class Fault:
    """What was broken, and how to put it back."""
    kind: str
    victims: list[str]
    restore: object  # callable
    # The Patroni leader changes with this fault (the old one must rejoin as a replica).
    moves_leader: bool = False
    # Writes are allowed to stop for the whole fault (etcd without quorum).
    may_stall: bool = False


def inject(kind: str, states: dict) -> Fault:
    leader = workload.leader(states)
    replicas = [n for n in states if n != leader]
    sync_names = {r["application_name"] for r in states[leader].get("replication", [])
                  if r.get("sync_state") in ("sync", "quorum")}
    sync = next((n for n in replicas if n in sync_names), replicas[0])
    if kind == "leader_power_cut":
        lab_node.kill(NODES[leader])
        return Fault(kind, [leader], lambda: lab_node.start(NODES[leader]), moves_leader=True)
    if kind == "leader_clean_stop":
        lab_node.stop(NODES[leader])
        return Fault(kind, [leader], lambda: lab_node.start(NODES[leader]), moves_leader=True)
    if kind == "leader_isolated":
        net.set_link(NODES[leader], up=False)
        return Fault(kind, [leader], lambda: net.set_link(NODES[leader], up=True), moves_leader=True)
    if kind == "patroni_sigkill":
        # Only Patroni's own process: PostgreSQL keeps running, systemd restarts Patroni.
        _sh(leader, "systemctl kill --kill-whom=main --signal=SIGKILL patroni")
        return Fault(kind, [leader], lambda: None)
    if kind == "postmaster_crash":
        _sh(leader, "kill -9 $(head -1 /var/lib/postgresql/17/pgha/postmaster.pid)")
        return Fault(kind, [leader], lambda: None)
    if kind == "etcd_one_lost":
        victim = workload.etcd_leader(PG) or PG[0]
        _sh(victim, "systemctl stop etcd")
        return Fault(kind, [victim], lambda: _sh(victim, "systemctl start etcd"))
    if kind == "etcd_two_lost":
        first = workload.etcd_leader(PG) or PG[0]
        second = next(n for n in PG if n != first)
        _sh(first, "systemctl stop etcd")
        _sh(second, "systemctl stop etcd")
        return Fault(kind, [first, second],
                     lambda: (_sh(first, "systemctl start --no-block etcd"),
                              _sh(second, "systemctl start etcd")), may_stall=True)
    if kind == "vip_holder_lost":
        holder = _vip_holder()
        lab_node.kill(NODES[holder])
        return Fault(kind, [holder], lambda: lab_node.start(NODES[holder]))
    if kind == "replica_lost":
        lab_node.kill(NODES[sync])
        return Fault(kind, [sync], lambda: lab_node.start(NODES[sync]))
    raise ValueError(f"unknown fault {kind!r}")


FAULTS = ("leader_power_cut", "leader_clean_stop", "leader_isolated", "patroni_sigkill",
          "postmaster_crash", "etcd_one_lost", "etcd_two_lost", "vip_holder_lost", "replica_lost")


@dataclass
class Report:
    kind: str
    victims: list[str]
    leader_before: str | None
    leader_after: str | None
    write_gap: float
    acked: int
    # Writes acknowledged after the fault was put back: the cluster takes writes again.
    acked_after_restore: int
    lost: list[int]
    client_split_brain: list[str]
    node_split_brain: list
    healed: bool
    heal_seconds: float | None
    # Victims whose Patroni ran pg_rewind to rejoin (a diverged former leader).
    rewound: list[str]
    errors: int
    timeline: dict = field(default_factory=dict)
    # The same run seen by a second writer on a libpq multi-host string (no HAProxy, no
    # VIP): {"write_gap", "acked", "lost"}; None when the run had no such writer.
    multi_host: dict | None = None
    # When the fault was put in (Unix time): where recorded series (Prometheus) line up.
    fault_epoch: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def run_fault(kind: str, password: str, *, hold: float = 8.0, settle: float = 3.0,
              heal_timeout: float = 240.0, on_injected=None, multi_host: str | None = None) -> Report:
    """Break the cluster with *kind* under a live writer, restore it, and judge the run.

    With *multi_host* (a libpq writer string), a second writer on that path runs beside
    the one through the VIP, on its own id range, and is judged the same way."""
    states = workload.member_states(PG)
    if not workload.healthy(states):
        raise LabError(f"cluster not healthy before {kind}: {states}")
    before = workload.leader(states)
    start_id = workload.prepare_table(password)
    writer = workload.Writer(password, start_id=start_id)
    direct = workload.Writer(password, start_id=start_id + 10**9, conninfo=multi_host) if multi_host else None
    monitor = workload.PrimaryMonitor(password, PG)
    writer.start()
    if direct:
        direct.start()
    monitor.start()
    time.sleep(settle)
    t_fault = time.monotonic()
    fault_epoch = time.time()
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    fault = inject(kind, states)
    if on_injected:
        on_injected(fault)
    # Hold the fault until writes came back (or, for a fault that may stall writes, for
    # a fixed time), then restore.
    deadline = t_fault + 90
    while time.monotonic() < deadline:
        resumed = [a for a in writer.acks if a.acked > t_fault + 0.5]
        if fault.may_stall and time.monotonic() > t_fault + 20:
            break
        if resumed and time.monotonic() - resumed[0].acked > hold:
            break
        time.sleep(0.2)
    t_restore = time.monotonic()
    fault.restore()
    healed_at = None
    heal_deadline = time.monotonic() + heal_timeout
    while time.monotonic() < heal_deadline:
        if workload.healthy(workload.member_states(PG)):
            healed_at = time.monotonic()
            break
        time.sleep(1)
    time.sleep(settle)
    writer.stop()
    monitor.stop()
    gap, gap_start, gap_end = workload.longest_gap(writer.acks, t_fault)
    ids = [a.id for a in writer.acks]
    lost = workload.missing_rows(password, ids) if ids else []
    multi_host_report = None
    if direct:
        direct.stop()
        direct_ids = [a.id for a in direct.acks]
        multi_host_report = {"write_gap": round(workload.longest_gap(direct.acks, t_fault)[0], 3),
                             "acked": len(direct_ids),
                             "lost": workload.missing_rows(password, direct_ids) if direct_ids else []}
    after = workload.leader(workload.member_states(PG))
    timeline = workload.Timeline(origin=t_fault, acks=[a.acked for a in writer.acks],
                                 marks={"fault": 0.0, "writes resumed": gap_end - t_fault,
                                        "restored": t_restore - t_fault,
                                        **({"healed": healed_at - t_fault} if healed_at else {})})
    return Report(
        kind=kind, victims=fault.victims, leader_before=before, leader_after=after,
        write_gap=round(gap, 3), acked=len(ids),
        acked_after_restore=sum(1 for a in writer.acks if a.acked > t_restore), lost=lost,
        client_split_brain=workload.client_split_brain(writer.acks),
        node_split_brain=monitor.double_primaries(),
        healed=healed_at is not None,
        heal_seconds=round(healed_at - t_restore, 1) if healed_at else None,
        rewound=[v for v in fault.victims if v in PG and _ran_pg_rewind(v, since)],
        errors=len(writer.errors),
        timeline={"bins": timeline.bins(), "marks": timeline.marks},
        multi_host=multi_host_report,
        fault_epoch=round(fault_epoch, 3),
    )
