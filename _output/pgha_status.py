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
