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
