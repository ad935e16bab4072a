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


def remediation_allowed(name, max_attempts=3, window=600):
    """
    Count one remediation attempt for *name* (``kind/member/...``) in the master's cache,
    and fail (attempting nothing) when *max_attempts* were already made within the last
    *window* seconds. This is what keeps self-healing out of restart loops.

    .. code-block:: yaml

        pgha-heal-budget:
          pgha.remediation_allowed:
            - name: service/pg-02/patroni
            - max_attempts: 3
            - window: 600
    """
    import fcntl  # pylint: disable=import-outside-toplevel
    import json  # pylint: disable=import-outside-toplevel
    import os  # pylint: disable=import-outside-toplevel
    import time  # pylint: disable=import-outside-toplevel

    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    path = os.path.join(__opts__["cachedir"], "pgha", "remediation.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    now = time.time()
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        try:
            attempts = json.loads(fh.read() or "{}")
        except ValueError:
            attempts = {}
        recent = [t for t in attempts.get(name, []) if now - t < float(window)]
        if len(recent) >= int(max_attempts):
            ret["result"] = False
            ret["comment"] = (f"{name}: {len(recent)} attempts in the last {window}s already "
                              f"(limit {max_attempts}); not trying again")
            return ret
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = f"{name}: attempt {len(recent) + 1} of {max_attempts} would be made"
            return ret
        recent.append(now)
        attempts[name] = recent
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(attempts))
    ret["changes"] = {"attempts": {"old": len(recent) - 1, "new": len(recent)}}
    ret["comment"] = f"{name}: attempt {len(recent)} of {max_attempts} in {window}s"
    return ret
