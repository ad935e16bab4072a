"""
Beacon: pgha's services on this node (patroni, etcd, haproxy, keepalived).

Fires ``salt/beacon/<minion>/pgha_services/<service>`` while a service that should run
is not running: once it has been down for ``delay`` seconds, then again every ``repeat``
seconds while it stays down (so the reactor's retries, and its rate limit, have
something to count). Running services fire nothing. Salt's own ``service`` beacon either
fires only on a change (no retries after a failed start) or every interval for every
service (noise); this one does neither.

Data: ``service``, ``running`` (False), ``down_since``. Events are signed with this
minion's Salt key (``pgha_event.sign_events``): the master acts only on events whose
signature proves the sender, and only for a service its role runs.

.. code-block:: yaml

    beacons:
      pgha_services:
        - services: [patroni, etcd]
        - interval: 5
        - delay: 3
        - repeat: 30
"""

import logging
import time

import salt.utils.beacons

log = logging.getLogger(__name__)

__virtualname__ = "pgha_services"


def __virtual__():
    return __virtualname__


def validate(config):
    config = salt.utils.beacons.list_to_dict(config)
    if not isinstance(config.get("services"), list) or not config["services"]:
        return False, "pgha_services beacon: services must be a non-empty list"
    for key in ("delay", "repeat"):
        if not isinstance(config.get(key), int):
            return False, f"pgha_services beacon: {key} must be an integer (the pgha formula sets it)"
    return True, "valid beacon configuration"


def beacon(config):
    config = salt.utils.beacons.list_to_dict(config)
    events = _events(config)
    return __salt__["pgha_event.sign_events"](config["_beacon_name"], events) if events else []


def _events(config):
    delay = config["delay"]
    repeat = config["repeat"]
    ctx = __context__.setdefault("pgha_services_beacon", {})
    now = time.time()
    events = []
    for service in config["services"]:
        if __salt__["service.status"](service):
            ctx.pop(service, None)
            continue
        seen = ctx.setdefault(service, {"down_since": now, "fired": None})
        if now - seen["down_since"] < delay:
            continue
        if seen["fired"] is None or now - seen["fired"] >= repeat:
            seen["fired"] = now
            events.append({"tag": service, "service": service, "running": False,
                           "down_since": seen["down_since"]})
    return events
