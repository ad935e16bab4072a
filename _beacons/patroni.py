"""
Beacon: this node's Patroni member, as its own REST API reports it.

Fires ``salt/beacon/<minion>/<beacon name>/<kind>`` (the beacon is configured as
``pgha_patroni`` by the pgha formula), where kind is one of:

``role_changed``
    This member became the leader, or stopped being it. Data: ``old_role``,
    ``new_role``, ``old_leader``, ``new_leader``, ``timeline``.
``state``
    The member's state has not been running/streaming for ``failed_grace`` seconds
    (``start failed``, ``crashed``, ``stopped``, ...), or a replica has run without
    streaming for ``not_streaming_grace`` seconds (a diverged timeline it cannot
    follow). Data: ``state``, ``role``, ``since``.
``lag``
    Replication lag above ``lag_bytes``. Data: ``lag``, ``lag_bytes``.
``missing``
    This member is not in the cluster Patroni reports (or its API does not answer).
``pending_restart``
    A parameter change waits for a PostgreSQL restart. Data: ``reasons``.

Transitions fire once; a condition that persists fires again every ``repeat``
seconds, so a remediation that was rate-limited can be retried later.

.. code-block:: yaml

    beacons:
      pgha_patroni:
        - beacon_module: patroni
        - interval: 5
        - lag_bytes: 16777216
        - repeat: 60
"""

import logging
import time

import salt.utils.beacons

log = logging.getLogger(__name__)

__virtualname__ = "patroni"

HEALTHY_STATES = ("running", "streaming")
# Patroni restarts a crashed PostgreSQL itself; a bad state counts once it lasted this long.
FAILED_GRACE = 15
# A replica may be 'running' (not streaming) for a while as it reconnects or rewinds.
NOT_STREAMING_GRACE = 60


def __virtual__():
    return __virtualname__


def validate(config):
    config = salt.utils.beacons.list_to_dict(config)
    for key in ("lag_bytes", "repeat", "not_streaming_grace", "failed_grace"):
        if key in config and not isinstance(config[key], int):
            return False, f"patroni beacon: {key} must be an integer"
    return True, "valid beacon configuration"


def _fire(ctx, events, key, repeat, data, now):
    """Add *data* under tag *key* unless it fired less than *repeat* seconds ago."""
    last = ctx.setdefault("fired", {}).get(key)
    if last is None or now - last >= repeat:
        ctx["fired"][key] = now
        events.append(data)


def beacon(config):
    config = salt.utils.beacons.list_to_dict(config)
    lag_bytes = config.get("lag_bytes", 16 * 1024 * 1024)
    repeat = config.get("repeat", 60)
    grace = config.get("not_streaming_grace", NOT_STREAMING_GRACE)
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
    if leader:
        ctx["leader"] = leader

    streaming = status.get("replication_state") == "streaming"
    if state not in HEALTHY_STATES:
        bad, wait = state, config.get("failed_grace", FAILED_GRACE)
    elif role == "replica" and not streaming:
        bad, wait = "not streaming", grace
    else:
        bad = None
    if bad is None:
        ctx.pop("bad_since", None)
        ctx.setdefault("fired", {}).pop("state", None)
    else:
        since = ctx.setdefault("bad_since", now)
        if now - since >= wait:
            _fire(ctx, events, "state", repeat, {"tag": "state", "member": me, "state": bad,
                                                 "role": role, "since": since}, now)

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
