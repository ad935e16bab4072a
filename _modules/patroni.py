"""
Patroni, through its REST API.

Connection settings come from the pgha formula's parameters (``pgha.config``): the REST
port, TLS, and the credentials for unsafe endpoints. By default a call goes to this
node's own Patroni when the node is a cluster member, else to the first member that
answers. ``host`` overrides that.

Patroni owns leadership: nothing here touches the DCS directly. Switchover, failover,
restart and reinit are requests to Patroni, which decides and acts.
"""

import logging
import re
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "patroni"
__func_alias__ = {"list_": "list"}

REPLICA_ROLES = ("replica", "sync_standby", "quorum_standby")
LEADER_ROLES = ("leader", "standby_leader")
SERVICE = "Patroni REST API"

# Patroni's member states. Transitional ones end by themselves and are never failures:
# a replica that is being cloned, restarted or rewound must not be touched.
TRANSITIONAL_STATES = ("starting", "stopping", "restarting", "creating replica",
                       "initializing new cluster", "running custom bootstrap script",
                       "starting after custom bootstrap")
HEALTHY_STATES = ("running", "streaming")
# Lines in a replica's own log that show a fault only a fresh copy from the leader mends:
# a timeline it cannot follow, WAL it needs that is gone, or its own data damaged.
LOCAL_FAULT_PATTERNS = (
    r"requested timeline \d+ is not a child of this server's history",
    r"new timeline \d+ forked off current database system timeline \d+ before current recovery point",
    r"highest timeline \d+ of the primary is behind recovery timeline \d+",
    r"requested starting point \S+ on timeline \d+ is not in this server's history",
    r"requested WAL segment \S+ has already been removed",
    r"could not open file \"global/pg_control\"",
    r"could not locate a valid checkpoint record",
    r"Failed to rewind",
)


def __virtual__():
    if "pgha_http.request" not in __utils__:
        return (False, "patroni: the pgha_http utility is not synced (saltutil.sync_utils)")
    return __virtualname__


# ---- plumbing ---------------------------------------------------------------------------

def _settings():
    cfg = __salt__["pgha.config"](redact=False)
    rest = cfg["patroni"]["restapi"]
    return {
        "scheme": cfg["scheme"],
        "port": rest["port"],
        # null on nodes whose role holds no Patroni credential (haproxy): open endpoints only.
        "auth": (rest["username"], rest["password"]) if rest["password"] else None,
        "tls": cfg["tls_client"],
        "members": [(name, cfg["nodes"][name]["address"]) for name in cfg["postgres_members"]],
        "self": cfg["id"] if cfg["id"] in cfg["postgres_members"] else None,
        "address": cfg["address"],
    }


def _base_urls(host=None):
    """Candidate base URLs: *host* only if given, else this node first, then the members."""
    s = _settings()
    if host:
        address = dict(s["members"]).get(host, host)
        return [f"{s['scheme']}://{address}:{s['port']}"]
    addresses = [s["address"]] if s["self"] else []
    addresses += [address for _, address in s["members"] if address not in addresses]
    if not addresses:
        raise CommandExecutionError("no Patroni members in pillar (pgha:nodes with role postgres)")
    return [f"{s['scheme']}://{address}:{s['port']}" for address in addresses]


def _call(method, path, host=None, json=None, params=None, timeout=5, expect=(200,),
          authenticate=False):
    """Send one request to the first Patroni that answers; return (status, body)."""
    s = _settings()
    _, status, body = __utils__["pgha_http.request"](
        method, _base_urls(host), path, SERVICE, json=json, params=params, timeout=timeout,
        tls=s["tls"], auth=s["auth"] if authenticate else None, expect=expect)
    return status, body


def _member_host(cluster_data, member):
    for m in cluster_data.get("members", []):
        if m["name"] == member:
            return m["host"]
    names = ", ".join(m["name"] for m in cluster_data.get("members", []))
    raise SaltInvocationError(f"no Patroni member named {member!r}; members are: {names}")


# ---- reading ----------------------------------------------------------------------------

def cluster(host=None):
    """
    Return Patroni's view of the cluster (``GET /cluster``): scope, members with role,
    state, timeline and lag, and whether the cluster is paused.

    host
        Ask this member (name or address) instead of the default.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.cluster
    """
    return _call("GET", "/cluster", host=host)[1]


def leader(host=None):
    """
    Return the name of the current leader, or None when the cluster has none.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.leader
    """
    for member in cluster(host=host).get("members", []):
        if member.get("role") in LEADER_ROLES:
            return member["name"]
    return None


