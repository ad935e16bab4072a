"""
Beacon: this node's etcd member, through its /health endpoint.

Fires ``salt/beacon/<minion>/<beacon name>/unhealthy`` (configured as ``pgha_etcd`` by the
pgha formula) once the local member has run but answered unhealthy or not at all for
``grace`` seconds on end, and then at most every ``repeat`` seconds. A member that a
highstate or an operator has just restarted is unhealthy for a second or two: not a
fault to restart it for again. Data: ``member``, ``reason``. A stopped etcd is the
``pgha_services`` beacon's business, not this one's. Events are signed with this
minion's Salt key (``pgha_event.sign_events``).

.. code-block:: yaml

    beacons:
      pgha_etcd:
        - beacon_module: etcd3
        - interval: 5
        - service: etcd
        - grace: 15
        - repeat: 30
"""

import json
import logging
import time

import salt.utils.beacons

log = logging.getLogger(__name__)

__virtualname__ = "etcd3"


def __virtual__():
    return __virtualname__


def validate(config):
    config = salt.utils.beacons.list_to_dict(config)
    for key in ("repeat", "grace"):
        if not isinstance(config.get(key), int):
            return False, f"etcd3 beacon: {key} must be an integer (the pgha formula sets it)"
    if not isinstance(config.get("service"), str):
        return False, "etcd3 beacon: service must name etcd's unit (the pgha formula sets it)"
    return True, "valid beacon configuration"


def beacon(config):
    config = salt.utils.beacons.list_to_dict(config)
    events = _events(config)
    return __salt__["pgha_event.sign_events"](config["_beacon_name"], events) if events else []


def _members(ctx):
    """The postgres members as map.jinja derives them, rendered again only when the
    pillar's node list changed. Rendering fetches the formula's files from the master,
    and a beacon runs inside the minion's main loop: doing that on every interval kept
    the loop busy with the master, and under load the minion stopped answering."""
    nodes = json.dumps(__salt__["pillar.get"]("pgha:nodes", {}), sort_keys=True, default=str)
    if ctx.get("nodes") != nodes:
        ctx["members"] = __salt__["pgha.config"](refresh=True)["postgres_members"]
        ctx["nodes"] = nodes
    return ctx["members"]


def _events(config):
    repeat = config["repeat"]
    ctx = __context__.setdefault("pgha_etcd_beacon", {})
    me = __grains__["id"]
    if not __salt__["service.status"](config["service"]):
        ctx.pop("since", None)
        return []
    # Only a member pillar knows about is watched (a pillar being changed, e.g. a node
    # on its way out, must not look like an unhealthy member).
    if me not in _members(ctx):
        return []
    try:
        state = __salt__["etcd3.health"](member=me)[me]
    except Exception as exc:  # noqa: BLE001
        state = {"healthy": False, "reason": str(exc)}
    now = time.time()
    if state["healthy"]:
        ctx.pop("fired", None)
        ctx.pop("since", None)
        return []
    since = ctx.setdefault("since", now)
    if now - since < config["grace"] or now - ctx.get("fired", 0) < repeat:
        return []
    ctx["fired"] = now
    return [{"tag": "unhealthy", "member": me, "reason": state["reason"]}]
