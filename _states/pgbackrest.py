"""
pgBackRest's repository as pgha wants it: the stanza exists, and the newest backup is
fresh. Both ask pgBackRest first and change nothing when nothing differs.
"""

import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "pgbackrest"


def __virtual__():
    if "pgbackrest.info" not in __salt__:
        return False, "pgbackrest state: the pgbackrest execution module is not loaded"
    return __virtualname__


def stanza_present(name):
    """
    The stanza *name* exists in the repository (run on the repository host, with the
    cluster's primary up): created with ``stanza-create`` when missing.

    .. code-block:: yaml

        pgha-stanza:
          pgbackrest.stanza_present:
            - name: pgha
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        entry = __utils__["pgha_backup.stanza_of"](__salt__["pgbackrest.info"](name), name)
    except (CommandExecutionError, ValueError) as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    # Status 1 is "missing stanza path": nothing there yet. Any other error (a
    # mismatched system identifier, an unreadable repository) is not for this state to
    # paper over with a new stanza.
    code = ((entry or {}).get("status") or {}).get("code")
    if entry is not None and code != 1:
        if code not in (0, 2):
            ret.update(result=False, comment=__utils__["pgha_backup.status_problem"](entry))
            return ret
        ret["comment"] = f"stanza {name} exists ({entry['status'].get('message')})"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes={"stanza": {"old": None, "new": name}},
                   comment=f"stanza {name} would be created")
        return ret
    try:
        __salt__["pgbackrest.stanza_create"](name)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    ret.update(changes={"stanza": {"old": None, "new": name}}, comment=f"stanza {name} created")
    return ret


def backup_fresh(name, max_age=None):
    """
    The newest good backup of stanza *name* finished less than *max_age* seconds ago
    (default: pgha:backup:max_age). Takes no backup: it fails and says how old the
    newest is (``orch.backup`` takes one).

    .. code-block:: yaml

        pgha-backup-fresh:
          pgbackrest.backup_fresh:
            - name: pgha
            - max_age: 93600
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if max_age is None:
        max_age = __salt__["pgha.config"]()["backup"]["max_age"]
    try:
        info = __salt__["pgbackrest.info"](name)
        problem = __utils__["pgha_backup.freshness_problem"](info, name, time.time(), int(max_age))
    except (CommandExecutionError, ValueError) as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if problem:
        ret.update(result=False, comment=problem)
        return ret
    summary = __utils__["pgha_backup.summary"](info, name, time.time())
    ret["comment"] = f"stanza {name}: the newest backup finished {summary['newest_age']} s ago"
    return ret


def restorable(name, confirm=None, target_time=None, target_lsn=None, target_name=None,
               target_timeline=None, cluster=None):
    """
    orch.restore may go ahead: the confirmation is the cluster's name, the target is
    well formed, the repository answers with the pillar's passphrase, and a backup of
    stanza *name* ended before the target. Changes nothing; run it on the backup node
    before anything is stopped.

    .. code-block:: yaml

        pgha-restore-possible:
          pgbackrest.restorable:
            - name: pgha
            - confirm: pgha
            - target_time: "2026-12-01 20:15:00+00"
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    cluster = cluster or __salt__["pgha.config"]()["cluster"]["name"]
    run = {"confirm": confirm, "target_time": target_time, "target_lsn": target_lsn,
           "target_name": target_name, "target_timeline": target_timeline}
    try:
        info = __salt__["pgbackrest.info"](name)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"the repository cannot be read, nothing was changed: {exc}")
        return ret
    problems = __utils__["pgha_backup.restore_problems"](run, cluster, info, name)
    if problems:
        ret.update(result=False, comment="; ".join(problems) + "; nothing was changed")
        return ret
    target = __utils__["pgha_backup.restore_target"](run)
    ret["comment"] = (f"stanza {name} can be restored to "
                      f"{target['value'] or 'the end of the archive'} ({target['type']})")
    return ret


def rebuild_allowed(name, confirm=None, allow_without_backup=False, cluster=None):
    """
    orch.rebuild may go ahead: the confirmation is the cluster's name, and a backup of
    stanza *name* younger than pgha:backup:rebuild_requires_backup_within exists (or
    allow_without_backup is true). Changes nothing.

    .. code-block:: yaml

        pgha-rebuild-allowed:
          pgbackrest.rebuild_allowed:
            - name: pgha
            - confirm: pgha
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    cfg = __salt__["pgha.config"]()
    cluster = cluster or cfg["cluster"]["name"]
    run = {"confirm": confirm, "allow_without_backup": allow_without_backup is True}
    try:
        info = [] if run["allow_without_backup"] else __salt__["pgbackrest.info"](name)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"the repository cannot be read, nothing was changed: {exc}")
        return ret
    problems = __utils__["pgha_backup.rebuild_problems"](
        run, cluster, info, name, time.time(), int(cfg["backup"]["rebuild_requires_backup_within"]))
    if problems:
        ret.update(result=False, comment="; ".join(problems) + "; nothing was changed")
        return ret
    ret["comment"] = f"{cluster} may be rebuilt"
    return ret


def wal_archived(name, required=True):
    """
    The primary's current WAL segment is in the archive: ``pgbackrest check`` switches
    it and waits for it (run on the backup node). With *required* false a failure (no
    primary running, say) is reported in the comment only: orch.restore asks for it
    before it stops a cluster that may already be down.

    .. code-block:: yaml

        pgha-wal-archived:
          pgbackrest.wal_archived:
            - name: pgha
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__["test"]:
        ret.update(result=None, comment=f"stanza {name}: the current WAL segment would be archived")
        return ret
    try:
        __salt__["pgbackrest.check"](name)
    except CommandExecutionError as exc:
        ret.update(result=False if required else True,
                   comment=f"the current WAL segment was not archived: {exc}")
        return ret
    ret["comment"] = f"stanza {name}: the current WAL segment is in the archive"
    return ret
