"""
etcd, through its v3 API's HTTP/JSON gateway.

Named ``etcd3`` so it does not shadow Salt's own ``etcd`` module (a v2/v3 key-value
client). Endpoints, TLS and credentials come from the pgha formula's parameters
(``pgha.config``); ``endpoint`` overrides the one a call uses.

Member IDs are shown as etcdctl shows them (hex); functions accept hex or decimal.
"""

import logging
import re
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "etcd3"
SERVICE = "etcd"


def __virtual__():
    if "pgha_http.request" not in __utils__:
        return (False, "etcd3: the pgha_http utility is not synced (saltutil.sync_utils)")
    return __virtualname__


# ---- plumbing ---------------------------------------------------------------------------

def _settings():
    """Endpoints, TLS and credentials, as map.jinja derives them (pgha.config)."""
    cfg = __salt__["pgha.config"](redact=False)
    etcd = cfg["etcd"]
    return {
        "members": {name: member["client_url"] for name, member in cfg["etcd_members"].items()},
        "endpoints": cfg["etcd_client_urls"],
        "tls": cfg["tls_client"],
        "auth": (etcd["root_username"], etcd["root_password"])
        if etcd["auth"] and etcd["root_password"] else None,
    }


def _post(path, payload=None, endpoint=None, timeout=5):
    """POST to the first endpoint that answers; return (endpoint, body)."""
    url, _, body = _request(path, payload, endpoint=endpoint, timeout=timeout)
    return url, body


def _request(path, payload=None, endpoint=None, timeout=5, expect=(200,)):
    """POST to the first endpoint that answers; return (endpoint, status, body)."""
    s = _settings()
    endpoints = [endpoint] if endpoint else s["endpoints"]
    if not endpoints:
        raise CommandExecutionError("no etcd members in pillar (pgha:nodes with role postgres)")
    headers = None
    if s["auth"]:
        # The gateway takes a token in Authorization, not basic auth. Before pgha.etcd.auth
        # has enabled authentication there is nothing to log in to.
        endpoint, status, body = _login(endpoints, s["tls"], *s["auth"], timeout=timeout)
        endpoints = [endpoint]
        if status == 200:
            headers = {"Authorization": body["token"]}
        elif "authentication is not enabled" not in str(body):
            raise CommandExecutionError(f"{SERVICE} at {endpoint}: login as {s['auth'][0]} "
                                        f"failed: {body.get('error', body) if isinstance(body, dict) else body}")
    return __utils__["pgha_http.request"](
        "POST", endpoints, path, SERVICE, json=payload or {}, tls=s["tls"], timeout=timeout,
        headers=headers, expect=expect)


def _login(endpoints, tls, name, password, timeout=5):
    """POST /v3/auth/authenticate to the first endpoint that answers: (endpoint, status,
    body); 400 is etcd's answer both to bad credentials and to auth not being enabled."""
    return __utils__["pgha_http.request"](
        "POST", endpoints, "/v3/auth/authenticate", SERVICE, tls=tls, timeout=timeout,
        json={"name": name, "password": password}, expect=(200, 400))


def _hex(member_id):
    return format(int(member_id), "x")


def _parse_id(member_id):
    """Hex as etcdctl shows it; more than 16 digits can only be the gateway's decimal form."""
    text = str(member_id).strip().lower().removeprefix("0x")
    try:
        return int(text, 16) if len(text) <= 16 else int(text)
    except ValueError:
        raise SaltInvocationError(f"{member_id!r} is not an etcd member ID (hex, as etcdctl shows)")


def _member(raw):
    return {
        "id": _hex(raw["ID"]),
        "name": raw.get("name", ""),
        "peer_urls": raw.get("peerURLs", []),
        "client_urls": raw.get("clientURLs", []),
        "is_learner": bool(raw.get("isLearner", False)),
    }


# ---- reading ----------------------------------------------------------------------------

def members(endpoint=None):
    """
    List the cluster's members: id (hex), name, peer and client URLs, learner or voter.
    A member added but not started yet has an empty name.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.members
    """
    _, body = _post("/v3/cluster/member/list", endpoint=endpoint)
    return [_member(m) for m in body.get("members", [])]


