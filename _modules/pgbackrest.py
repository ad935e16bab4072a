"""
pgBackRest on a pgha node: the repository's contents, checks and backups, run as the
postgres user (Debian's unit and the repository's owner) with the configuration
pgha.pgbackrest writes. Every command's JSON answer is parsed; a failure raises
CommandExecutionError with pgBackRest's own message (``ERROR: [code]: ...``).

The decisions (a summary, freshness) are plain functions in ``_utils/pgha_backup.py``.
"""

import json
import logging
import re

import salt.utils.path
from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "pgbackrest"

BINARY = "/usr/bin/pgbackrest"
BACKUP_TYPES = ("full", "diff", "incr")
_ERROR = re.compile(r"^(?:ERROR|ASSERT): \[\d+\]: .*$", re.M)


def __virtual__():
    if not salt.utils.path.which("pgbackrest"):
        return False, "pgbackrest: the pgbackrest binary is not installed (pgha.pgbackrest installs it)"
    return __virtualname__


def _stanza(stanza):
    cfg = __salt__["pgha.config"]()
    if not cfg["backup"]["enabled"]:
        raise CommandExecutionError("pgbackrest: pgha:backup:enabled is false on this node")
    return stanza or cfg["backup_stanza"], cfg


def _run(command, stanza=None, options=(), timeout=3600):
    """Run ``pgbackrest --stanza=... [options] command`` as postgres; its stdout."""
    stanza, cfg = _stanza(stanza)
    argv = [BINARY, f"--config={cfg['backup']['config_file']}", f"--stanza={stanza}", *options, command]
    env = {}
    if cfg["id"] in cfg["backup_members"]:
        # The passphrase the pillar holds now, not the one in the file: a changed or
        # wrong one shows at once (pgBackRest prefers the environment to the file).
        secret = __salt__["pgha.config"](redact=False)["backup"]["repo"]["cipher_pass"]
        if secret:
            env["PGBACKREST_REPO1_CIPHER_PASS"] = secret
    res = __salt__["cmd.run_all"](argv, runas="postgres", python_shell=False, timeout=timeout,
                                  ignore_retcode=True, output_loglevel="quiet", cwd="/tmp", env=env)
    if res["retcode"] != 0:
        text = (res.get("stderr") or "") + "\n" + (res.get("stdout") or "")
        found = _ERROR.findall(text)
        message = "; ".join(found) if found else (text.strip() or f"exit code {res['retcode']}")
        raise CommandExecutionError(f"pgbackrest {command} (stanza {stanza}) failed: {message}",
                                    info={"retcode": res["retcode"]})
    return res["stdout"]


def info(stanza=None):
    """
    Return ``pgbackrest info --output=json`` for the stanza (default: pgha's, from
    pgha:backup:stanza or the cluster's name): its status, backups and archive range.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgbackrest.info
    """
    # An unreachable repository host is retried for io-timeout, three times over: the
    # default (60 s) would keep a status or a preflight waiting three minutes.
    out = _run("info", stanza, ["--output=json", "--io-timeout=10"], timeout=120)
    try:
        return json.loads(out)
    except ValueError as exc:
        raise CommandExecutionError(f"pgbackrest info: not JSON ({exc}): {out[:200]}")


def summary(stanza=None):
    """
    Return what ``pgha.status`` shows of the repository: the newest full, differential
    and incremental backup (label, age, sizes), the newest archived WAL segment, and
    the age of the newest backup.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgbackrest.summary
    """
    import time  # pylint: disable=import-outside-toplevel

    stanza, _ = _stanza(stanza)
    return __utils__["pgha_backup.summary"](info(stanza), stanza, time.time())


def check(stanza=None):
    """
    Run ``pgbackrest check``: the configuration and the repository are sound and, on
    the repository host or the primary, a WAL segment switched now reaches the archive
    within archive-timeout. Returns True or raises with pgBackRest's message.

    CLI Example:

    .. code-block:: bash

        salt pg-01 pgbackrest.check
    """
    _run("check", stanza, timeout=300)
    return True


def stanza_create(stanza=None):
    """
    Create the stanza in the repository (run on the repository host; needs the
    primary). Returns True; pgBackRest does nothing for a stanza that exists and
    matches the cluster.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgbackrest.stanza_create
    """
    _run("stanza-create", stanza, timeout=300)
    return True


