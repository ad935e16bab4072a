"""
States for pgha's monitoring (see the ``pgha_monitor`` execution module).
"""

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "pgha_monitor"


def __virtual__():
    if "pgha_monitor.ensure_role" not in __salt__:
        return (False, "the pgha_monitor execution module is not loaded (saltutil.sync_all)")
    return __virtualname__


def role_present(name):
    """
    postgres_exporter's login role *name* exists on the primary, logs in with the
    pillar's password (pgha:monitoring:postgres_exporter:password) and has pg_monitor and
    no other attribute. On a replica, or with PostgreSQL stopped, nothing to do.

    .. code-block:: yaml

        pgha-monitoring-role:
          pgha_monitor.role_present:
            - name: pgha_monitor
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    test = bool(__opts__["test"])
    try:
        outcome = __salt__["pgha_monitor.ensure_role"](name, test=test)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    ret["comment"] = outcome["comment"]
    if outcome["changes"]:
        ret["changes"] = outcome["changes"]
        ret["result"] = None if test else True
    return ret


def targets_up(name, timeout=120, interval=3):
    """
    Wait until every scrape target of this monitor node's Prometheus is up (a check:
    it changes nothing). Fails naming each target still down after *timeout* seconds.

    .. code-block:: yaml

        pgha-check-monitoring:
          pgha_monitor.targets_up:
            - name: prometheus
            - timeout: 120
    """
    import time  # pylint: disable=import-outside-toplevel

    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    deadline = time.monotonic() + float(timeout)
    down, error = ["no answer yet"], ""
    while True:
        try:
            found = __salt__["pgha_monitor.targets"]()
            down = __salt__["pgha_monitor.targets_down"](found) if found else ["Prometheus has no targets yet"]
            error = ""
        except CommandExecutionError as exc:
            error = str(exc)
        if not down and not error:
            ret["comment"] = f"all {len(found)} scrape targets are up"
            return ret
        if time.monotonic() > deadline:
            ret["result"] = False
            ret["comment"] = f"after {timeout}s: " + (error or "; ".join(down))
            return ret
        time.sleep(float(interval))
