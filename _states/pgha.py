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


def _budget(update=None):
    """Read the remediation record in the master's cache, under an exclusive lock; with
    *update*, a function that changes it in place, write it back. Returns the record."""
    import fcntl  # pylint: disable=import-outside-toplevel
    import json  # pylint: disable=import-outside-toplevel
    import os  # pylint: disable=import-outside-toplevel

    path = os.path.join(__opts__["cachedir"], "pgha", "remediation.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        try:
            attempts = json.loads(fh.read() or "{}")
        except ValueError:
            attempts = {}
        if update is not None:
            update(attempts)
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(attempts))
        return attempts


def remediation_allowed(name, max_attempts=3, window=600, record=True):
    """
    Fail (attempting nothing) when *max_attempts* remediations of *name*
    (``kind/member/...``) were already made within the last *window* seconds, as
    counted in the master's cache. This is what keeps self-healing out of restart loops.

    record
        Count this attempt now (the default). With ``False`` it only checks, and
        ``pgha.remediation_counted`` counts the attempt once it was really made: a
        reaction that found nothing to do must not use up the budget.

    .. code-block:: yaml

        pgha-heal-budget:
          pgha.remediation_allowed:
            - name: service/pg-02/patroni
            - max_attempts: 3
            - window: 600
    """
    import time  # pylint: disable=import-outside-toplevel

    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    now = time.time()
    recent, allowed = __utils__["pgha_plans.attempts_left"](_budget().get(name, []), now, window, max_attempts)
    if not allowed:
        ret["result"] = False
        ret["comment"] = (f"{name}: {len(recent)} attempts in the last {window}s already "
                          f"(limit {max_attempts}); not trying again")
        return ret
    if __opts__["test"] or not record:
        ret["result"] = None if __opts__["test"] else True
        ret["comment"] = f"{name}: attempt {len(recent) + 1} of {max_attempts} may be made"
        return ret
    return _count(ret, name, window, max_attempts)


def remediation_counted(name, window=600, max_attempts=3):
    """
    Count one remediation attempt of *name* in the master's cache (after
    ``pgha.remediation_allowed`` with ``record: False`` allowed it and the attempt was
    made). Use it with ``onchanges`` on the step that acted.

    .. code-block:: yaml

        pgha-heal-replica-counted:
          pgha.remediation_counted:
            - name: reinit/pg-03
            - onchanges:
              - salt: pgha-heal-replica-reinit
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__["test"]:
        ret.update(result=None, comment=f"{name}: an attempt would be counted")
        return ret
    return _count(ret, name, window, max_attempts)


def _count(ret, name, window, max_attempts):
    import time  # pylint: disable=import-outside-toplevel

    now = time.time()
    made = []

    def add(attempts):
        recent = __utils__["pgha_plans.attempts_left"](attempts.get(name, []), now, window, max_attempts)[0] + [now]
        attempts[name] = recent
        made.append(len(recent))
    _budget(add)
    ret["changes"] = {"attempts": {"old": made[0] - 1, "new": made[0]}}
    ret["comment"] = f"{name}: attempt {made[0]} of {max_attempts} in {window}s"
    return ret


def _leases_path():
    return __utils__["pgha_lock.path"](__opts__["cachedir"])


def lease_held(name, owner, ttl=1800, reason="", operator_ok=True):
    """
    Hold the master's lease *name* (``maintenance``, or a heal slot such as ``reinit``)
    for *owner*, for *ttl* seconds at most: a run that dies half way leaves a lease that
    ends by itself. Fails, changing nothing, while someone else holds it. With
    *operator_ok*, a maintenance window an operator opened (``salt-run pgha.maintenance
    on``) counts as held: the operator's own work runs inside it.

    .. code-block:: yaml

        pgha-orch-switchover-maintenance:
          pgha.lease_held:
            - name: maintenance
            - owner: orch.switchover/3f2a
            - ttl: 1800
    """
    import time  # pylint: disable=import-outside-toplevel

    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    path = _leases_path()
    now = time.time()
    held = __utils__["pgha_lock.status"](path, now).get(name)
    if held and held["owner"] != owner:
        if operator_ok and held.get("kind") == "operator":
            ret["comment"] = (f"{name}: inside the maintenance window {held['owner']} opened "
                              f"({held.get('reason') or 'no reason given'})")
            return ret
        ret.update(result=False, comment=(
            f"{name} is held by {held['owner']} ({held.get('reason') or held.get('kind')}) "
            f"for {held['expires'] - now:.0f}s more; wait for it, or release it with "
            "salt-run pgha.maintenance off"))
        return ret
    # A lease is bookkeeping on the master, not a change to the cluster: it is reported
    # in the comment, never as changes (a no-change rerun stays a no-change rerun).
    if __opts__["test"]:
        ret["comment"] = f"{name} would be held by {owner} for {ttl}s"
        return ret
    taken, lease = __utils__["pgha_lock.acquire"](path, name, owner, ttl, now, reason=reason)
    if not taken:
        ret.update(result=False, comment=f"{name} was taken by {lease['owner']} just now")
        return ret
    ret["comment"] = f"{name} held by {owner} for {ttl}s at most"
    return ret


def lease_released(name, owner):
    """
    Release the master's lease *name* if *owner* holds it (a no-op otherwise: a
    maintenance window opened by an operator stays open).

    .. code-block:: yaml

        pgha-orch-switchover-release:
          pgha.lease_released:
            - name: maintenance
            - owner: orch.switchover/3f2a
            - order: last
    """
    import time  # pylint: disable=import-outside-toplevel

    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    path = _leases_path()
    held = __utils__["pgha_lock.status"](path, time.time()).get(name)
    if not held or held["owner"] != owner:
        ret["comment"] = f"{name} is not held by {owner}"
        return ret
    if __opts__["test"]:
        ret["comment"] = f"{name} would be released by {owner}"
        return ret
    __utils__["pgha_lock.release"](path, name, owner, now=time.time())
    ret["comment"] = f"{name} released by {owner}"
    return ret
