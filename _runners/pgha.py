"""
The whole pgha cluster at a glance, from the master.

    salt-run pgha.status

Patroni members, etcd members, each HAProxy's backends and the VIP, in one table. The
exit code is non-zero when anything is unhealthy, so scripts and monitors can use it.
"""

import logging
import socket

import salt.client

log = logging.getLogger(__name__)

__virtualname__ = "pgha"


def __virtual__():
    return __virtualname__


def _first(local, minions, fun, kwarg=None, timeout=10):
    """The first useful answer to *fun* among *minions*, and who gave it."""
    for minion in minions:
        ret = local.cmd(minion, fun, kwarg=kwarg or {}, timeout=timeout, full_return=True)
        answer = ret.get(minion)
        if answer and answer.get("retcode", 0) == 0:
            return minion, answer["ret"]
    return None, None


def _roles(local):
    ret = local.cmd("*", "grains.get", ["roles"], timeout=10)
    by_role = {"postgres": [], "haproxy": []}
    for minion, roles in sorted(ret.items()):
        for role in roles or []:
            by_role.setdefault(role, []).append(minion)
    return by_role


def _tcp_open(host, port, timeout=2.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def status():
    """
    Show the cluster: Patroni members (role, state, timeline, lag), etcd members (health,
    leader), each HAProxy's view of its backends, and which node holds the VIP and
    whether it answers. Exits non-zero when anything is unhealthy.

    CLI Example:

    .. code-block:: bash

        salt-run pgha.status
        salt-run pgha.status --out=json
    """
    local = salt.client.get_local_client(mopts=__opts__)
    roles = _roles(local)
    postgres, haproxy = roles["postgres"], roles["haproxy"]
    problems = []

    _, cfg = _first(local, postgres + haproxy, "pgha.config")
    cfg = cfg or {}
    expected = cfg.get("postgres_members", postgres)
    max_lag = cfg.get("patroni", {}).get("dcs", {}).get("maximum_lag_on_failover", 1048576)

    _, members = _first(local, postgres, "patroni.list")
    members = members or []
    if not members:
        problems.append("Patroni: no member answered")
    leaders = [m for m in members if m["role"] in ("leader", "standby_leader")]
    if len(leaders) != 1:
        problems.append(f"Patroni: {len(leaders)} leaders")
    for m in members:
        if m["role"] in ("leader", "standby_leader"):
            if m["state"] != "running":
                problems.append(f"Patroni: leader {m['member']} is {m['state']}")
        elif m["state"] != "streaming":
            problems.append(f"Patroni: {m['member']} is {m['state']}")
        elif not isinstance(m["lag"], int) or m["lag"] > max_lag:
            problems.append(f"Patroni: {m['member']} lags {m['lag']} bytes")
    missing = sorted(set(expected) - {m["member"] for m in members})
    if members and missing:
        problems.append(f"Patroni: {', '.join(missing)} missing from the cluster")

    asker, health = _first(local, postgres, "etcd3.health")
    health = health or {}
    _, etcd_status = _first(local, [asker] if asker else postgres, "etcd3.status")
    etcd_leader = (etcd_status or {}).get("leader_name", "")
    etcd = [{"member": name, "healthy": st["healthy"], "leader": name == etcd_leader,
             "reason": st["reason"]} for name, st in sorted(health.items())]
    if not etcd:
        problems.append("etcd: no member answered")
    for e in etcd:
        if not e["healthy"]:
            problems.append(f"etcd: {e['member']} unhealthy ({e['reason']})")
    if etcd and not etcd_leader:
        problems.append("etcd: no leader")

    backends = {}
    ret = local.cmd(haproxy, "pgha_haproxy.backends", tgt_type="list", timeout=10,
                    full_return=True) if haproxy else {}
    for node in haproxy:
        answer = ret.get(node)
        if not answer or answer.get("retcode", 0) != 0:
            backends[node] = []
            problems.append(f"HAProxy: {node} did not answer")
            continue
        backends[node] = [s for s in answer["ret"] if s["proxy"].startswith("postgres_")]
        up_writers = [s["server"] for s in backends[node]
                      if s["proxy"] == "postgres_writer" and s["status"] == "UP"]
        if len(up_writers) != 1:
            problems.append(f"HAProxy: {node} routes writes to {len(up_writers)} servers")

    vip = cfg.get("keepalived", {}).get("vip")
    holders = []
    if cfg.get("frontend", "keepalived") == "keepalived" and vip:
        ret = local.cmd(haproxy, "pgha_haproxy.holds_vip", tgt_type="list", timeout=10) if haproxy else {}
        holders = sorted(node for node, held in ret.items() if held is True)
        if len(holders) != 1:
            problems.append(f"VIP {vip}: held by {len(holders)} nodes")
    port = cfg.get("haproxy", {}).get("writer_port", 5432)
    answers = _tcp_open(vip, port) if vip else None
    if vip and not answers:
        problems.append(f"VIP {vip}:{port} does not answer")

    data = {
        "healthy": not problems,
        "problems": problems,
        "patroni": members,
        "etcd": etcd,
        "haproxy": backends,
        "vip": {"address": vip, "port": port, "holders": holders, "answers": answers},
    }
    return {"outputter": "pgha_status", "data": data, "retcode": 0 if not problems else 1}
