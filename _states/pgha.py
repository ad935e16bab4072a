"""
Checks that gate pgha's orchestrations and highstate: a valid pillar before anything
changes, and a working cluster as a client sees it at the end.
"""

import logging

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "pgha"


def __virtual__():
    if "pgha.validate" not in __salt__:
        return (False, "pgha state: the pgha execution module is not synced")
    return __virtualname__


def validated(name):
    """
    Fail, changing nothing, when the pillar's ``pgha:`` data is invalid; the comment
    lists each problem with the key and the fix.

    .. code-block:: yaml

        pgha-validate:
          pgha.validated:
            - name: pgha
            - failhard: True
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    errors = __salt__["pgha.validate"]()
    if errors:
        ret["result"] = False
        ret["comment"] = "pillar pgha: is invalid, nothing was changed:\n- " + "\n- ".join(errors)
    else:
        ret["comment"] = "pillar pgha: is valid"
    return ret


def end_to_end(name, host=None, timeout=60):
    """
    Succeed when a client can write through the writer port and read the same rows from
    a replica through the reader port (see ``pgha_client.end_to_end``). The check creates
    and drops a scratch database; it reports no changes.

    .. code-block:: yaml

        pgha-e2e:
          pgha.end_to_end:
            - name: through the VIP
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = "would run the end-to-end check"
        return ret
    try:
        report = __salt__["pgha_client.end_to_end"](host=host, timeout=timeout)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"end-to-end check failed: {exc}"
        return ret
    ret["comment"] = (
        f"through {report['host']}: wrote and read {report['rows']} rows on the primary "
        f"{report['writer']['node']} (PostgreSQL {report['writer']['version']}), read them "
        f"back from the replica {report['reader']['node']}; scratch database dropped")
    return ret
