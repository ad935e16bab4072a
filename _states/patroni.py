"""
Patroni cluster states: health as a gate for orchestrations.

Patroni owns leadership; these states only read, or ask Patroni through its REST API.
"""

import logging
import time

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "patroni"


def __virtual__():
    if "patroni.cluster" not in __salt__:
        return (False, "patroni state: the patroni execution module is not available")
    return __virtualname__


def cluster_healthy(name, replicas=None, max_lag=None, timeout=0):
    """
    The cluster has one running leader and at least *replicas* replicas streaming with
    lag at most *max_lag* bytes. Waits up to *timeout* seconds; changes nothing. Fails
    with the problems and the cluster table.

    name
        The cluster (Patroni scope), for the output.
    replicas
        Default: every other postgres node in pillar.
    max_lag
        Default: ``maximum_lag_on_failover``.

    .. code-block:: yaml

        pgha-cluster-healthy:
          patroni.cluster_healthy:
            - name: pgha
            - replicas: 2
            - timeout: 300
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        members = __salt__["patroni.wait_healthy"](replicas=replicas, max_lag=max_lag,
                                                   timeout=timeout)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    roles = ", ".join(f"{m['name']} {m.get('role')} {m.get('state')}" for m in members)
    ret["comment"] = f"cluster {name} is healthy: {roles}"
    return ret


def not_leader(name):
    """
    Member *name* is not the Patroni leader, checked right now (a step that stops or
    removes a member runs this just before it: the leader may have changed since the
    orchestration was rendered). Changes nothing.

    .. code-block:: yaml

        pgha-remove-pg-04-not-leader:
          patroni.not_leader:
            - name: pg-04
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        leader = __salt__["patroni.leader"]()
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"cannot tell whether {name} leads: {exc}")
        return ret
    if leader == name:
        ret.update(result=False, comment=f"{name} is the Patroni leader; switch over first "
                                         "(orch.switchover), then remove it")
        return ret
    ret["comment"] = f"{name} is not the Patroni leader ({leader or 'no leader'} is)"
    return ret


