"""
The decisions behind pgha's backups and restores, as plain functions of what pgBackRest
reported (``pgbackrest info --output=json``) and what the operator asked for: a summary
of the repository, whether the newest backup is fresh enough, which restore target was
asked for and whether a backup exists to reach it, and the restore command Patroni's
custom bootstrap runs. Nothing here calls a service (tests/unit/test_backup.py).
"""

import datetime
import re
import shlex

__virtualname__ = "pgha_backup"

BACKUP_TYPES = ("full", "diff", "incr")
# One of these (or none: the end of the archive) says where a restore stops.
TARGET_KEYS = ("target_time", "target_lsn", "target_name")
_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
_RESTORE_POINT = re.compile(r"^[A-Za-z0-9_.:-]{1,63}$")


def __virtual__():
    return __virtualname__


def stanza_of(info, stanza):
    """The entry for *stanza* in ``pgbackrest info --output=json``, or None."""
    if not isinstance(info, list):
        raise ValueError(f"pgbackrest info returned {type(info).__name__}, not a list of stanzas")
    return next((s for s in info if isinstance(s, dict) and s.get("name") == stanza), None)


def status_problem(entry):
    """None when the stanza's status is usable (ok, or no backup yet); else pgBackRest's
    own words. An unreachable repository or a wrong passphrase is status 99, "other":
    the reason is in each repository's status, so those are named too."""
    status = (entry or {}).get("status") or {}
    if status.get("code") in (0, 2):
        return None
    reasons = [r["status"]["message"].strip() for r in (entry or {}).get("repo", [])
               if isinstance(r, dict) and (r.get("status") or {}).get("code") not in (None, 0, 2)
               and r["status"].get("message")]
    message = str(status.get("message", "unknown")).strip()
    return f"stanza {entry.get('name')}: {message}" + (f" ({'; '.join(reasons)})" if reasons else "")


def backups_of(entry):
    """The stanza's backups, oldest first, each as {label, type, start, stop, size,
    repo_size, delta, lsn_start, lsn_stop, wal_start, wal_stop, error}."""
    rows = []
    for b in (entry or {}).get("backup", []):
        info = b.get("info", {})
        rows.append({
            "label": b.get("label"),
            "type": b.get("type"),
            "start": (b.get("timestamp") or {}).get("start"),
            "stop": (b.get("timestamp") or {}).get("stop"),
            "size": info.get("size"),
            "delta": info.get("delta"),
            "repo_size": (info.get("repository") or {}).get("size"),
            "lsn_start": (b.get("lsn") or {}).get("start"),
            "lsn_stop": (b.get("lsn") or {}).get("stop"),
            "wal_start": (b.get("archive") or {}).get("start"),
            "wal_stop": (b.get("archive") or {}).get("stop"),
            "error": bool(b.get("error")),
        })
    return sorted(rows, key=lambda r: r["stop"] or 0)


def summary(info, stanza, now):
    """
    What ``pgha.status`` shows of the repository: the stanza's status, the newest backup
    of each type (label, age in seconds, sizes), the newest archived WAL segment, and
    the age of the newest backup of any type. *now* is a Unix time.
    """
    entry = stanza_of(info, stanza)
    if entry is None:
        return {"stanza": stanza, "exists": False, "status": "missing", "latest": {},
                "newest_age": None, "wal_max": None, "count": 0}
    rows = [r for r in backups_of(entry) if not r["error"]]
    unreadable = status_problem(entry) if (entry.get("status") or {}).get("code") not in (0, 1, 2) else None
    latest = {}
    for kind in BACKUP_TYPES:
        of_kind = [r for r in rows if r["type"] == kind]
        if of_kind:
            newest = of_kind[-1]
            latest[kind] = dict(newest, age=None if newest["stop"] is None else int(now - newest["stop"]))
    archive = entry.get("archive") or []
    return {
        "stanza": stanza,
        "exists": True,
        "status": (entry.get("status") or {}).get("message", "unknown"),
        "status_code": (entry.get("status") or {}).get("code"),
        "problem": unreadable,
        "latest": latest,
        "newest_age": int(now - rows[-1]["stop"]) if rows and rows[-1]["stop"] else None,
        "wal_max": max((a.get("max") for a in archive if a.get("max")), default=None),
        "count": len(rows),
    }


def freshness_problem(info, stanza, now, max_age):
    """None when the newest good backup finished less than *max_age* seconds ago; else
    a sentence naming what is wrong (no stanza, no backup, or the age)."""
    s = summary(info, stanza, now)
    if not s["exists"]:
        return f"stanza {stanza} does not exist in the repository"
    if s["problem"]:
        return f"the repository cannot be read: {s['problem']}"
    if s["newest_age"] is None:
        return f"stanza {stanza} has no backup"
    if s["newest_age"] > max_age:
        return (f"the newest backup of stanza {stanza} finished {s['newest_age']} s ago, "
                f"longer than the bound of {max_age} s")
    return None


def parse_time(value):
    """A restore target time: ISO 8601 with an explicit offset ("2026-12-01 20:15:00+00",
    "2026-12-01T20:15:00Z"). A time without one is refused: the cluster's and the
    operator's time zones need not agree."""
    text = str(value).strip()
    text = re.sub(r"([+-]\d{2})$", r"\1:00", text.replace("Z", "+00:00"))
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"target_time {value!r} is not a time (use e.g. 2026-12-01 20:15:00+00)") from None
    if when.tzinfo is None:
        raise ValueError(f"target_time {value!r} has no UTC offset (add e.g. +00)")
    return when


