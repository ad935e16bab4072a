"""
etcd cluster states, over the v3 API's HTTP gateway (the etcd3 execution module).
"""

import logging

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "etcd3"


def __virtual__():
    if "etcd3.members" not in __salt__:
        return (False, "etcd3 state: the etcd3 execution module is not available")
    return __virtualname__


def quorum(name, timeout=0):
    """
    A majority of the etcd members in pillar is healthy and the cluster has a leader.
    Waits up to *timeout* seconds; changes nothing.

    .. code-block:: yaml

        pgha-etcd-quorum:
          etcd3.quorum:
            - name: pgha
            - timeout: 120
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        state = __salt__["etcd3.wait_for_quorum"](timeout=timeout)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    ret["comment"] = (f"etcd has quorum: leader {state['leader']}, healthy "
                      f"{', '.join(state['healthy'])}")
    return ret


def membership_ready(name, timeout=0):
    """
    etcd would accept a membership change now: every voting member is connected to every
    other one (what etcd checks before a member add; ``/health`` does not show it).
    Waits up to *timeout* seconds; changes nothing. Fails naming each member that is not
    connected, and to whom.

    .. code-block:: yaml

        pgha-etcd-membership-ready:
          etcd3.membership_ready:
            - name: pgha
            - timeout: 120
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        state = __salt__["etcd3.wait_membership_ready"](timeout=timeout)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    ret["comment"] = ("etcd accepts membership changes: every voting member is connected to "
                      f"every other ({', '.join(state['members'])})")
    return ret


def quorum_without(name):
    """
    The voting etcd members other than *name* that are healthy make a quorum by
    themselves, so taking *name* away for a moment (a restart) cannot cost the cluster
    its quorum. Fails otherwise: then *name* may be unhealthy only because quorum is
    lost, and restarting it would not help. Changes nothing.

    .. code-block:: yaml

        pgha-check-etcd-quorum-without:
          etcd3.quorum_without:
            - name: pg-02
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        voters = [m["name"] or m["id"] for m in __salt__["etcd3.members"]() if not m["is_learner"]]
        healthy = {n for n, st in __salt__["etcd3.health"]().items() if st["healthy"]}
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"cannot tell whether etcd has a quorum without {name}: {exc}")
        return ret
    ok, why = __utils__["pgha_plans.quorum_without"](name, voters, healthy)
    ret.update(result=ok, comment=why)
    return ret


def leader_apart_from_primary(name):
    """
    etcd's leader is not on the node of the Patroni primary. When both leaderships sit
    on one node, losing that node costs an etcd election first, and etcd then renews
    every lease at its full TTL: Patroni's failover waits for both (measured: 6-18 s
    more). Moving etcd's leadership is a normal Raft transfer and does not touch
    Patroni's leader key.

    .. code-block:: yaml

        pgha-etcd-leader-apart:
          etcd3.leader_apart_from_primary:
            - name: pgha
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        primary = __salt__["patroni.leader"]()
        etcd_leader = __salt__["etcd3.status"]()["leader_name"]
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    if primary is None:
        ret["result"] = False
        ret["comment"] = "the cluster has no Patroni leader"
        return ret
    if etcd_leader != primary:
        ret["comment"] = f"etcd leader {etcd_leader} is apart from the Patroni primary {primary}"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"etcd leadership would move away from {primary}, the Patroni primary"
        ret["changes"] = {"etcd_leader": {"old": etcd_leader, "new": "another healthy member"}}
        return ret
    try:
        moved = __salt__["etcd3.move_leader"](away_from=primary)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"could not move etcd leadership away from {primary}: {exc}"
        return ret
    if moved["moved"]:
        ret["changes"] = {"etcd_leader": {"old": etcd_leader, "new": moved["leader"]}}
        ret["comment"] = f"moved etcd leadership from {etcd_leader} to {moved['leader']}"
    else:
        ret["comment"] = f"etcd leader {moved['leader']} is apart from the Patroni primary {primary}"
    return ret


def member_present(name, address, promote=True, timeout=120):
    """
    *name* is a member of the etcd cluster. A new member is announced first
    (``member add``, as a learner), before its node starts etcd with
    ``initial-cluster-state existing`` and an empty data directory. With *promote*, a
    learner that has started and caught up is promoted to a voter (waiting up to
    *timeout* seconds for it to catch up).

    .. code-block:: yaml

        pgha-etcd-member-pg-04:
          etcd3.member_present:
            - name: pg-04
            - address: 198.51.100.123
            - promote: False
    """
    import time  # pylint: disable=import-outside-toplevel

    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    peer_url = __salt__["etcd3.peer_url_for"](address)
    try:
        found = next((m for m in __salt__["etcd3.members"]()
                      if m["name"] == name or peer_url in m["peer_urls"]), None)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if found is None:
        if __opts__["test"]:
            ret.update(result=None, comment=f"would add {name} ({peer_url}) as a learner",
                       changes={"member": {"old": None, "new": {"peer_url": peer_url, "learner": True}}})
            return ret
        try:
            added = __salt__["etcd3.member_add"](peer_url=peer_url, learner=True)
        except CommandExecutionError as exc:
            ret.update(result=False, comment=f"member add for {name} failed: {exc}")
            return ret
        ret["changes"]["member"] = {"old": None, "new": {"id": added["id"], "peer_url": peer_url,
                                                         "learner": True}}
        ret["comment"] = (f"added {name} as learner {added['id']}; start etcd on it with "
                          "initial-cluster-state existing")
        return ret
    if not (promote and found["is_learner"]):
        ret["comment"] = (f"{name} is an etcd {'learner' if found['is_learner'] else 'voting member'}"
                          f" ({found['id']})")
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"would promote learner {name} to a voting member",
                   changes={"learner": {"old": True, "new": False}})
        return ret
    deadline = time.monotonic() + float(timeout)
    while True:
        try:
            __salt__["etcd3.member_promote"](found["id"])
            break
        except CommandExecutionError as exc:
            # etcd refuses until the learner has started and caught up with the leader.
            if time.monotonic() > deadline:
                ret.update(result=False, comment=f"could not promote {name} within {timeout}s: {exc}")
                return ret
            time.sleep(2)
    ret["changes"]["learner"] = {"old": True, "new": False}
    ret["comment"] = f"promoted {name} to a voting member"
    return ret


