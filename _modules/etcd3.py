"""
etcd, through its v3 API's HTTP/JSON gateway.

Named ``etcd3`` so it does not shadow Salt's own ``etcd`` module (a v2/v3 key-value
client). Endpoints, TLS and credentials come from the pgha formula's parameters
(``pgha.config``); ``endpoint`` overrides the one a call uses.

Member IDs are shown as etcdctl shows them (hex); functions accept hex or decimal.
"""

import logging
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
    cfg = __salt__["pgha.config"](redact=False)
    etcd = cfg["etcd"]
    tls = cfg.get("tls", {}) if cfg.get("tls", {}).get("enabled") else {}
    scheme = "https" if tls else "http"
    members = {name: f"{scheme}://{cfg['nodes'][name]['address']}:{etcd['client_port']}"
               for name in cfg["postgres_members"]}
    local = members.get(cfg["id"])
    return {
        "members": members,
        "endpoints": ([local] if local else []) + [u for u in members.values() if u != local],
        "tls": {"ca": tls.get("ca_file"), "cert": tls.get("cert_file"), "key": tls.get("key_file")}
        if tls else None,
        "auth": (etcd.get("root_username", "root"), etcd["root_password"])
        if etcd.get("auth") and etcd.get("root_password") else None,
    }


def _post(path, payload=None, endpoint=None, timeout=5):
    """POST to the first endpoint that answers; return (endpoint, body)."""
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
    url, _, body = __utils__["pgha_http.request"](
        "POST", endpoints, path, SERVICE, json=payload or {}, tls=s["tls"], timeout=timeout,
        headers=headers)
    return url, body


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

def _peer_url(peer_url=None, address=None):
    if peer_url:
        return peer_url
    if not address:
        raise SaltInvocationError("give peer_url= or address= for the new member")
    cfg = __salt__["pgha.config"](redact=False)
    return f"{cfg['scheme']}://{address}:{cfg['etcd']['peer_port']}"


def member_add(peer_url=None, address=None, learner=True):
    """
    Announce a new member by its peer URL (``member add``), as a learner by default: a
    learner receives the log but does not vote, so a new member that is slow to catch
    up cannot cost the cluster its quorum. Start the new member afterwards with
    ``initial-cluster-state existing`` and an empty data directory, then
    ``member_promote`` it.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.member_add address=198.51.100.123
    """
    url = _peer_url(peer_url, address)
    for m in members():
        if url in m["peer_urls"]:
            raise CommandExecutionError(f"an etcd member with peer URL {url} exists already "
                                        f"(id {m['id']}, name {m['name'] or 'not started'})")
    _, body = _post("/v3/cluster/member/add", {"peerURLs": [url], "isLearner": bool(learner)})
    return _member(body["member"])


def member_promote(member):
    """
    Promote a learner to a voting member (by name or id). etcd refuses while the
    learner's log is not caught up with the leader's; its message is passed on.

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
    leader = status()["leader_name"]
    endpoint = _settings()["members"].get(leader)
    _post("/v3/cluster/member/promote", {"ID": str(_parse_id(target["id"]))}, endpoint=endpoint)
    return {"promoted": True, "member": target["name"]}


def member_remove(member):
    """
    Remove a member (by name or id) from the cluster. Refused when it would leave the
    cluster without a quorum of its remaining voters.

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
    _post("/v3/cluster/member/remove", {"ID": str(_parse_id(target["id"]))})
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

