"""
Patroni cluster states: health as a gate for orchestrations.

Patroni owns leadership; these states only read, or ask Patroni through its REST API.
"""

import logging

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
