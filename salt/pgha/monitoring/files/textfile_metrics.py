#!/usr/bin/python3
"""pgha's own metrics for the node exporter's textfile collector (pgha.monitoring).

Run by pgha-textfile-metrics.timer, as root, with the JSON settings file the formula
renders. It writes `pgha.prom` atomically (a temporary file renamed into place, so the
exporter never reads half a file):

- pgha_tls_cert_expiry_timestamp_seconds{cert}: when each of the node's certificates
  expires;
- pgha_vip_held{vip}: 1 while this node holds the VIP (haproxy nodes, keepalived);
- pgha_archiver_*: PostgreSQL's pg_stat_archiver (postgres nodes, with backups on);
- pgha_backup_newest_completion_timestamp_seconds{type}: the newest backup of each
  type in the repository, and pgha_backup_info_ok (the backup node);
- pgha_textfile_collect_ok{part} and pgha_textfile_last_run_timestamp_seconds.

Each part that fails reports pgha_textfile_collect_ok 0 and leaves the others intact.
The remediation limits are another file (pgha_remediation.prom), written by
`pgha_monitor.record_limit` on the monitor nodes. Standard library only.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone


def _label(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def line(name: str, value, **labels) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}} {value}" if inner else f"{name} {value}"


def cert_expiry(certs: dict) -> list[str]:
    out = []
    for name, path in sorted(certs.items()):
        if not os.path.exists(path):
            continue
        # The decoder CPython's own tests use: no third-party parser on the node.
        not_after = ssl._ssl._test_decode_cert(path)["notAfter"]  # noqa: SLF001
        out.append(line("pgha_tls_cert_expiry_timestamp_seconds", int(ssl.cert_time_to_seconds(not_after)),
                        cert=name, path=path))
    return out


def vip_held(vip: str) -> list[str]:
    addrs = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True,
                           timeout=10).stdout
    held = any(f" {vip}/" in row for row in addrs.splitlines())
    return [line("pgha_vip_held", int(held), vip=vip)]


def archiver(cfg: dict) -> list[str]:
    sql = ("SELECT pg_is_in_recovery()::int, archived_count, failed_count, "
           "coalesce(extract(epoch FROM last_archived_time)::bigint, 0), "
           "coalesce(extract(epoch FROM last_failed_time)::bigint, 0) FROM pg_stat_archiver")
    res = subprocess.run([cfg["psql"], "-XAtq", "-F", " ", "-h", cfg["socket_dir"], "-p", str(cfg["port"]),
                          "-U", cfg["user"], "-d", "postgres", "-c", sql],
                         env=dict(os.environ, PGPASSWORD=cfg["password"], PGCONNECT_TIMEOUT="5"),
                         capture_output=True, text=True, timeout=20)
    if res.returncode != 0:
        raise RuntimeError(f"psql: {res.stderr.strip()}")
    in_recovery, archived, failed, last_archived, last_failed = (int(v) for v in res.stdout.split())
    return [line("pgha_postgres_in_recovery", in_recovery),
            line("pgha_archiver_archived_count", archived),
            line("pgha_archiver_failed_count", failed),
            line("pgha_archiver_last_archived_timestamp_seconds", last_archived),
            line("pgha_archiver_last_failed_timestamp_seconds", last_failed)]


def backups(cfg: dict) -> list[str]:
    # pgBackRest as postgres, which owns the repository and its lock files.
    res = subprocess.run(["runuser", "-u", "postgres", "--", *cfg["command"]], capture_output=True, text=True,
                         timeout=60, cwd="/")
    if res.returncode != 0:
        raise RuntimeError(f"pgbackrest info: {res.stderr.strip() or res.stdout.strip()}")
    out = []
    for stanza in json.loads(res.stdout):
        ok = int(stanza.get("status", {}).get("code", 1) == 0)
        out.append(line("pgha_backup_info_ok", ok, stanza=stanza["name"]))
        newest: dict[str, int] = {}
        for backup in stanza.get("backup", []):
            kind, stop = backup["type"], int(backup["timestamp"]["stop"])
            newest[kind] = max(newest.get(kind, 0), stop)
        # A repository with no backup of any kind is as stale as it gets: 0.
        for kind in ("full", "diff", "incr"):
            out.append(line("pgha_backup_newest_completion_timestamp_seconds", newest.get(kind, 0),
                            stanza=stanza["name"], type=kind))
        out.append(line("pgha_backup_newest_any_completion_timestamp_seconds", max(newest.values(), default=0),
                        stanza=stanza["name"]))
    return out


def write_atomically(directory: str, name: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, os.path.join(directory, name))


def collect(cfg: dict) -> list[str]:
    parts = {"certs": (cert_expiry, cfg.get("certs")), "vip": (vip_held, cfg.get("vip")),
             "archiver": (archiver, cfg.get("archiver")), "backup": (backups, cfg.get("backup"))}
    out = []
    for part, (func, settings) in parts.items():
        if not settings:
            continue
        try:
            out += func(settings)
            out.append(line("pgha_textfile_collect_ok", 1, part=part))
        except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others
            print(f"pgha textfile metrics: {part}: {exc}", file=sys.stderr)
            out.append(line("pgha_textfile_collect_ok", 0, part=part))
    out.append(line("pgha_textfile_last_run_timestamp_seconds", int(time.time())))
    return out


def main(argv: list[str]) -> int:
    with open(argv[1]) as fh:
        cfg = json.load(fh)
    lines = collect(cfg)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_atomically(cfg["textfile_dir"], "pgha.prom", f"# pgha textfile metrics, {stamp}\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