def member_absent(name):
    """
    *name* is not a member of the etcd cluster. Refused (by etcd3.member_remove) when
    removing it would leave the remaining voters without a healthy quorum.

    .. code-block:: yaml

        pgha-etcd-member-pg-04-absent:
          etcd3.member_absent:
            - name: pg-04
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        found = next((m for m in __salt__["etcd3.members"]() if m["name"] == name), None)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if found is None:
        ret["comment"] = f"{name} is not an etcd member"
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"would remove etcd member {name} ({found['id']})",
                   changes={"member": {"old": found["id"], "new": None}})
        return ret
    try:
        __salt__["etcd3.member_remove"](found["id"])
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"could not remove {name}: {exc}")
        return ret
    ret["changes"]["member"] = {"old": found["id"], "new": None}
    ret["comment"] = f"removed etcd member {name} ({found['id']})"
    return ret


def member_healthy(name, timeout=60):
    """
    Member *name* answers healthy on its /health endpoint (waits up to *timeout*
    seconds). Changes nothing.

    .. code-block:: yaml

        pgha-etcd-member-healthy:
          etcd3.member_healthy:
            - name: pg-01
            - timeout: 60
    """
    import time  # pylint: disable=import-outside-toplevel

    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    deadline = time.monotonic() + float(timeout)
    while True:
        try:
            state = __salt__["etcd3.health"](member=name)[name]
        except CommandExecutionError as exc:
            state = {"healthy": False, "reason": str(exc)}
        if state["healthy"]:
            ret["comment"] = f"etcd member {name} is healthy"
            return ret
        if time.monotonic() >= deadline:
            ret.update(result=False, comment=f"etcd member {name} is unhealthy after {timeout}s: "
                                              f"{state['reason']}")
            return ret
        time.sleep(2)


def auth_enabled(name, prefix=None):
    """
    etcd requires authentication: a ``root`` user for pgha's own modules, a Patroni user
    whose role may read and write only *prefix* (default ``/service/<cluster name>/``,
    Patroni's keys), and authentication switched on. Users, passwords and names come from
    pillar (``pgha:etcd:root_*``, ``pgha:etcd:patroni_*``). Passwords never show in the
    changes.

    .. code-block:: yaml

        pgha-etcd-auth:
          etcd3.auth_enabled:
            - name: pgha
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    cfg = __salt__["pgha.config"](redact=False)
    etcd = cfg["etcd"]
    if not etcd["auth"]:
        ret["comment"] = "etcd authentication is off in pillar (pgha:etcd:auth)"
        return ret
    prefix = prefix or f"/service/{cfg['cluster']['name']}/"
    wanted = [(etcd["root_username"], etcd["root_password"], "root"),
              (etcd["patroni_username"], etcd["patroni_password"], "patroni")]
    try:
        enabled = __salt__["etcd3.auth_status"]()["enabled"]
        if __opts__["test"]:
            users = __salt__["etcd3.users"]()
            predicted = {user: "create" for user, _, _ in wanted if user not in users}
            predicted.update({user: f"grant role {role}" for user, _, role in wanted
                              if user in users and role not in users[user]})
            if not enabled:
                predicted["authentication"] = "enable"
            if predicted:
                ret.update(result=None, changes=predicted,
                           comment="etcd authentication would be set up")
            else:
                ret["comment"] = "etcd authentication is set up"
            return ret
        changes = {}
        role_changes = __salt__["etcd3.role_ensure"]("patroni", prefix=prefix)
        if role_changes:
            changes["role patroni"] = role_changes
        for user, password, role in wanted:
            done = __salt__["etcd3.user_ensure"](user, password, roles=[role])
            if done:
                changes[f"user {user}"] = done
        if not enabled:
            __salt__["etcd3.auth_enable"]()
            changes["authentication"] = {"old": "disabled", "new": "enabled"}
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"setting up etcd authentication failed: {exc}")
        return ret
    ret["changes"] = changes
    ret["comment"] = ("etcd authentication set up" if changes else "etcd authentication is set up") + \
        f"; {etcd['patroni_username']} may use {prefix} only"
    return ret
