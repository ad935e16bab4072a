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


def _cluster_config(local):
    """The formula's parameters as a node renders them (roles come from pillar), asked of
    every minion; the first answer wins."""
    ret = local.cmd("*", "pgha.config", timeout=10)
    for minion in sorted(ret):
        if isinstance(ret[minion], dict) and "postgres_members" in ret[minion]:
            return ret[minion]
    return None


def _tcp_open(host, port, timeout=2.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _backups(local, cfg, members, problems):
    """The repository (newest backup of each type, newest WAL) from the backup node, and
    the primary's archiver; a stale backup or failing archiving is a problem."""
    if not cfg.get("backup_ready"):
        return {}
    node, stanza = cfg["backup_node"], cfg["backup_stanza"]
    _, summary = _first(local, [node], "pgbackrest.summary", timeout=60)
    out = {"node": node, "stanza": stanza, "max_age": cfg["backup"]["max_age"], "repository": summary,
           "archiver": None}
    if summary is None:
        problems.append(f"backups: {node} did not answer pgbackrest.summary")
    elif not summary["exists"]:
        problems.append(f"backups: stanza {stanza} does not exist on {node}")
    elif summary.get("problem"):
        problems.append(f"backups: {summary['problem']}")
    elif summary["newest_age"] is None:
        # Right after the rollout there is none yet: shown, not counted (the first
        # scheduled or orch.backup run makes one; from then on max_age applies).
        out["note"] = f"stanza {stanza} has no backup yet: salt-run state.orchestrate orch.backup"
    elif summary["newest_age"] > cfg["backup"]["max_age"]:
        problems.append(f"backups: the newest backup is {summary['newest_age']} s old, older than "
                        f"pgha:backup:max_age ({cfg['backup']['max_age']} s)")
    leader = next((m["member"] for m in members if m["role"] == "leader"), None)
    if leader:
        _, archiver = _first(local, [leader], "pgbackrest.archiver")
        out["archiver"] = archiver
        if archiver and archiver["failing"]:
            problems.append(f"backups: {leader} fails to archive {archiver['last_failed_wal']} "
                            f"({archiver['failed_count']} failures)")
    return out


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
    cfg = _cluster_config(local)
    if cfg is None:
        data = {"healthy": False, "problems": ["no minion answered with pgha.config"],
                "patroni": [], "etcd": [], "haproxy": {}, "vip": {}}
        return {"outputter": "pgha_status", "data": data, "retcode": 1}
    postgres, haproxy = cfg["postgres_members"], cfg["haproxy_members"]
    problems = []
    expected = postgres
    max_lag = cfg["patroni"]["dcs"]["maximum_lag_on_failover"]

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

    vip = cfg["keepalived"]["vip"]
    holders = []
    if cfg["frontend"] == "keepalived" and vip:
        ret = local.cmd(haproxy, "pgha_haproxy.holds_vip", tgt_type="list", timeout=10) if haproxy else {}
        holders = sorted(node for node, held in ret.items() if held is True)
        if len(holders) != 1:
            problems.append(f"VIP {vip}: held by {len(holders)} nodes")
    port = cfg["haproxy"]["writer_port"]
    answers = _tcp_open(vip, port) if vip else None
    if vip and not answers:
        problems.append(f"VIP {vip}:{port} does not answer")

    backups = _backups(local, cfg, members, problems)

    import time  # pylint: disable=import-outside-toplevel
    now = time.time()
    leases = {name: dict(lease, seconds_left=round(lease["expires"] - now))
              for name, lease in __utils__["pgha_lock.status"](
                  __utils__["pgha_lock.path"](__opts__["cachedir"]), now).items()}
    data = {
        "healthy": not problems,
        "problems": problems,
        "leases": leases,
        "patroni": members,
        "etcd": etcd,
        "haproxy": backends,
        "vip": {"address": vip, "port": port, "holders": holders, "answers": answers},
        "backups": backups,
        # The proxy-free path: libpq fails over by itself (README: Connecting).
        "conninfo": cfg["client_conninfo"],
    }
    return {"outputter": "pgha_status", "data": data, "retcode": 0 if not problems else 1}


def maintenance(action="status", owner=None, reason="", timeout=3600, force=False):
    """
    The maintenance lock on the master. While an operator holds it, no self-healing
    reaction acts (each one reports ``pgha/remediation/skipped``), and pgha's day-2
    orchestrations run inside the window. While an orchestration holds it, another
    orchestration refuses to start. It ends by itself after *timeout* seconds.

    action
        ``on`` (take it), ``off`` (release it) or ``status``.
    owner
        Who holds it (default: the user running salt-run).
    force
        ``off`` releases a lock held by an orchestration too (one that died half way).

    CLI Example:

    .. code-block:: bash

        salt-run pgha.maintenance on reason="replace pg-02's disk" timeout=7200
        salt-run pgha.maintenance
        salt-run pgha.maintenance off
    """
    import time  # pylint: disable=import-outside-toplevel

    from salt.exceptions import SaltInvocationError  # pylint: disable=import-outside-toplevel

    # `salt-run pgha.maintenance on` arrives as True: the CLI reads arguments as YAML 1.1.
    action = {True: "on", False: "off"}.get(action, action)
    lock = __utils__["pgha_lock.path"](__opts__["cachedir"])
    name = "maintenance"
    now = time.time()
    held = __utils__["pgha_lock.status"](lock, now).get(name)
    if action == "status":
        return _lease_view(held, now) or {"maintenance": False}
    owner = owner or __opts__.get("user") or "operator"
    if action == "on":
        taken, lease = __utils__["pgha_lock.acquire"](lock, name, str(owner), float(timeout), now,
                                                      reason=str(reason), kind="operator")
        if not taken:
            return {"maintenance": True, "refused": f"held by {lease['owner']}",
                    **_lease_view(lease, now)}
        return _lease_view(lease, now)
    if action == "off":
        if held and held.get("kind") != "operator" and not force:
            return {"maintenance": True, "refused": (
                f"held by the orchestration {held['owner']}; it releases the lock when it "
                "ends (pass force=True for one that died)"), **_lease_view(held, now)}
        __utils__["pgha_lock.release"](lock, name, None, now=now)
        return {"maintenance": False, "released": held["owner"] if held else None}
    raise SaltInvocationError(f"pgha.maintenance: action {action!r}; use on, off or status")


def _lease_view(lease, now):
    if not lease:
        return {}
    return {"maintenance": True, "owner": lease["owner"], "kind": lease.get("kind"),
            "reason": lease.get("reason", ""), "seconds_left": round(lease["expires"] - now)}
