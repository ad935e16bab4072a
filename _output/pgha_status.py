"""
Outputter for ``salt-run pgha.status``: the cluster as one readable table.
"""

__virtualname__ = "pgha_status"


def __virtual__():
    return __virtualname__


def _table(header, rows):
    rows = [tuple("" if cell is None else str(cell) for cell in row) for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [fmt(header), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in rows]


def _age(seconds):
    if seconds is None:
        return ""
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _size(size):
    if size is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def output(data, **kwargs):  # pylint: disable=unused-argument
    """Render the status dict; accepts the runner's full return or just its data."""
    if isinstance(data, dict) and "data" in data and "outputter" in data:
        data = data["data"]
    if not isinstance(data, dict) or "patroni" not in data:
        return str(data)
    out = ["Patroni"]
    out += _table(("member", "host", "role", "state", "TL", "lag", "receive lag", "replay lag",
                   "pending restart"),
                  [(m["member"], m["host"], m["role"], m["state"], m["timeline"], m["lag"],
                    m.get("receive_lag"), m.get("replay_lag"), "*" if m["pending_restart"] else "")
                   for m in data["patroni"]])
    out += ["", "etcd"]
    out += _table(("member", "health", "leader"),
                  [(e["member"], "healthy" if e["healthy"] else "UNHEALTHY " + e["reason"],
                    "*" if e["leader"] else "") for e in data["etcd"]])
    for node, servers in sorted(data["haproxy"].items()):
        out += ["", f"HAProxy {node}"]
        out += _table(("proxy", "server", "status", "check", "sessions"),
                      [(s["proxy"], s["server"] + (" (backup)" if s["backup"] else ""),
                        s["status"], s["check"], s["sessions"]) for s in servers])
    vip = data["vip"]
    if vip["address"]:
        holders = ", ".join(vip["holders"]) or "nobody"
        answers = "answers" if vip["answers"] else "DOES NOT ANSWER"
        out += ["", f"VIP {vip['address']}:{vip['port']} held by {holders}, {answers}"]
    conninfo = data.get("conninfo") or {}
    if conninfo:
        out += ["", "Without the proxy (libpq multi-host; add user=, dbname=, sslrootcert=)"]
        out += [f"  {kind:<8} {conninfo[kind]}" for kind in ("writer", "readers") if kind in conninfo]
    backups = data.get("backups") or {}
    repo = backups.get("repository") or {}
    if backups:
        out += ["", f"Backups (stanza {backups['stanza']} on {backups['node']}, "
                    f"newest WAL {repo.get('wal_max') or 'none'})"]
        out += _table(("type", "label", "age", "size", "in repository"),
                      [(kind, b["label"], _age(b["age"]), _size(b["size"]), _size(b["repo_size"]))
                       for kind, b in sorted((repo.get("latest") or {}).items())])
        if backups.get("note"):
            out += [backups["note"]]
        archiver = backups.get("archiver")
        if archiver:
            out += [f"archiving: {archiver['archived_count']} archived (last {archiver['last_archived_wal']}), "
                    f"{archiver['failed_count']} failed" + (" - FAILING" if archiver["failing"] else "")]
    for name, lease in sorted((data.get("leases") or {}).items()):
        if name == "maintenance":
            out += ["", f"maintenance lock held by {lease['owner']} ({lease.get('reason') or lease.get('kind')}), "
                        f"{lease['seconds_left']}s left: self-healing waits"]
        else:
            out += ["", f"{name} in flight: {lease['owner']} (ends within {lease['seconds_left']}s)"]
    out += [""]
    if data["problems"]:
        out += ["UNHEALTHY:"] + [f"  - {p}" for p in data["problems"]]
    else:
        out += ["healthy"]
    return "\n".join(out)
