"""
The decisions pgha's orchestrations and reactions act on, as plain functions of what
the live cluster reported: the order of a rolling restart, whether a member may leave,
whether etcd keeps a quorum without one member, and how much of a remediation budget is
left. Nothing here calls a service, so every rule is tested without a lab
(tests/unit/test_decisions.py); the modules and states that ask the cluster call these.
"""

__virtualname__ = "pgha_plans"


def __virtual__():
    return __virtualname__


# Parameters a standby must have at least as high as its primary: lowering one can only
# start at the primary.
STANDBY_BOUND = ("max_connections", "max_worker_processes", "max_wal_senders",
                 "max_prepared_transactions", "max_locks_per_transaction")


def _as_int(value):
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def rolling_restart(rows, reasons, force=False, service=False):
    """
    The order of a rolling restart, from the member list (``patroni.list``) and the
    pending-restart reasons (``patroni.pending_restarts``).

    Replicas with a pending restart first, one at a time; then, if the leader has one,
    a switchover and the old leader. Lowering a standby-bound parameter starts at the
    leader, in place. With *service*, Patroni's own process is restarted on every
    member instead (its package or unit changed: a switch between deb and pip), the
    leader last, as a replica after a switchover. Returns ``{problem, leader, steps,
    moves_leader}``; each step is ``{name, kind: restart|service|switchover, member,
    pending_only}``.
    """
    leader = next((r["member"] for r in rows if r.get("role") == "leader"), None)
    if leader is None:
        return {"problem": f"no Patroni leader answered ({len(rows)} members listed); a "
                           "rolling restart needs a healthy cluster",
                "leader": None, "steps": [], "moves_leader": False}
    if service:
        steps = [{"name": f"{r['member']}-patroni", "kind": "service", "member": r["member"],
                  "pending_only": False}
                 for r in sorted((r for r in rows if r["member"] != leader), key=lambda r: r["member"])]
        steps += [{"name": "switchover", "kind": "switchover", "member": None, "pending_only": True},
                  {"name": f"{leader}-patroni", "kind": "service", "member": leader, "pending_only": False}]
        return {"problem": None, "leader": leader, "steps": steps, "moves_leader": True}
    primary_first = any(
        param in STANDBY_BOUND and None not in (new := _as_int(change.get("new_value")),
                                                old := _as_int(change.get("old_value")))
        and new < old
        for param, change in sorted((reasons.get(leader) or {}).items()))
    leader_pending = force or any(r["member"] == leader and r.get("pending_restart") for r in rows)
    steps = []
    if primary_first:
        steps.append({"name": f"{leader}-in-place", "kind": "restart", "member": leader,
                      "pending_only": not force})
    for row in sorted((r for r in rows if r["member"] != leader), key=lambda r: r["member"]):
        if force or row.get("pending_restart"):
            steps.append({"name": row["member"], "kind": "restart", "member": row["member"],
                          "pending_only": not force})
    moves_leader = leader_pending and not primary_first
    if moves_leader:
        # The leader is restarted only as a replica: first it hands over. Its demotion
        # restarts it; the restart after that runs only if something is still pending.
        steps += [{"name": "switchover", "kind": "switchover", "member": None, "pending_only": True},
                  {"name": leader, "kind": "restart", "member": leader, "pending_only": True}]
    return {"problem": None, "leader": leader, "steps": steps, "moves_leader": moves_leader}


def removal_problem(node, members, leader, healthy, dev_single_etcd=False):
    """
    Why *node* may not leave the cluster now, or None, from the postgres members in
    pillar, the Patroni leader and the healthy etcd members: the leader is refused
    (switch over first), and so is any removal that leaves etcd without a healthy
    quorum or with fewer than 3 members.
    """
    if node not in members:
        return f"{node} is not a postgres node (members: {', '.join(members)})"
    remaining = [m for m in members if m != node]
    if leader is None:
        return "no remaining member answered with the Patroni leader; the cluster must be healthy to shrink"
    if leader == node:
        return f"{node} is the Patroni leader; switch over first (orch.switchover), then remove it"
    alive = [m for m in remaining if m in healthy]
    if len(alive) < len(remaining) // 2 + 1:
        return (f"removing {node} would leave {len(alive)} healthy etcd members of "
                f"{len(remaining)}: no quorum")
    if len(remaining) < 3 and not dev_single_etcd:
        return (f"removing {node} would leave {len(remaining)} etcd members; at least 3 are "
                "needed to survive a failure")
    return None


def quorum_without(member, voters, healthy):
    """(ok, why): whether the voting members other than *member* that are healthy still
    make a quorum of all voters."""
    others = sorted(n for n in voters if n != member and n in healthy)
    need = len(voters) // 2 + 1
    return len(others) >= need, (f"{len(others)} of {len(voters)} voting members are healthy "
                                 f"without {member} ({', '.join(others) or 'none'}); a quorum "
                                 f"is {need}")


def attempts_left(times, now, window, max_attempts):
    """(recent, allowed): the attempts of one remediation within the last *window*
    seconds (oldest first), and whether one more may be made."""
    recent = sorted(t for t in times if now - t < float(window))
    return recent, len(recent) < int(max_attempts)