def service_restarted(name, timeout=300):
    """
    Member *name*'s Patroni process has been restarted (the systemd unit, on this
    minion: *name* must be this node), so a changed Patroni package or unit takes
    effect, and the member is back as a streaming replica. Refused on the leader:
    switch over first (orch.rolling_restart with service: true does).

    .. code-block:: yaml

        pgha-patroni-restart-pg-02:
          patroni.service_restarted:
            - name: pg-02
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    cfg = __salt__["pgha.config"](redact=False)
    if name != cfg["id"]:
        ret.update(result=False, comment=f"run this on {name}'s own minion, not on {cfg['id']}")
        return ret
    try:
        leader = __salt__["patroni.leader"]()
        before = _own_view(name) or {}
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if leader == name:
        ret.update(result=False, comment=f"{name} is the Patroni leader; switch over first")
        return ret
    old = (before.get("patroni") or {}).get("version")
    if __opts__["test"]:
        ret.update(result=None, comment=f"would restart Patroni on {name}",
                   changes={"patroni": {"old": old, "new": "restarted"}})
        return ret
    service = cfg["patroni"]["service"]
    if not __salt__["service.restart"](service):
        ret.update(result=False, comment=f"systemctl restart {service} failed on {name}")
        return ret
    deadline = time.monotonic() + float(timeout)
    view = {}
    while time.monotonic() < deadline:
        view = _own_view(name) or {}
        if view.get("state") == "running" and view.get("replication_state") == "streaming" and \
                view.get("postmaster_start_time") != before.get("postmaster_start_time"):
            new = (view.get("patroni") or {}).get("version")
            ret["changes"] = {"patroni": {"old": old, "new": new}}
            ret["comment"] = f"restarted Patroni on {name} ({old} -> {new}); it streams again"
            return ret
        time.sleep(2)
    ret.update(result=False, changes={"patroni": {"old": old, "new": None}},
               comment=f"{name} is {view.get('state') or 'not answering'} {timeout}s after Patroni's restart")
    return ret


def _make_synchronous(candidate, members, timeout):
    """
    In synchronous mode Patroni promotes only a synchronous standby. When *candidate* is
    not one, raise synchronous_node_count for the duration of the switchover so that it
    becomes one (every acknowledged commit stays on the new leader), and return the
    count to restore afterwards; else None.
    """
    config = __salt__["patroni.config_get"]()
    if not candidate or not config.get("synchronous_mode") or \
            members[candidate]["role"] == "sync_standby":
        return None
    count = int(config.get("synchronous_node_count", 1))
    widened = len(members) - 1
    # Recorded in etcd first, bound to a lease: a highstate during the switchover keeps
    # the widened count (patroni.dynamic_config honours it), and if this run dies the
    # record expires by itself and the next highstate restores the pillar's count.
    _set_overrides({"synchronous_node_count": widened}, ttl=float(timeout) * 3 + 60)
    __salt__["patroni.config_patch"]({"synchronous_node_count": widened})
    deadline = time.monotonic() + float(timeout)
    while True:
        roles = {m["member"]: m["role"] for m in __salt__["patroni.list"]()}
        if roles.get(candidate) == "sync_standby":
            return count
        if time.monotonic() >= deadline:
            _restore_synchronous(count)
            raise CommandExecutionError(
                f"{candidate} did not become a synchronous standby within {timeout}s "
                f"(roles: {roles}); in synchronous mode only a synchronous standby may lead")
        time.sleep(1)


def _overrides_key():
    return __salt__["pgha.config"](redact=False)["dcs_overrides_key"]


def _set_overrides(values, ttl):
    import json  # pylint: disable=import-outside-toplevel

    __salt__["etcd3.kv_put"](_overrides_key(), json.dumps(values), ttl=int(ttl))


def _overrides():
    """Temporary dynamic-config values a running switchover recorded in etcd, or {}."""
    import json  # pylint: disable=import-outside-toplevel

    try:
        raw = __salt__["etcd3.kv_get"](_overrides_key())
        values = json.loads(raw) if raw else {}
    except (CommandExecutionError, ValueError) as exc:
        log.warning("pgha: cannot read temporary dynamic-config values: %s", exc)
        return {}
    return values if isinstance(values, dict) else {}


def _restore_synchronous(count):
    __salt__["patroni.config_patch"]({"synchronous_node_count": count})
    __salt__["etcd3.kv_delete"](_overrides_key())


def switched_over(name, candidate=None, timeout=120):
    """
    A planned switchover has happened: with *candidate*, that member leads; without,
    the leader at the start of the run has handed over to a healthy replica. Patroni
    picks and promotes; this state asks, then waits until the new leader runs and the
    old one streams from it again.

    .. code-block:: yaml

        pgha-switchover:
          patroni.switched_over:
            - name: pgha
            - candidate: pg-02
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        members = {m["member"]: m for m in __salt__["patroni.list"]()}
        leader = __salt__["patroni.leader"]()
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if candidate and candidate not in members:
        ret.update(result=False, comment=f"{candidate} is not a member of {name}; members are: "
                                         f"{', '.join(sorted(members))}")
        return ret
    if leader is None:
        ret.update(result=False, comment=f"{name} has no leader to switch over from; "
                                         "use a failover (patroni.failover) instead")
        return ret
    if candidate == leader:
        ret["comment"] = f"{candidate} already leads {name}"
        return ret
    target = candidate or "the healthiest replica"
    if __opts__["test"]:
        ret.update(result=None, comment=f"would switch {name} over from {leader} to {target}",
                   changes={"leader": {"old": leader, "new": target}})
        return ret
    widened = None
    try:
        widened = _make_synchronous(candidate, members, timeout)
        __salt__["patroni.switchover"](leader=leader, candidate=candidate)
        deadline_members = __salt__["patroni.wait_healthy"](timeout=timeout)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"switchover from {leader} to {target} failed: {exc}")
        return ret
    finally:
        if widened is not None:
            _restore_synchronous(widened)
    new = next(m["name"] for m in deadline_members if m.get("role") == "leader")
    if new == leader or (candidate and new != candidate):
        ret.update(result=False, comment=f"after the switchover {new} leads, not {target}")
        return ret
    ret["changes"] = {"leader": {"old": leader, "new": new}}
    ret["comment"] = f"switched {name} over from {leader} to {new}; {leader} streams from it"
    return ret


# Maps pgha owns completely: keys Patroni has that pillar does not are removed. Anywhere
# else, keys pillar does not mention (pause, slots, ...) are left as they are.
OWNED_MAPS = (("postgresql", "parameters"),)


def _diff(current, desired, path=()):
    """{dotted.key: {"old": ..., "new": ...}} for what *current* must change to match."""
    changes = {}
    for key, want in desired.items():
        here = path + (key,)
        have = (current or {}).get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            changes.update(_diff(have, want, here))
        elif have != want and str(have) != str(want):
            # Patroni returns some parameters as strings ('on', '64MB'); compare loosely.
            changes[".".join(here)] = {"old": have, "new": want}
    if path in OWNED_MAPS:
        for key in set(current or {}) - set(desired):
            changes[".".join(path + (key,))] = {"old": current[key], "new": None}
    return changes


