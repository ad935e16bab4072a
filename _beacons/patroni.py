"""
Beacon: this node's Patroni member, as its own REST API reports it.

Fires ``salt/beacon/<minion>/<beacon name>/<kind>`` (the beacon is configured as
``pgha_patroni`` by the pgha formula), where kind is one of:

``role_changed``
    This member became the leader, or stopped being it. Data: ``old_role``,
    ``new_role``, ``old_leader``, ``new_leader``, ``timeline``.
``state``
    The member has been in one failed state for ``failed_grace`` seconds (``start
    failed``, ``crashed``, ``stopped``, ...), or a replica has run without streaming for
    ``not_streaming_grace`` seconds (a diverged timeline it cannot follow). Each kind of
    problem has its own timer, which starts when that problem is first seen and ends
    when it has not been seen for ``FORGET_AFTER`` seconds or the member is healthy: a
    replica that was being cloned a moment ago is not "not streaming" for as long as it
    was cloning. Transitional states (starting, stopping, restarting, creating replica,
    ...) are no failure. Data: ``state``, ``role``, ``since``.
``lag``
    Replication lag above ``lag_bytes``. Data: ``lag``, ``lag_bytes``.
``missing``
    This member is not in the cluster Patroni reports (or its API does not answer).
``pending_restart``
    A parameter change waits for a PostgreSQL restart. Data: ``reasons``.

Transitions fire once; a condition that persists fires again every ``repeat``
seconds, so a remediation that was rate-limited can be retried later. Every event is
signed with this minion's Salt key (``pgha_event.sign_events``): the master acts only
on events whose signature proves the sender.

.. code-block:: yaml

    beacons:
      pgha_patroni:
        - beacon_module: patroni
        - interval: 5
        - lag_bytes: 16777216
        - repeat: 30
        - not_streaming_grace: 60
        - failed_grace: 15
"""

import logging
import time

import salt.utils.beacons

log = logging.getLogger(__name__)

__virtualname__ = "patroni"

HEALTHY_STATES = ("running", "streaming")
# Patroni's states that end by themselves: never a failure.
TRANSITIONAL_STATES = ("starting", "stopping", "restarting", "creating replica",
                       "initializing new cluster", "running custom bootstrap script",
                       "starting after custom bootstrap")
# A problem not seen for this long is over, and its timer ends. Longer than a start
# attempt's "starting" between two "start failed" (Patroni retries once per loop_wait).
FORGET_AFTER = 30


def __virtual__():
    return __virtualname__


REQUIRED = ("lag_bytes", "repeat", "not_streaming_grace", "failed_grace")


def validate(config):
    config = salt.utils.beacons.list_to_dict(config)
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        return False, f"patroni beacon: {', '.join(missing)} missing (the pgha formula sets them)"
    for key in REQUIRED:
        if not isinstance(config[key], int):
            return False, f"patroni beacon: {key} must be an integer"
    return True, "valid beacon configuration"


def problem(role, state, streaming):
    """The kind of problem a member's own report shows, or None: a plain function of
    its role, its Patroni state and whether it streams."""
    if state in TRANSITIONAL_STATES:
        return None
    if state not in HEALTHY_STATES:
        return state or "unknown"
    if role == "replica" and not streaming:
        return "not streaming"
    return None


def _fire(ctx, events, key, repeat, data, now):
    """Add *data* under tag *key* unless it fired less than *repeat* seconds ago."""
    last = ctx.setdefault("fired", {}).get(key)
    if last is None or now - last >= repeat:
        ctx["fired"][key] = now
        events.append(data)


def beacon(config):
    config = salt.utils.beacons.list_to_dict(config)
    events = _events(config)
    return __salt__["pgha_event.sign_events"](config["_beacon_name"], events) if events else []


def _events(config):
    lag_bytes = config["lag_bytes"]
    repeat = config["repeat"]
    grace = config["not_streaming_grace"]
    ctx = __context__.setdefault("pgha_patroni_beacon", {})
    now = time.time()
    events = []
    me = __grains__["id"]

    try:
        status = __salt__["patroni.health"](host=me)
        members = __salt__["patroni.cluster"](host=me).get("members", [])
    except Exception as exc:  # noqa: BLE001 - Patroni down: the service beacon says so
        _fire(ctx, events, "missing", repeat,
              {"tag": "missing", "member": me, "reason": str(exc)}, now)
        return events

    role = "leader" if status.get("role") in ("primary", "master", "standby_leader") else "replica"
    state = status.get("state")
    leader = next((m["name"] for m in members if m.get("role") in ("leader", "standby_leader")), None)
    mine = next((m for m in members if m["name"] == me), None)

    if mine is None:
        _fire(ctx, events, "missing", repeat, {"tag": "missing", "member": me,
                                               "reason": "not in the cluster's member list"}, now)
    else:
        ctx.setdefault("fired", {}).pop("missing", None)

    if "role" in ctx and ctx["role"] != role:
        events.append({"tag": "role_changed", "member": me, "old_role": ctx["role"],
                       "new_role": role, "old_leader": ctx.get("leader"), "new_leader": leader,
                       "timeline": status.get("timeline")})
    ctx["role"] = role
    # While this replica promotes, /cluster already names it leader: remembering that
    # would report it as its own predecessor at the role change.
    if leader and (leader != me or role == "leader"):
        ctx["leader"] = leader

    bad = problem(role, state, status.get("replication_state") == "streaming")
    timers = ctx.setdefault("timers", {})
    fired = ctx.setdefault("fired", {})
    for kind in [k for k, t in timers.items()
                 if (bad is None and state not in TRANSITIONAL_STATES) or now - t["last"] > FORGET_AFTER]:
        del timers[kind]
        fired.pop(f"state:{kind}", None)
    if bad is not None:
        timer = timers.setdefault(bad, {"since": now, "last": now})
        timer["last"] = now
        wait = grace if bad == "not streaming" else config["failed_grace"]
        if now - timer["since"] >= wait:
            _fire(ctx, events, f"state:{bad}", repeat, {"tag": "state", "member": me, "state": bad,
                                                        "role": role, "since": timer["since"]}, now)

    lag = mine.get("lag") if mine else None
    if role == "replica" and isinstance(lag, int) and lag > lag_bytes:
        _fire(ctx, events, "lag", repeat, {"tag": "lag", "member": me, "lag": lag,
                                           "lag_bytes": lag_bytes}, now)

    if status.get("pending_restart"):
        _fire(ctx, events, "pending_restart", 3600,
              {"tag": "pending_restart", "member": me,
               "reasons": status.get("pending_restart_reason", {})}, now)
    else:
        ctx.setdefault("fired", {}).pop("pending_restart", None)
    return events