def health(member=None):
    """
    Ask every member in pillar (or just *member*) for its ``/health``; return
    ``{name: {healthy, reason}}``. An unreachable member is reported, not raised.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.health
        salt pg-01 etcd3.health member=pg-01
    """
    s = _settings()
    if member is not None and member not in s["members"]:
        raise SaltInvocationError(f"{member!r} is not an etcd member in pillar; members are: "
                                  f"{', '.join(sorted(s['members']))}")
    result = {}
    for name, url in sorted(s["members"].items()):
        if member is not None and name != member:
            continue
        try:
            _, _, body = __utils__["pgha_http.request"]("GET", url, "/health", SERVICE,
                                                        tls=s["tls"], timeout=3, expect=None)
            healthy = isinstance(body, dict) and str(body.get("health")).lower() == "true"
            reason = "" if healthy else (body.get("reason", "") if isinstance(body, dict) else body)
        except CommandExecutionError as exc:
            healthy, reason = False, str(exc)
        result[name] = {"healthy": healthy, "reason": reason}
    return result


def wait_for_quorum(timeout=120, interval=1):
    """
    Wait until a majority of the members in pillar is healthy and the cluster has a
    leader; return ``{leader, healthy}``. Raise with each member's state on timeout.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.wait_for_quorum timeout=120
    """
    s = _settings()
    need = len(s["members"]) // 2 + 1
    deadline = time.monotonic() + float(timeout)
    while True:
        states = health()
        healthy = sorted(name for name, st in states.items() if st["healthy"])
        if len(healthy) >= need:
            try:
                leader = status(endpoint=s["members"][healthy[0]])["leader_name"]
                if leader:
                    return {"leader": leader, "healthy": healthy}
            except CommandExecutionError:
                pass
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"etcd has no quorum after {timeout}s: {len(healthy)} of {len(states)} members "
                f"healthy, {need} needed; {states}")
        time.sleep(float(interval))


def status(endpoint=None):
    """
    Return one member's status: its id, the leader's id and name, raft term and index,
    database size, and whether it is a learner.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.status
    """
    url, body = _post("/v3/maintenance/status", endpoint=endpoint)
    header = body.get("header", {})
    leader_id = _hex(body.get("leader", 0))
    names = {m["id"]: m["name"] for m in members(endpoint=url)}
    return {
        "endpoint": url,
        "member_id": _hex(header.get("member_id", 0)),
        "member_name": names.get(_hex(header.get("member_id", 0)), ""),
        "leader_id": leader_id,
        "leader_name": names.get(leader_id, "") if leader_id != "0" else "",
        "version": body.get("version"),
        "db_size": int(body.get("dbSize", 0)),
        "db_size_in_use": int(body.get("dbSizeInUse", 0)),
        "raft_term": int(body.get("raftTerm", 0)),
        "raft_index": int(body.get("raftIndex", 0)),
        "raft_applied_index": int(body.get("raftAppliedIndex", 0)),
        "is_learner": bool(body.get("isLearner", False)),
        "errors": body.get("errors", []),
    }


def move_leader(to=None, away_from=None, timeout=10):
    """
    Transfer etcd's Raft leadership to the voting member *to*; or, with *away_from*,
    only if that member leads now, to the healthy voter with the most applied log.
    Returns ``{moved, leader}``; leadership is verified before returning.

    Moving etcd leadership is a normal Raft operation (a few milliseconds without a
    leader); pgha uses it to keep etcd's leader off the Patroni primary, so that losing
    one node never costs both elections at once.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.move_leader to=pg-03
        salt pg-01 etcd3.move_leader away_from=pg-01
    """
    if (to is None) == (away_from is None):
        raise SaltInvocationError("give exactly one of to= or away_from=")
    by_name = {m["name"]: m for m in members()}
    unknown = [n for n in (to, away_from) if n is not None and n not in by_name]
    if unknown:
        raise SaltInvocationError(f"no etcd member named {unknown[0]!r}; members are: "
                                  f"{', '.join(sorted(by_name))}")
    current = status()["leader_name"]
    if away_from is not None:
        if current != away_from:
            return {"moved": False, "leader": current}
        healthy = {n for n, st in health().items() if st["healthy"]}
        candidates = [n for n, m in by_name.items()
                      if n != current and not m["is_learner"] and n in healthy and m["client_urls"]]
        if not candidates:
            raise CommandExecutionError(f"no healthy voting member to take etcd leadership from {current}")
        to = max(candidates, key=lambda n: status(endpoint=by_name[n]["client_urls"][0])["raft_applied_index"])
    if to == current:
        return {"moved": False, "leader": current}
    if by_name[to]["is_learner"]:
        raise SaltInvocationError(f"{to} is a learner; only voting members can lead")
    leader_url = by_name[current]["client_urls"][0]
    _post("/v3/maintenance/transfer-leadership", {"targetID": str(_parse_id(by_name[to]["id"]))},
          endpoint=leader_url, timeout=timeout)
    deadline = time.monotonic() + float(timeout)
    while status()["leader_name"] != to:
        if time.monotonic() > deadline:
            raise CommandExecutionError(f"etcd leadership did not move from {current} to {to} "
                                        f"within {timeout}s")
        time.sleep(0.2)
    return {"moved": True, "leader": to, "previous": current}