def lsn_value(lsn):
    """'16/B374D848' -> an integer, comparable."""
    high, low = str(lsn).split("/")
    return (int(high, 16) << 32) + int(low, 16)


def restore_target(run):
    """
    From the orchestration's pillar (*run*), the target as ``{type, value, epoch}``:
    type ``time``, ``lsn`` or ``name``, or ``default`` (the end of the archive) when
    none is given. More than one, or a malformed one, raises ValueError naming it.
    """
    given = [k for k in TARGET_KEYS if run.get(k) not in (None, "")]
    if len(given) > 1:
        raise ValueError(f"give at most one restore target, not {', '.join(given)}")
    timeline = run.get("target_timeline")
    timeline = None if timeline in (None, "") else timeline
    if timeline is not None and str(timeline) not in ("current", "latest") and not str(timeline).isdigit():
        raise ValueError(f"target_timeline {timeline!r} is not current, latest or a timeline number")
    timeline = None if timeline is None else str(timeline)
    if not given:
        return {"type": "default", "value": None, "epoch": None, "timeline": timeline}
    key = given[0]
    value = str(run[key]).strip()
    if key == "target_time":
        when = parse_time(value)
        # pgBackRest and PostgreSQL read "YYYY-MM-DD HH:MM:SS+HH:MM".
        return {"type": "time", "value": when.isoformat(sep=" "), "epoch": when.timestamp(),
                "timeline": timeline}
    if key == "target_lsn":
        if not _LSN.match(value):
            raise ValueError(f"target_lsn {value!r} is not an LSN like 0/3000060")
        return {"type": "lsn", "value": value.upper(), "epoch": None, "timeline": timeline}
    if not _RESTORE_POINT.match(value):
        raise ValueError(f"target_name {value!r} is not a restore point name (letters, digits, _.:-)")
    return {"type": "name", "value": value, "epoch": None, "timeline": timeline}


def restore_problems(run, cluster_name, info, stanza):
    """
    Why orch.restore must not start, as sentences (empty: it may): the confirmation is
    not the cluster's name, the target is malformed, or no backup finished before the
    target (pgBackRest restores from the newest backup that ended before it, and a
    backup cannot be rolled back past its own end).
    """
    problems = []
    if run.get("confirm") != cluster_name:
        problems.append(f"a restore replaces the whole cluster: pass confirm={cluster_name!r} "
                        f"(the cluster's name) to go ahead")
    try:
        target = restore_target(run)
    except ValueError as exc:
        return problems + [str(exc)]
    try:
        entry = stanza_of(info, stanza)
    except ValueError as exc:
        return problems + [str(exc)]
    if entry is None:
        return problems + [f"stanza {stanza} does not exist in the repository: nothing to restore from"]
    unreadable = status_problem(entry)
    if unreadable and (entry.get("status") or {}).get("code") != 1:
        return problems + [f"the repository cannot be read: {unreadable}"]
    rows = [r for r in backups_of(entry) if not r["error"]]
    if not rows:
        return problems + [f"stanza {stanza} has no backup to restore from"]
    if target["type"] == "time" and not any(r["stop"] is not None and r["stop"] <= target["epoch"] for r in rows):
        oldest = datetime.datetime.fromtimestamp(rows[0]["stop"], datetime.timezone.utc)
        problems.append(f"no backup ended before {target['value']}: the oldest, {rows[0]['label']}, "
                        f"ended at {oldest.isoformat(sep=' ')}")
    if target["type"] == "lsn" and not any(
            r["lsn_stop"] and lsn_value(r["lsn_stop"]) <= lsn_value(target["value"]) for r in rows):
        problems.append(f"no backup ended before LSN {target['value']}: the oldest, "
                        f"{rows[0]['label']}, ended at {rows[0]['lsn_stop']}")
    return problems


def restore_command(stanza, target, config_file=None):
    """The command Patroni's custom bootstrap runs (``bootstrap.pgbackrest.command``):
    a delta restore to *target* (from restore_target) that promotes when it gets there.
    Patroni appends nothing (no_params)."""
    argv = ["/usr/bin/pgbackrest"]
    if config_file:
        argv.append(f"--config={config_file}")
    argv += [f"--stanza={stanza}", "--delta", f"--type={target['type']}"]
    if target["type"] != "default":
        argv += [f"--target={target['value']}", "--target-action=promote"]
    # PostgreSQL's default is the latest timeline: a target after a failover is on the
    # timeline the new primary started, which the backup's own does not reach.
    if target.get("timeline") not in (None, "latest"):
        argv.append(f"--target-timeline={target['timeline']}")
    argv.append("restore")
    return " ".join(shlex.quote(a) for a in argv)


def rebuild_problems(run, cluster_name, info, stanza, now, within):
    """Why orch.rebuild (wipe every data directory, bootstrap an empty cluster) must not
    start: no confirmation, or no good backup younger than *within* seconds unless the
    operator passed allow_without_backup: true."""
    problems = []
    if run.get("confirm") != cluster_name:
        problems.append(f"a rebuild wipes every member's data: pass confirm={cluster_name!r} "
                        f"(the cluster's name) to go ahead")
    if run.get("allow_without_backup") is True:
        return problems
    try:
        stale = freshness_problem(info, stanza, now, within)
    except ValueError as exc:
        stale = str(exc)
    if stale:
        problems.append(f"{stale}; a rebuild needs a backup younger than "
                        f"pgha:backup:rebuild_requires_backup_within ({within} s), or "
                        f"allow_without_backup: true")
    return problems