def _patch_from(changes):
    patch = {}
    for dotted, change in changes.items():
        node = patch
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = change["new"]
    return patch


def dynamic_config(name, config=None, wait=180, leader_only=False, attempts=3):
    """
    Patroni's dynamic configuration (``/config`` in etcd) matches the pillar
    (``pgha:patroni:dcs``, or *config*). Only the keys that differ are PATCHed; the
    changes list each key's old and new value. A PostgreSQL parameter that only takes
    effect on restart is reported as pending on the members that need it, and left to
    ``orch.rolling_restart``: this state never restarts anything.

    Temporary values that a running switchover recorded in etcd (a widened
    ``synchronous_node_count``) count as desired while they last.

    wait
        Seconds to wait for the cluster to have a leader (right after bootstrap).
    leader_only
        Act only on the Patroni leader's own minion (highstate): the configuration is
        shared, so one minion patches it per run; the others report it left to the
        leader.
    attempts
        The PATCH is compare-and-set: another writer in between makes Patroni answer
        409. It is then read, diffed and patched again, up to this many times.

    .. code-block:: yaml

        pgha-patroni-dynamic-config:
          patroni.dynamic_config:
            - name: pgha
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    cfg = __salt__["pgha.config"](redact=False)
    desired = config if config is not None else cfg["patroni_dcs"]
    try:
        if wait:
            __salt__["patroni.wait_for_leader"](timeout=wait)
        if leader_only:
            leader = __salt__["patroni.leader"]()
            if leader != cfg["id"]:
                ret["comment"] = (f"{name}: the dynamic configuration is kept by the leader's "
                                  f"run ({leader}), not this member's")
                return ret
        desired = _merged(desired, _overrides())
        current = __salt__["patroni.config_get"]()
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    changes = _diff(current, desired)
    if not changes:
        ret["comment"] = f"{name}: dynamic configuration matches the pillar"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes=changes,
                   comment=f"{name}: would patch {', '.join(sorted(changes))}")
        return ret
    for attempt in range(1, int(attempts) + 1):
        try:
            # PATCH answers with the configuration as stored in etcd; GET /config right
            # after may still serve Patroni's cached copy, so the answer is what is verified.
            left = _diff(__salt__["patroni.config_patch"](_patch_from(changes)), desired)
            break
        except CommandExecutionError as exc:
            if "HTTP 409" not in str(exc) or attempt == int(attempts):
                ret.update(result=False, comment=f"{name}: patching /config failed: {exc}")
                return ret
            # Someone else wrote in between: start again from what is there now.
            try:
                changes = _diff(__salt__["patroni.config_get"](), desired)
            except CommandExecutionError as again:
                ret.update(result=False, comment=f"{name}: patching /config failed: {again}")
                return ret
            if not changes:
                ret["comment"] = f"{name}: dynamic configuration matches the pillar (set meanwhile)"
                return ret
    if left:
        ret.update(result=False, changes=changes,
                   comment=f"{name}: /config still differs after the patch: {sorted(left)}")
        return ret
    ret["changes"] = changes
    ret["comment"] = f"{name}: patched {', '.join(sorted(changes))}"
    if any(key.startswith("postgresql.parameters.") for key in changes):
        pending = _pending_restart(cfg["patroni"]["dcs"]["loop_wait"])
        if pending:
            ret["comment"] += (f"; PostgreSQL restart pending on {', '.join(pending)} "
                               "(run orch.rolling_restart)")
    return ret


def _merged(base, over):
    """*base* with *over* laid on top, recursively (neither is changed)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _pending_restart(loop_wait):
    """Members that report a pending restart, once every member has had a full loop to
    apply the change (reporting earlier would miss members that apply it later)."""
    time.sleep(float(loop_wait) + 2)
    return sorted(m["member"] for m in __salt__["patroni.list"]() if m["pending_restart"])