# ---- membership and maintenance ---------------------------------------------------------

# etcd checks a membership change on the member that receives it (strict reconfig check,
# on by default): for a member add, that member must have been connected to every other
# voting member for the last 5 s; for a remove or a promote, to a quorum of them. Else it
# answers HTTP 503 "etcdserver: unhealthy cluster" (or "not enough started members").
# /health says nothing about this: a member can be healthy and still refuse. Each
# member's own /metrics (etcd_network_active_peers) shows which peers it is connected to.
ACTIVE_PEERS = "etcd_network_active_peers"
RETRY_STATUS = 503


def _active_peers(text):
    """{remote member id (hex): connected} from one member's /metrics text."""
    peers = {}
    for line in str(text).splitlines():
        if not line.startswith(ACTIVE_PEERS + "{"):
            continue
        labels, _, value = line.rpartition(" ")
        remote = re.search(r'Remote="([0-9a-f]+)"', labels)
        if remote:
            try:
                peers[remote.group(1)] = float(value) >= 1
            except ValueError:
                continue
    return peers


def _label(m):
    return m["name"] or f"{m['id']} (not started, {', '.join(m['peer_urls'])})"


def _connectivity_problems(member_list, views):
    """
    What keeps etcd from accepting a member add: ``{member id: problem}`` for each voting
    member that is not connected to every other voting member. *views* maps a member id
    to its active peers (``_active_peers``) or to the error that kept it from answering.
    """
    voters = [m for m in member_list if not m["is_learner"]]
    problems = {}
    for m in voters:
        view = views.get(m["id"])
        if view is None:
            problems[m["id"]] = f"{_label(m)} has not started: it is connected to no one"
        elif isinstance(view, str):
            problems[m["id"]] = f"{_label(m)} does not answer: {view}"
        else:
            missing = [_label(o) for o in voters if o["id"] != m["id"] and not view.get(o["id"])]
            if missing:
                problems[m["id"]] = f"{_label(m)} is not connected to {', '.join(missing)}"
    return problems


def peer_connections():
    """
    Which peers each voting member is connected to, as each member reports it on its own
    ``/metrics`` (``etcd_network_active_peers``): ``{member: {peer: connected}}``, or
    ``{member: "<why it did not answer>"}``. etcd accepts a member add only from a member
    connected to every other voting member.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.peer_connections
    """
    member_list = members()
    views = _views(member_list)
    names = {m["id"]: _label(m) for m in member_list}
    return {names[mid]: view if isinstance(view, str) else
            {names.get(peer, peer): up for peer, up in sorted(view.items())}
            for mid, view in sorted(views.items())}


def _views(member_list):
    """{member id: active peers, or the error} for every started voting member."""
    s = _settings()
    views = {}
    for m in member_list:
        if m["is_learner"] or not m["name"]:
            continue
        url = s["members"].get(m["name"]) or (m["client_urls"] or [None])[0]
        if not url:
            views[m["id"]] = "no client URL"
            continue
        try:
            _, _, text = __utils__["pgha_http.request"]("GET", url, "/metrics", SERVICE,
                                                        tls=s["tls"], timeout=3)
            views[m["id"]] = _active_peers(text)
        except CommandExecutionError as exc:
            views[m["id"]] = str(exc)
    return views


def membership_ready():
    """
    Whether etcd would accept a membership change now: ``{ready, problems, members}``.
    Ready when every voting member is connected to every other one; each problem names
    a member and the peers it is not connected to (or why it does not answer).

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.membership_ready
    """
    member_list = members()
    problems = sorted(_connectivity_problems(member_list, _views(member_list)).values())
    return {"ready": not problems, "problems": problems,
            "members": sorted(_label(m) for m in member_list)}


