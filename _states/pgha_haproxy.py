"""
HAProxy as the clients' door: it must send writes to the Patroni leader and nowhere else.
"""

import logging
import time

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "pgha_haproxy"


def __virtual__():
    if "pgha_haproxy.backends" not in __salt__:
        return (False, "pgha_haproxy state: the pgha_haproxy execution module is not available")
    return __virtualname__


def routes_writes_to_leader(name, timeout=30):
    """
    This HAProxy's writer backend has exactly one server up, and it is the Patroni
    leader. Waits up to *timeout* seconds (its checks need a moment after a change);
    changes nothing.

    .. code-block:: yaml

        pgha-haproxy-routing:
          pgha_haproxy.routes_writes_to_leader:
            - name: postgres_writer
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    deadline = time.monotonic() + float(timeout)
    while True:
        try:
            leader = __salt__["patroni.leader"]()
            up = sorted(s["server"] for s in __salt__["pgha_haproxy.backends"]()
                        if s["proxy"] == name and s["status"] == "UP")
        except CommandExecutionError as exc:
            leader, up, error = None, [], str(exc)
        else:
            error = None
        if leader and up == [leader]:
            ret["comment"] = f"{name} sends writes to {leader}, the Patroni leader, only"
            return ret
        if time.monotonic() >= deadline:
            ret["result"] = False
            ret["comment"] = error or (f"{name} has {up or 'no server'} up; the Patroni leader "
                                       f"is {leader}")
            return ret
        time.sleep(0.5)