def backup(type="full", stanza=None, timeout=7200):  # pylint: disable=redefined-builtin
    """
    Take a backup now (run on the repository host), then expire what retention no
    longer keeps. Returns the new backup as ``pgbackrest.summary`` lists it.

    type
        ``full``, ``diff`` or ``incr``.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgbackrest.backup type=diff
    """
    if type not in BACKUP_TYPES:
        raise SaltInvocationError(f"pgbackrest.backup: type {type!r}; use full, diff or incr")
    stanza, _ = _stanza(stanza)
    before = {r["label"] for r in __utils__["pgha_backup.backups_of"](
        __utils__["pgha_backup.stanza_of"](info(stanza), stanza))}
    _run("backup", stanza, [f"--type={type}"], timeout=int(timeout))
    rows = __utils__["pgha_backup.backups_of"](__utils__["pgha_backup.stanza_of"](info(stanza), stanza))
    new = [r for r in rows if r["label"] not in before]
    if not new:
        raise CommandExecutionError(f"pgbackrest backup (stanza {stanza}) ended but no new "
                                    "backup is in the repository")
    return new[-1]


def verify(stanza=None):
    """
    Run ``pgbackrest verify``: every backup file and WAL segment in the repository is
    readable and matches its checksum. Returns True or raises naming the errors.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgbackrest.verify
    """
    _run("verify", stanza, timeout=3600)
    return True


def expire(stanza=None):
    """
    Run ``pgbackrest expire``: remove the backups and WAL that the retention settings
    (pgha:backup:repo:retention_*) no longer keep. Returns True.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgbackrest.expire
    """
    _run("expire", stanza, timeout=600)
    return True


def archiver():
    """
    Return PostgreSQL's ``pg_stat_archiver`` on this node (run on the primary: only it
    archives): segments archived and failed, the last of each and when. With
    ``failing`` True when the last failure is newer than the last success.

    CLI Example:

    .. code-block:: bash

        salt pg-01 pgbackrest.archiver
    """
    cfg = __salt__["pgha.config"]()
    sql = ("SELECT row_to_json(a) FROM (SELECT archived_count, last_archived_wal, "
           "extract(epoch FROM last_archived_time)::bigint AS last_archived_time, failed_count, "
           "last_failed_wal, extract(epoch FROM last_failed_time)::bigint AS last_failed_time "
           "FROM pg_stat_archiver) a")
    argv = [f"{cfg['postgres']['bin_dir']}/psql", "-XAtq", "-h", cfg["postgres"]["socket_dir"],
            "-p", str(cfg["postgres"]["port"]), "-U", cfg["patroni"]["superuser"]["username"],
            "-d", "postgres", "-c", sql]
    res = __salt__["cmd.run_all"](argv, runas="postgres", python_shell=False, timeout=30,
                                  ignore_retcode=True, output_loglevel="debug", cwd="/tmp")
    if res["retcode"] != 0:
        raise CommandExecutionError(f"pg_stat_archiver: {res.get('stderr', '').strip() or res['retcode']}")
    stats = json.loads(res["stdout"])
    stats["failing"] = bool(stats["last_failed_time"]) and (stats["last_failed_time"] or 0) > (
        stats["last_archived_time"] or 0)
    return stats


def restore_command(target_time=None, target_lsn=None, target_name=None, target_timeline=None,
                    stanza=None):
    """
    Return the command Patroni's custom bootstrap runs for orch.restore: a delta restore
    of the stanza to the target (one of target_time, target_lsn, target_name, or none
    for the end of the archive), promoting when it gets there.

    CLI Example:

    .. code-block:: bash

        salt pg-01 pgbackrest.restore_command target_time='2026-12-01 20:15:00+00'
    """
    stanza, cfg = _stanza(stanza)
    run = {"target_time": target_time, "target_lsn": target_lsn, "target_name": target_name,
           "target_timeline": target_timeline}
    try:
        target = __utils__["pgha_backup.restore_target"](run)
    except ValueError as exc:
        raise SaltInvocationError(str(exc))
    return __utils__["pgha_backup.restore_command"](stanza, target, cfg["backup"]["config_file"])


def stanza_upgrade(stanza=None):
    """
    Point the stanza at the cluster as it is now (``stanza-upgrade``): after a major
    version upgrade, or after orch.rebuild bootstrapped a cluster with a new system
    identifier. Older backups stay, under the old identifier. Returns True.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgbackrest.stanza_upgrade
    """
    _run("stanza-upgrade", stanza, timeout=300)
    return True


def freshness(max_age=None, stanza=None):
    """
    Return None when the newest good backup is younger than *max_age* seconds (default:
    pgha:backup:max_age), else a sentence saying what is wrong: no stanza, no backup, an
    unreadable repository, or the newest backup's age.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgbackrest.freshness
    """
    import time  # pylint: disable=import-outside-toplevel

    stanza, cfg = _stanza(stanza)
    bound = int(max_age if max_age is not None else cfg["backup"]["max_age"])
    return __utils__["pgha_backup.freshness_problem"](info(stanza), stanza, time.time(), bound)
