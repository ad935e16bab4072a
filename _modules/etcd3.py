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
        # The gateway takes a token in Authorization, not basic auth.
        endpoint, _, body = __utils__["pgha_http.request"](
            "POST", endpoints, "/v3/auth/authenticate", SERVICE, tls=s["tls"], timeout=timeout,
            json={"name": s["auth"][0], "password": s["auth"][1]})
        endpoints = [endpoint]
        headers = {"Authorization": body["token"]}
    url, _, body = __utils__["pgha_http.request"](
        "POST", endpoints, path, SERVICE, json=payload or {}, tls=s["tls"], timeout=timeout,
        headers=headers)
    return url, body


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


def health():
    """
    Ask every member in pillar for its ``/health``; return ``{name: {healthy, reason}}``.
    An unreachable member is reported, not raised.

    CLI Example:

    .. code-block:: bash

        salt pg-01 etcd3.health
    """
    s = _settings()
    result = {}
    for name, url in sorted(s["members"].items()):
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