def health(host=None):
    """
    Return this member's own status (``GET /patroni``) plus ``healthy``: True when
    PostgreSQL is running (``GET /health`` answers 200).

    CLI Example:

    .. code-block:: bash

        salt pg-02 patroni.health
    """
    status, _ = _call("GET", "/health", host=host, expect=None)
    body = _call("GET", "/patroni", host=host)[1]
    body["healthy"] = status == 200
    return body


def list_(host=None):
    """
    List the members like ``patronictl list``: name, host, role, state, timeline, lag
    (bytes behind the leader), the receive and replay lag where Patroni reports them
    (4.1 and later; else None), pending restart, and tags.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.list
    """
    data = cluster(host=host)
    rows = []
    for m in data.get("members", []):
        rows.append({
            "member": m["name"],
            "host": m.get("host"),
            "role": m.get("role"),
            "state": m.get("state"),
            "timeline": m.get("timeline"),
            "lag": m.get("lag", m.get("receive_lag")) if m.get("role") not in LEADER_ROLES else None,
            "receive_lag": _lag(m, "receive_lag"),
            "replay_lag": _lag(m, "replay_lag"),
            "pending_restart": bool(m.get("pending_restart", False)),
            "tags": m.get("tags", {}),
        })
    return rows


def _lag(member, key):
    """A member's lag in bytes, or None for the leader and where Patroni has no figure."""
    value = member.get(key) if member.get("role") not in LEADER_ROLES else None
    return value if isinstance(value, int) else None


def pending_restarts():
    """
    Return ``{member: {parameter: {old_value, new_value}}}`` for every member whose
    PostgreSQL waits for a restart, with Patroni's reasons.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.pending_restarts
    """
    data = cluster()
    pending = {}
    for m in data.get("members", []):
        if m.get("pending_restart"):
            status = _call("GET", "/patroni", host=m["host"])[1]
            pending[m["name"]] = status.get("pending_restart_reason", {})
    return pending


