"""
Backups as self-healing sees them: on the backup node, a newest backup older than
pgha:backup:max_age (``stale``); on the postgres node that is the Patroni leader,
archiving that fails (``archive_failing``, from pg_stat_archiver). Each condition is
reported when it starts and again every *repeat* seconds while it lasts; the reaction
(orch/heal/backup.sls) only alerts: nothing here repairs or deletes anything.

.. code-block:: yaml

    beacons:
      pgha_backup:
        - interval: 5
        - check_interval: 60
        - repeat: 30
"""

import time

import salt.utils.beacons

__virtualname__ = "pgha_backup"


def __virtual__():
    return __virtualname__


def validate(config):
    config = salt.utils.beacons.list_to_dict(config)
    for key in ("check_interval", "repeat"):
        if not isinstance(config.get(key), int) or config[key] < 1:
            return False, f"pgha_backup beacon: {key} must be a whole number of seconds"
    return True, "valid"


def beacon(config):
    config = salt.utils.beacons.list_to_dict(config)
    events = _events(config, time.time())
    return __salt__["pgha_event.sign_events"](config["_beacon_name"], events) if events else []


def _due(ctx, key, every, now):
    last = ctx.get(key)
    if last is None or now - last >= every:
        ctx[key] = now
        return True
    return False


def _events(config, now):
    ctx = __context__.setdefault("pgha_backup_beacon", {})
    if not _due(ctx, "looked", config["check_interval"], now):
        return []
    cfg = __salt__["pgha.config"]()
    me = cfg["id"]
    found = []
    if me in cfg["backup_members"]:
        try:
            # Beacons get no __utils__: the execution module carries the decision.
            problem = __salt__["pgbackrest.freshness"]()
        except Exception as exc:  # noqa: BLE001 - an unreadable repository is the problem
            problem = f"the repository cannot be read: {exc}"
        if problem:
            found.append({"tag": "stale", "member": me, "problem": problem})
    if me in cfg["postgres_members"]:
        try:
            leader = __salt__["patroni.health"](host=me).get("role") in ("primary", "master")
            stats = __salt__["pgbackrest.archiver"]() if leader else None
        except Exception:  # noqa: BLE001 - Patroni or PostgreSQL down: other beacons say so
            stats = None
        if stats and stats["failing"]:
            found.append({"tag": "archive_failing", "member": me, "wal": stats["last_failed_wal"],
                          "failed_count": stats["failed_count"]})
    events = []
    fired = ctx.setdefault("fired", {})
    for event in found:
        if _due(fired, event["tag"], config["repeat"], now):
            events.append(event)
    for kind in [k for k in fired if k not in {e["tag"] for e in found}]:
        del fired[kind]
    return events