def restarted(name, pending_only=True, timeout=300):
    """
    Member *name*'s PostgreSQL has been restarted through Patroni (only when it has a
    pending restart, unless pending_only is False), and is back: streaming again for a
    replica, running for the leader.

    .. code-block:: yaml

        pgha-restart-pg-02:
          patroni.restarted:
            - name: pg-02
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        member = next((m for m in __salt__["patroni.list"]() if m["member"] == name), None)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if member is None:
        ret.update(result=False, comment=f"{name} is not a Patroni member")
        return ret
    if pending_only and not member["pending_restart"]:
        ret["comment"] = f"{name} has no pending restart"
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"would restart PostgreSQL on {name}",
                   changes={"restarted": {"old": None, "new": name}})
        return ret
    # A replica restarted right after its primary may not have replayed the primary's
    # new parameter values yet (Patroni then keeps the old, larger ones): check, and
    # restart once more if the member still waits for a restart.
    for attempt in range(3):
        try:
            __salt__["patroni.restart"](name, pending_only=pending_only or attempt > 0)
            __salt__["patroni.wait_healthy"](timeout=timeout)
            time.sleep(2)
            still = next(m for m in __salt__["patroni.list"]() if m["member"] == name)["pending_restart"]
        except CommandExecutionError as exc:
            ret.update(result=False, comment=f"restart of {name} failed: {exc}")
            return ret
        if not still:
            break
    else:
        ret.update(result=False, changes={"restarted": {"old": None, "new": name}},
                   comment=f"{name} still has a pending restart after 3 restarts")
        return ret
    ret["changes"] = {"restarted": {"old": None, "new": name}}
    ret["comment"] = f"restarted PostgreSQL on {name}; the cluster is healthy again"
    return ret


def _own_view(name):
    """Member *name*'s report about itself (its own ``GET /patroni``), or None."""
    try:
        return __salt__["patroni.health"](host=name)
    except CommandExecutionError:
        return None


def reinitialized(name, grace=30, timeout=600):
    """
    Replica *name* has been rebuilt from the leader by Patroni (``reinit``, never
    forced) and streams again, but only when its failure is its own: the leader runs
    and another replica streams from it, or its own log shows a timeline it cannot
    follow (``patroni.replica_fault``: it must hold for *grace* seconds, and the check
    gives up after twice that). Run it on
    *name*'s own minion, whose log it reads.

    Nothing is touched when the member recovers or is in transition (starting,
    creating replica, ...), when the cluster is paused or has no running leader, or
    when no replica streams at all: then the cause is cluster-wide and a reinit would
    wipe every replica for nothing (``orch.heal.replica`` alerts
    ``pgha/alert/replication_broken`` then). Changes are reported only when a reinit was
    requested, and ``streaming`` only once the member's own API says so.

    .. code-block:: yaml

        pgha-reinit-pg-03:
          patroni.reinitialized:
            - name: pg-03
            - grace: 30
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        fault = __salt__["patroni.replica_fault"](name, grace=grace)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"cannot judge {name}: {exc}")
        return ret
    verdict, evidence = fault["verdict"], fault["evidence"]
    if verdict == "cluster_wide":
        ret["comment"] = (f"not reinitialising {name}: replication is broken cluster-wide "
                          f"({evidence}); touched nothing")
        return ret
    if verdict != "local":
        ret["comment"] = f"not reinitialising {name} ({verdict}): {evidence}"
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"would reinitialise {name}: {evidence}",
                   changes={"reinitialized": {"old": fault["state"], "new": "streaming"}})
        return ret
    before = _own_view(name) or {}
    try:
        __salt__["patroni.reinit"](name, force=False)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"Patroni refused to reinitialise {name}: {exc}")
        return ret
    # Patroni answers at once and rebuilds in the background: report only what the
    # member itself says afterwards, seen twice in a row, and only after it has moved
    # on from what it was before the request.
    ret["changes"] = {"reinitialized": {"old": fault["state"], "new": None}}
    deadline = time.monotonic() + float(timeout)
    rebuilt, streak, seen = False, 0, before.get("state")
    while time.monotonic() < deadline:
        view = _own_view(name) or {}
        seen = view.get("state") or "not answering"
        rebuilt = rebuilt or seen == "creating replica" or (
            view.get("postmaster_start_time") not in (None, before.get("postmaster_start_time")))
        streams = seen == "running" and view.get("replication_state") == "streaming"
        streak = streak + 1 if rebuilt and streams else 0
        if streak >= 2:
            ret["changes"]["reinitialized"]["new"] = "streaming"
            ret["comment"] = f"reinitialised {name} ({evidence}); it streams again"
            return ret
        time.sleep(2)
    ret["changes"]["reinitialized"]["new"] = seen
    ret.update(result=False, comment=f"{name} is {seen} {timeout}s after its reinit ({evidence})")
    return ret