def wait_membership_ready(timeout=None, interval=1):
    """
    Wait until etcd would accept a membership change (``membership_ready``), up to
    *timeout* seconds (default ``pgha:checks:etcd_membership_timeout``); then raise,
    naming each member that is not connected and to whom.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.wait_membership_ready timeout=120
    """
    timeout = _membership_timeout(timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = membership_ready()
            problems = state["problems"]
        except CommandExecutionError as exc:
            state, problems = None, [str(exc)]
        if not problems:
            return state
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"etcd would not accept a membership change after {timeout:.0f}s: "
                + "; ".join(problems))
        time.sleep(float(interval))


def _membership_timeout(timeout):
    if timeout is not None:
        return float(timeout)
    return float(__salt__["pgha.config"](redact=False)["checks"]["etcd_membership_timeout"])


def _change_membership(path, payload, what, timeout=None, done=None, leader_only=False,
                       exclude=None):
    """
    Send a membership change to a member etcd accepts it from, retrying etcd's 503
    ("unhealthy cluster", "not enough started members") with backoff until *timeout*.
    *done*, if given, is asked before every attempt whether an earlier one that got no
    answer was applied after all (it returns the result then). *exclude* is a member id
    never to send it to (the one being removed). Returns etcd's answer.
    """
    timeout = _membership_timeout(timeout)
    deadline = time.monotonic() + timeout
    delay, last = 0.5, None
    urls = _settings()["members"]
    while True:
        if done is not None:
            result = done()
            if result is not None:
                return result
        try:
            member_list = members()
            problems = _connectivity_problems(member_list, _views(member_list))
            leader = status()["leader_name"] if leader_only else None
        except CommandExecutionError as exc:
            member_list, problems, leader = [], {"": str(exc)}, None
        # Members connected to every other voter first (etcd's condition for an add),
        # this node's own member first among them; the others after them, since a
        # remove or a promote needs the receiver connected to a quorum only.
        me = __salt__["pgha.config"](redact=False)["id"]
        candidates = sorted((m for m in member_list if m["name"] and not m["is_learner"]
                             and m["id"] != exclude),
                            key=lambda m: (m["id"] in problems, m["name"] != me))
        names = [m["name"] for m in candidates]
        if leader_only:
            names = [leader] if leader in names else []
        for name in names:
            endpoint = urls.get(name) or next(
                (m["client_urls"][0] for m in member_list if m["name"] == name and m["client_urls"]), None)
            if not endpoint:
                continue
            try:
                url, status_code, body = _request(path, payload, endpoint=endpoint, expect=None)
            except CommandExecutionError as exc:
                last = str(exc)
                continue
            if status_code == 200:
                return body
            text = body.get("message") or body.get("error") or body if isinstance(body, dict) else body
            if status_code != RETRY_STATUS:
                raise CommandExecutionError(f"{SERVICE} POST {url}{path} returned HTTP "
                                            f"{status_code}: {text}")
            last = f"{name} answered HTTP {status_code}: {text}"
        why = "; ".join(sorted(problems.values())) or last or "no member to send it to"
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"etcd refused to {what} for {timeout:.0f}s: {why}"
                + (f" (last answer: {last})" if last and problems else ""))
        log.info("etcd is not ready to %s (%s); retrying in %.1fs", what, why, delay)
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _peer_url(peer_url=None, address=None):
    if peer_url:
        return peer_url
    if not address:
        raise SaltInvocationError("give peer_url= or address= for the new member")
    return peer_url_for(address)


def peer_url_for(address):
    """
    Return the peer URL a member at *address* advertises (pgha.config's
    ``etcd_peer_url_template``: the formula's scheme and peer port).

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.peer_url_for 198.51.100.123
    """
    return __salt__["pgha.config"]()["etcd_peer_url_template"].replace("{address}", str(address))


def member_add(peer_url=None, address=None, learner=True, timeout=None):
    """
    Announce a new member by its peer URL (``member add``), as a learner by default: a
    learner receives the log but does not vote, so a new member that is slow to catch
    up cannot cost the cluster its quorum. Start the new member afterwards with
    ``initial-cluster-state existing`` and an empty data directory, then
    ``member_promote`` it.

    The request goes to a member that is connected to every other voting member (what
    etcd requires), and etcd's "unhealthy cluster" answers are retried with backoff for
    up to *timeout* seconds (default ``pgha:checks:etcd_membership_timeout``). Then it
    fails, naming the members that are not connected.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.member_add address=198.51.100.123
    """
    url = _peer_url(peer_url, address)
    for m in members():
        if url in m["peer_urls"]:
            raise CommandExecutionError(f"an etcd member with peer URL {url} exists already "
                                        f"(id {m['id']}, name {m['name'] or 'not started'})")

    def added():
        # A request that got no answer may have been applied: never add twice.
        return next(({"member": {"ID": int(m["id"], 16), "peerURLs": m["peer_urls"],
                                 "isLearner": m["is_learner"], "name": m["name"]}}
                     for m in members() if url in m["peer_urls"]), None)
    body = _change_membership("/v3/cluster/member/add", {"peerURLs": [url], "isLearner": bool(learner)},
                              f"add {url}", timeout=timeout, done=added)
    return _member(body["member"])