def _table(rows):
    """A patronictl-like text table of list_() rows, for messages."""
    header = ("Member", "Host", "Role", "State", "TL", "Lag", "Pending restart")
    lines = [header] + [
        (r["member"], str(r["host"]), str(r["role"]), str(r["state"]), str(r["timeline"]),
         "" if r["lag"] is None else str(r["lag"]), "*" if r["pending_restart"] else "")
        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(" | ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in lines)


def _replicas(members, max_lag):
    """Names of replicas that stream with a known lag within *max_lag* bytes."""
    ready = []
    for m in members:
        lag = m.get("lag")
        if (m.get("role") in REPLICA_ROLES and m.get("state") == "streaming"
                and isinstance(lag, int) and lag <= max_lag):
            ready.append(m["name"])
    return sorted(ready)


def _problems(members, replicas, max_lag):
    """What keeps the cluster from being healthy: one running leader, *replicas* streaming."""
    problems = []
    leaders = [m for m in members if m.get("role") in LEADER_ROLES]
    if not leaders:
        problems.append("no leader")
    elif len(leaders) > 1:
        problems.append("more than one leader: " + ", ".join(m["name"] for m in leaders))
    elif leaders[0].get("state") != "running":
        problems.append(f"leader {leaders[0]['name']} is {leaders[0].get('state')}")
    ready = _replicas(members, max_lag)
    if len(ready) < replicas:
        problems.append(f"{len(ready)} of {replicas} replica(s) streaming with lag <= {max_lag} bytes")
    return problems


def _defaults(replicas, max_lag):
    cfg = __salt__["pgha.config"](redact=False)
    replicas = int(replicas) if replicas is not None else len(cfg["postgres_members"]) - 1
    max_lag = int(max_lag) if max_lag is not None else cfg["patroni"]["dcs"]["maximum_lag_on_failover"]
    return replicas, max_lag


def wait_healthy(replicas=None, max_lag=None, timeout=0, interval=2, host=None):
    """
    Wait until the cluster has one running leader and at least *replicas* replicas
    streaming with lag at most *max_lag* bytes; return the member list. After *timeout*
    seconds (0: check once), raise with the problems and the cluster table.

    replicas
        Default: every other postgres node in pillar.
    max_lag
        Default: the cluster's ``maximum_lag_on_failover``.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.wait_healthy timeout=120
    """
    replicas, max_lag = _defaults(replicas, max_lag)
    deadline = time.monotonic() + float(timeout)
    while True:
        try:
            members = cluster(host=host).get("members", [])
            problems = _problems(members, replicas, max_lag)
            if not problems:
                return members
            detail = "; ".join(problems) + "\n" + _table(list_(host=host))
        except CommandExecutionError as exc:
            detail = str(exc)
        if time.monotonic() >= deadline:
            waited = f" after {timeout}s" if float(timeout) else ""
            raise CommandExecutionError(f"cluster not healthy{waited}: {detail}")
        time.sleep(float(interval))


def wait_for_leader(timeout=120, host=None):
    """
    Wait until the cluster has a leader whose PostgreSQL is running; return its name.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.wait_for_leader timeout=180
    """
    members = wait_healthy(replicas=0, timeout=timeout, host=host)
    return next(m["name"] for m in members if m.get("role") in LEADER_ROLES)


def wait_for_replicas(count=None, timeout=300, max_lag=None, host=None):
    """
    Wait until *count* replicas (default: every other postgres node) stream from the
    leader with lag at most *max_lag* bytes; return their names.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.wait_for_replicas count=2 timeout=300
    """
    count, max_lag = _defaults(count, max_lag)
    members = wait_healthy(replicas=count, max_lag=max_lag, timeout=timeout, host=host)
    return _replicas(members, max_lag)


# ---- acting (Patroni decides; these only ask) ------------------------------------------

def _text(body):
    return body if isinstance(body, str) else body.get("message", body)


def switchover(leader, candidate=None, scheduled_at=None):
    """
    Ask Patroni for a planned switchover away from *leader* (to *candidate*, or to the
    healthiest replica). Patroni refuses, with its reason, when *leader* is not the
    leader or the candidate is not a healthy replica.

    scheduled_at
        ISO 8601 time with a timezone for a scheduled switchover.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.switchover leader=pg-01 candidate=pg-02
    """
    if not leader:
        raise SaltInvocationError("switchover needs leader=<current leader>")
    payload = {"leader": leader}
    if candidate:
        payload["candidate"] = candidate
    if scheduled_at:
        payload["scheduled_at"] = scheduled_at
    # Sent to the leader itself: its HA loop wakes at once. Any other member would only
    # leave a note in etcd for the leader's next loop (up to loop_wait later).
    data = cluster()
    host = _member_host(data, leader) if any(m["name"] == leader for m in data.get("members", [])) else None
    status, body = _call("POST", "/switchover", host=host, json=payload, expect=(200, 202),
                         authenticate=True, timeout=60)
    return {"scheduled" if status == 202 else "switched": True, "message": _text(body)}


def failover(candidate=None, allow_data_loss=False):
    """
    Ask Patroni for a manual failover to *candidate*: for a cluster whose leader is gone
    or unhealthy. Patroni refuses a candidate that cannot safely take over.

    In synchronous mode only a synchronous standby is sure to have every acknowledged
    commit. A failover to any other member can lose them, so it is refused unless
    *allow_data_loss* is true.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.failover candidate=pg-02
        salt pg-01 patroni.failover candidate=pg-03 allow_data_loss=True
    """
    if not candidate:
        raise SaltInvocationError("failover needs candidate=<member>")
    data = cluster()
    roles = {m["name"]: m.get("role") for m in data.get("members", [])}
    if candidate not in roles:
        raise SaltInvocationError(f"no Patroni member named {candidate!r}; members are: "
                                  f"{', '.join(sorted(roles))}")
    synchronous = any(role == "sync_standby" for role in roles.values()) or \
        bool(config_get().get("synchronous_mode"))
    if synchronous and roles[candidate] != "sync_standby" and not allow_data_loss:
        raise CommandExecutionError(
            f"{candidate} is a {roles[candidate]}, not a synchronous standby: a failover to it "
            "can lose acknowledged commits. Choose a synchronous standby "
            f"({', '.join(sorted(n for n, r in roles.items() if r == 'sync_standby')) or 'none'}), "
            "or pass allow_data_loss=True")
    _, body = _call("POST", "/failover", json={"candidate": candidate}, authenticate=True,
                    timeout=60)
    return {"failed_over": True, "message": _text(body)}


def restart(member, pending_only=False, timeout=None):
    """
    Ask *member*'s Patroni to restart its PostgreSQL (Patroni stops and starts it; a
    leader stays leader). With pending_only, only when a parameter change waits for a
    restart; returns ``{restarted: False}`` otherwise.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.restart pg-02 pending_only=True
    """
    if not member:
        raise SaltInvocationError("restart needs a member name")
    host = _member_host(cluster(), member)
    if pending_only and not _call("GET", "/patroni", host=host)[1].get("pending_restart"):
        return {"restarted": False, "message": f"{member} has no pending restart"}
    payload = {"timeout": int(timeout)} if timeout else {}
    _, body = _call("POST", "/restart", host=host, json=payload, authenticate=True,
                    timeout=(int(timeout) if timeout else 120) + 10, expect=(200, 202))
    return {"restarted": True, "message": _text(body)}


def reinit(member, force=False):
    """
    Ask *member*'s Patroni to rebuild its data directory from the leader (a replica
    only; Patroni refuses on the leader). Its local data is replaced.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.reinit pg-03
    """
    if not member:
        raise SaltInvocationError("reinit needs a member name")
    host = _member_host(cluster(), member)
    _, body = _call("POST", "/reinitialize", host=host, json={"force": bool(force)},
                    authenticate=True, timeout=30)
    return {"reinitializing": True, "message": _text(body)}


def reload(member=None):
    """
    Ask Patroni to re-read its configuration file (one member, default: this node).

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.reload
    """
    host = _member_host(cluster(), member) if member else None
    _, body = _call("POST", "/reload", host=host, authenticate=True, expect=(200, 202))
    return {"reloaded": True, "message": _text(body)}


def config_get():
    """
    Return the cluster's dynamic configuration (``GET /config``).

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.config_get
    """
    return _call("GET", "/config")[1]


def config_patch(patch):
    """
    Merge *patch* (a dict) into the dynamic configuration (``PATCH /config``); a key set
    to None is removed. Returns the new configuration.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.config_patch '{"loop_wait": 10, "postgresql": {"parameters": {"work_mem": "8MB"}}}'
    """
    if not isinstance(patch, dict) or not patch:
        raise SaltInvocationError("config_patch needs a non-empty dict")
    return _call("PATCH", "/config", json=patch, authenticate=True)[1]


def _wait_paused(paused, timeout):
    """Wait until every member's own HA loop reports *paused* (GET /patroni ``pause``)."""
    members = [name for name, _ in _settings()["members"]]
    deadline = time.monotonic() + timeout
    waiting = members
    while True:
        waiting = []
        for name in members:
            try:
                if bool(_call("GET", "/patroni", host=name)[1].get("pause")) != paused:
                    waiting.append(name)
            except CommandExecutionError:
                waiting.append(name)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(1)
    if waiting:
        raise CommandExecutionError(
            f"the cluster's configuration says pause={paused}, but after {timeout}s these "
            f"members have not applied it yet: {', '.join(waiting)}")


def _loop_wait():
    cfg = __salt__["pgha.config"](redact=True)
    return int(cfg["patroni"]["dcs"]["loop_wait"])


def pause(wait=True, timeout=None):
    """
    Put the cluster in maintenance mode: Patroni stops managing PostgreSQL (no failover).

    wait
        Return only once every member's HA loop reports the pause (as ``patronictl pause
        --wait`` does); a member's loop picks it up within ``loop_wait`` seconds.
    timeout
        How long to wait; by default twice ``loop_wait`` plus 10 seconds.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.pause
    """
    paused = bool(config_patch({"pause": True}).get("pause"))
    if wait:
        _wait_paused(True, timeout or 2 * _loop_wait() + 10)
    return {"paused": paused}


def resume(wait=True, timeout=None):
    """
    Leave maintenance mode: Patroni manages PostgreSQL again.

    wait
        Return only once every member's HA loop reports it is no longer paused.
    timeout
        How long to wait; by default twice ``loop_wait`` plus 10 seconds.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.resume
    """
    paused = bool(config_patch({"pause": None}).get("pause"))
    if wait:
        _wait_paused(False, timeout or 2 * _loop_wait() + 10)
    return {"paused": paused}


def history():
    """
    Return the timeline history: one entry per promotion, with the LSN, the reason,
    the time and the new leader.

    CLI Example:

    .. code-block:: bash

        salt pg-01 patroni.history
    """
    rows = _call("GET", "/history")[1] or []
    return [{"timeline": r[0], "lsn": r[1], "reason": r[2],
             "timestamp": r[3] if len(r) > 3 else None,
             "new_leader": r[4] if len(r) > 4 else None} for r in rows]


# ---- is a replica's failure its own? ---------------------------------------------------

def _fault_verdict(me, members, paused, log_lines):
    """
    Whether replica *me*'s failure is its own, from the cluster as Patroni reports it
    (``/cluster`` members), whether the cluster is paused, and lines of *me*'s own log.
    Returns ``(verdict, evidence)``; only ``local`` justifies a reinit:

    healthy, transitional, leader, missing, paused, no_leader
        nothing to do (yet), or nothing pgha may do;
    local
        the leader runs and another replica streams from it, or *me*'s log shows a
        fault only a fresh copy mends;
    cluster_wide
        no replica streams from the running leader: the cause is not *me* (a rotated
        replication password, pg_hba, a firewall, a partition). A reinit would wipe
        every replica and fail for the same reason.
    """
    by_name = {m.get("name"): m for m in members}
    mine = by_name.get(me)
    if mine is None:
        return "missing", f"{me} is not in the cluster's member list"
    state = mine.get("state")
    if mine.get("role") in LEADER_ROLES:
        return "leader", f"{me} is the leader"
    if paused:
        return "paused", "the cluster is paused (maintenance mode): Patroni manages nothing"
    if state == "streaming":
        return "healthy", f"{me} streams"
    if state in TRANSITIONAL_STATES:
        return "transitional", f"{me} is {state}"
    leader = next((m for m in members if m.get("role") in LEADER_ROLES), None)
    if leader is None or leader.get("state") != "running":
        return "no_leader", ("the cluster has no leader" if leader is None else
                             f"leader {leader['name']} is {leader.get('state')}")
    streaming = sorted(m["name"] for m in members if m["name"] != me
                       and m.get("role") in REPLICA_ROLES and m.get("state") == "streaming")
    if streaming:
        return "local", (f"{', '.join(streaming)} stream{'s' if len(streaming) == 1 else ''} from "
                         f"{leader['name']} while {me} is {state}")
    for line in log_lines:
        if any(re.search(pattern, line) for pattern in LOCAL_FAULT_PATTERNS):
            return "local", f"{me}'s own log: {line.strip()[:300]}"
    seen = ", ".join(f"{m['name']} {m.get('state')}" for m in members if m["name"] != leader["name"])
    return "cluster_wide", f"no replica streams from {leader['name']} ({seen})"


def _own_log(since):
    """This node's Patroni and PostgreSQL log lines since *since* (epoch seconds)."""
    service = __salt__["pgha.config"](redact=False)["patroni"]["service"]
    out = __salt__["cmd.run_stdout"](
        ["journalctl", "-u", service, "--since", f"@{int(since)}", "-o", "cat", "--no-pager"],
        python_shell=False, ignore_retcode=True, output_loglevel="quiet")
    return out.splitlines()


def replica_fault(member=None, grace=0, interval=3, log_window=600):
    """
    Judge whether replica *member* (default: this node, whose log is read) has failed
    by a fault of its own, re-checking for *grace* seconds: any healthy or transitional
    sighting ends the check at once, and ``local`` is the answer only once it has held
    for the whole *grace* (see ``_settled_verdict``). Returns ``{verdict, evidence,
    member, state}`` (see the verdicts in ``_fault_verdict``); only ``local`` justifies
    a reinit.

    CLI Example:

    .. code-block:: bash

        salt pg-03 patroni.replica_fault grace=30
    """
    me = member or __salt__["pgha.config"](redact=False)["id"]
    start = time.monotonic()
    local_since = None
    while True:
        data = cluster()
        members = data.get("members", [])
        verdict, evidence = _fault_verdict(me, members, bool(data.get("pause")),
                                           _own_log(time.time() - float(log_window)))
        state = next((m.get("state") for m in members if m.get("name") == me), None)
        now = time.monotonic()
        local_since = (local_since if local_since is not None else now) if verdict == "local" else None
        settled = _settled_verdict(verdict, evidence, now - start,
                                   None if local_since is None else now - local_since, float(grace))
        if settled:
            return {"verdict": settled[0], "evidence": settled[1], "member": me, "state": state}
        time.sleep(float(interval))


def _settled_verdict(verdict, evidence, elapsed, local_for, grace):
    """The answer of a fault check *elapsed* seconds in, or None to look again.

    A cluster-wide outage (a rotated password put back, a partition healed) ends for
    one replica before the others: the first to stream again makes every other replica
    look at fault until its own retry comes. So ``local`` must hold for the whole
    *grace* (*local_for* seconds so far), not merely be true at its end; past twice the
    grace without that, the answer is ``unsettled`` and nothing is done (the beacon
    reports a real fault again)."""
    if verdict not in ("local", "cluster_wide"):
        return verdict, evidence
    if verdict == "local" and local_for is not None and local_for >= grace:
        return verdict, evidence
    if verdict == "cluster_wide" and elapsed >= grace:
        return verdict, evidence
    if elapsed >= 2 * grace:
        return "unsettled", (f"{evidence}; but only for {local_for or 0:.0f} s of the {grace:.0f} s "
                             "a fault must last to be the replica's own")
    return None