def member_promote(member, timeout=None):
    """
    Promote a learner to a voting member (by name or id). etcd refuses while the
    learner's log is not caught up with the leader's; its message is passed on. An
    "unhealthy cluster" answer is retried for up to *timeout* seconds (default
    ``pgha:checks:etcd_membership_timeout``).

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.member_promote pg-04
    """
    target = _find(member)
    if not target["is_learner"]:
        return {"promoted": False, "message": f"{target['name']} is a voting member already"}
    # Ask the leader itself: a follower forwards the request over the peer API, and with
    # TLS and authentication on, etcd 3.5 answers that only with "request timed out"
    # (measured), hiding the leader's real reason.
    _change_membership("/v3/cluster/member/promote", {"ID": str(_parse_id(target["id"]))},
                       f"promote {_label(target)}", timeout=timeout, leader_only=True)
    return {"promoted": True, "member": target["name"]}


def member_remove(member, timeout=None):
    """
    Remove a member (by name or id) from the cluster. Refused when it would leave the
    cluster without a quorum of its remaining voters. An "unhealthy cluster" answer is
    retried for up to *timeout* seconds (default ``pgha:checks:etcd_membership_timeout``).

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.member_remove pg-04
    """
    target = _find(member)
    voters = [m for m in members() if not m["is_learner"]]
    if not target["is_learner"]:
        remaining = [m for m in voters if m["id"] != target["id"]]
        healthy = {n for n, st in health().items() if st["healthy"]}
        alive = [m for m in remaining if m["name"] in healthy]
        if len(alive) < len(remaining) // 2 + 1:
            raise CommandExecutionError(
                f"removing {target['name'] or target['id']} would leave {len(alive)} healthy of "
                f"{len(remaining)} voters: no quorum")

    def removed():
        return {} if all(m["id"] != target["id"] for m in members()) else None
    _change_membership("/v3/cluster/member/remove", {"ID": str(_parse_id(target["id"]))},
                       f"remove {_label(target)}", timeout=timeout, done=removed,
                       exclude=target["id"])
    return {"removed": True, "member": target["name"] or target["id"]}


def _find(member):
    if not member:
        raise SaltInvocationError("give a member name or id")
    for m in members():
        if member in (m["name"], m["id"]):
            return m
    try:
        wanted = _hex(_parse_id(member))
    except SaltInvocationError:
        wanted = None
    for m in members():
        if m["id"] == wanted:
            return m
    raise CommandExecutionError(f"etcd has no member {member!r}")


def alarms():
    """
    List active alarms (NOSPACE when the database hit its quota, CORRUPT).

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.alarms
    """
    _, body = _post("/v3/maintenance/alarm", {"action": "GET", "memberID": "0", "alarm": "NONE"})
    names = {m["id"]: m["name"] for m in members()}
    return [{"member": names.get(_hex(a.get("memberID", 0)), _hex(a.get("memberID", 0))),
             "alarm": a.get("alarm", "NONE")} for a in body.get("alarms", [])]


def defragment(member=None):
    """
    Defragment one member's backend database (default: every member in turn), returning
    the space compaction freed to the filesystem. The member pauses while it runs.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.defragment
    """
    targets = [_find(member)] if member else members()
    result = {}
    for m in targets:
        if not m["client_urls"]:
            continue
        before = status(endpoint=m["client_urls"][0])["db_size"]
        _post("/v3/maintenance/defragment", {}, endpoint=m["client_urls"][0], timeout=60)
        after = status(endpoint=m["client_urls"][0])["db_size"]
        result[m["name"]] = {"db_size_before": before, "db_size_after": after}
    return result


# ---- keys (pgha's own, outside Patroni's prefix) -----------------------------------------

def kv_get(key):
    """
    Return the value of *key* (a string), or None when it does not exist.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.kv_get /pgha/pgha/dcs_overrides
    """
    _, body = _post("/v3/kv/range", {"key": _b64(key)})
    kvs = body.get("kvs") or []
    return _b64decode(kvs[0].get("value")) if kvs else None


def kv_put(key, value, ttl=None):
    """
    Set *key* to *value* (a string). With *ttl* (seconds) the key is bound to a new
    lease and disappears by itself when it runs out, so a run that dies half way
    cannot leave it behind.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.kv_put /pgha/pgha/note hello ttl=60
    """
    payload = {"key": _b64(key), "value": _b64(str(value))}
    if ttl:
        _, lease = _post("/v3/lease/grant", {"TTL": int(ttl)})
        payload["lease"] = lease["ID"]
    _post("/v3/kv/put", payload)
    return {"key": key, "ttl": int(ttl) if ttl else None}


def kv_delete(key):
    """
    Delete *key*; returns how many keys were deleted (0 or 1).

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.kv_delete /pgha/pgha/note
    """
    _, body = _post("/v3/kv/deleterange", {"key": _b64(key)})
    return int(body.get("deleted", 0))


# ---- authentication ---------------------------------------------------------------------

def auth_status():
    """
    Return ``{"enabled": bool}``: whether etcd requires authentication.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.auth_status
    """
    return {"enabled": bool(_post("/v3/auth/status")[1].get("enabled"))}


def users():
    """
    Return ``{user: [roles]}``.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.users
    """
    names = _post("/v3/auth/user/list")[1].get("users", [])
    return {name: _post("/v3/auth/user/get", {"name": name})[1].get("roles", []) for name in names}


def role_permissions(role):
    """
    Return a role's permissions: ``[{"type": READ|WRITE|READWRITE, "key": ..., "range_end": ...}]``
    with keys decoded.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.role_permissions patroni
    """
    _, body = _post("/v3/auth/role/get", {"role": role})
    return [{"type": p.get("permType", "READ"), "key": _b64decode(p.get("key")),
             "range_end": _b64decode(p.get("range_end"))} for p in body.get("perm", [])]


def _b64decode(value):
    import base64  # pylint: disable=import-outside-toplevel
    return base64.b64decode(value).decode() if value else ""


def _b64(value):
    import base64  # pylint: disable=import-outside-toplevel
    return base64.b64encode(value.encode()).decode()


def _prefix_end(prefix):
    """The range end that covers every key starting with *prefix*."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def user_ensure(name, password, roles=()):
    """
    Make sure *name* exists with *password* and (at least) *roles*; return what changed.
    The password is checked by logging in with it, and is never returned.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.user_ensure patroni password=... roles='[patroni]'
    """
    if not name or not password:
        raise SaltInvocationError("user_ensure needs a name and a password")
    changes = []
    existing = users()
    if name not in existing:
        _add("/v3/auth/user/add", {"name": name, "password": password})
        changes.append("created")
    elif not _can_login(name, password):
        _post("/v3/auth/user/changepw", {"name": name, "password": password})
        changes.append("password")
    for role in roles:
        if role not in existing.get(name, []):
            _post("/v3/auth/user/grant", {"user": name, "role": role})
            changes.append(f"role {role}")
    return changes


def _add(path, payload):
    """Create a user or role; another member's concurrent run may have just done it."""
    try:
        _post(path, payload)
    except CommandExecutionError as exc:
        if "already exists" not in str(exc):
            raise


def _can_login(name, password):
    s = _settings()
    try:
        return _login(s["endpoints"], s["tls"], name, password)[1] == 200
    except CommandExecutionError:
        return False


def role_ensure(name, prefix=None, perm="READWRITE"):
    """
    Make sure role *name* exists and may *perm* every key under *prefix* (the built-in
    ``root`` role needs no prefix); return what changed.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.role_ensure patroni prefix=/service/
    """
    changes = []
    names = _post("/v3/auth/role/list")[1].get("roles", [])
    if name not in names:
        _add("/v3/auth/role/add", {"name": name})
        changes.append("created")
    if prefix:
        wanted = {"type": perm, "key": prefix, "range_end": _prefix_end(prefix)}
        if wanted not in role_permissions(name):
            _post("/v3/auth/role/grant", {"name": name, "perm": {
                "permType": perm, "key": _b64(prefix), "range_end": _b64(_prefix_end(prefix))}})
            changes.append(f"{perm} {prefix}")
    return changes


def auth_enable():
    """
    Turn authentication on (etcd refuses unless a root user exists).

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.auth_enable
    """
    _post("/v3/auth/enable")
    return {"enabled": True}

