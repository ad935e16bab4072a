"""
Signed beacon events: who sent an event, and whether the reactor may act on it.

Salt forwards a minion's batched events (beacons) to the master's bus as the minion
wrote them: the tag (``salt/beacon/<minion>/...``) and every value in the data,
``id`` included, are the sender's to choose. Any minion can therefore claim to be any
other. pgha's beacons sign each event with their minion's own Salt key
(``/etc/salt/pki/minion/minion.pem``, which only that minion holds); the master checks
the signature with the public key it accepted for the minion the tag names. So the
sender is proven by a key the master already trusts, and no new secret is needed.

What is signed: the full tag and the data (all but ``_sig`` and the master's
``_stamp``), as canonical JSON, with the time it was signed (``ts``). An event older than
``pgha:heal:event_max_age`` seconds, or from the future, is refused as a replay.
"""

import base64
import json
import logging
import os
import re
import time

from salt.exceptions import SaltInvocationError

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - Salt itself depends on it
    HAS_CRYPTOGRAPHY = False

log = logging.getLogger(__name__)

__virtualname__ = "pgha_event"

BEACON_TAG = re.compile(r"^salt/beacon/(?P<minion>[^/]+)/(?P<beacon>[^/]+)/(?P<kind>[^/]*)/?$")
# Which role a beacon's events imply: the sender must have it in pgha:nodes.
BEACON_ROLE = {"pgha_patroni": "postgres", "pgha_etcd": "postgres"}
# pgha_backup: a stale backup comes from the backup node, failing archiving from a
# postgres node (the primary).
BACKUP_KIND_ROLE = {"stale": "backup", "archive_failing": "postgres"}
# For the services beacon, the role follows the service.
SERVICE_ROLE = {"patroni": "postgres", "etcd": "postgres", "haproxy": "haproxy",
                "keepalived": "haproxy"}
UNSIGNED_KEYS = ("_sig", "_stamp")
# The future skew a signature may have (clocks of the nodes and the master).
CLOCK_SKEW = 30


def __virtual__():
    if not HAS_CRYPTOGRAPHY:
        return (False, "pgha_event needs the cryptography library")
    return __virtualname__


def _canonical(tag, data):
    body = {k: v for k, v in data.items() if k not in UNSIGNED_KEYS}
    return json.dumps({"tag": tag, "data": body}, sort_keys=True, separators=(",", ":"),
                      default=str).encode()


def _minion_key_path():
    return os.path.join(__opts__["pki_dir"], "minion.pem")


def sign(tag, data):
    """
    Return *data* with ``id``, ``ts`` and ``_sig``: a signature over the tag and the
    data made with this minion's own Salt key. The beacons call this for every event.

    tag
        The full tag the event will carry (``salt/beacon/<this minion>/<beacon>/<kind>``).

    CLI Example:

    .. code-block:: bash

        salt-call pgha_event.sign salt/beacon/pg-01/pgha_patroni/state '{"member": "pg-01"}'
    """
    if not isinstance(data, dict):
        raise SaltInvocationError("sign: data must be a mapping")
    signed = dict(data, id=__opts__["id"], ts=round(time.time(), 3))
    with open(_minion_key_path(), "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), password=None)
    signature = key.sign(_canonical(tag, signed), padding.PKCS1v15(), hashes.SHA256())
    signed["_sig"] = base64.b64encode(signature).decode()
    return signed


def _valid_signature(pub_path, tag, data):
    try:
        with open(pub_path, "rb") as fh:
            key = serialization.load_pem_public_key(fh.read())
        key.verify(base64.b64decode(str(data.get("_sig", "")), validate=True),
                   _canonical(tag, data), padding.PKCS1v15(), hashes.SHA256())
        return True
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False


def _accepted_keys():
    """{minion id: path of its accepted public key} from the master's pki dir."""
    keydir = os.path.join(__opts__["pki_dir"], "minions")
    try:
        names = sorted(os.listdir(keydir))
    except OSError:
        return {}
    return {name: os.path.join(keydir, name) for name in names if not name.startswith(".")}


def expected_role(tag, data):
    """The role in pgha:nodes that a sender of this beacon event must have, or None."""
    match = BEACON_TAG.match(str(tag))
    if not match:
        return None
    if match["beacon"] == "pgha_services":
        return SERVICE_ROLE.get(str((data or {}).get("service", match["kind"])))
    if match["beacon"] == "pgha_backup":
        return BACKUP_KIND_ROLE.get(match["kind"])
    return BEACON_ROLE.get(match["beacon"])


def problems(tag, data, nodes, signer, now, max_age):
    """
    Why an event may not be acted on (an empty list: it may). A plain function of what
    arrived and what is known:

    tag, data
        The event.
    nodes
        ``pgha:nodes`` (present members only).
    signer
        The minion whose accepted key verifies the signature, or None.
    now, max_age
        The master's clock, and how old a signed event may be.
    """
    match = BEACON_TAG.match(str(tag))
    if not match:
        return [f"tag {tag!r} is not a pgha beacon tag"]
    if not isinstance(data, dict):
        return ["the event data is not a mapping"]
    claimed = match["minion"]
    found = []
    if signer is None:
        found.append(f"no valid signature from {claimed} (nor from any accepted minion)")
    elif signer != claimed:
        found.append(f"signed by {signer}, but the tag claims {claimed}")
    if data.get("id") != claimed:
        found.append(f"data id {data.get('id')!r} is not the tag's minion {claimed}")
    named = data.get("member")
    if named is not None and named != claimed:
        found.append(f"it names member {named!r}, not its sender {claimed}")
    node = nodes.get(claimed) if isinstance(nodes, dict) else None
    role = expected_role(tag, data)
    if not isinstance(node, dict):
        found.append(f"{claimed} is not a node in pgha:nodes")
    elif role is None:
        found.append(f"{match['beacon']}/{match['kind']} is no event pgha reacts to")
    elif role not in node["roles"]:
        found.append(f"{claimed} does not have the {role} role an {match['beacon']} event needs")
    if match["beacon"] == "pgha_services" and data.get("service") != match["kind"]:
        found.append(f"service {data.get('service')!r} is not the tag's {match['kind']!r}")
    try:
        age = float(now) - float(data.get("ts"))
    except (TypeError, ValueError):
        found.append("no signing time (ts)")
    else:
        if age > float(max_age):
            found.append(f"signed {age:.0f}s ago, more than pgha:heal:event_max_age "
                         f"({max_age}s): a replay or a stale event")
        elif age < -CLOCK_SKEW:
            found.append(f"signed {-age:.0f}s in the future")
    return found


def verify(tag, data):
    """
    Decide on the master whether a beacon event may be acted on. Returns
    ``{trusted, sender, claimed, problems}``: *sender* is the minion whose key really
    signed it (tried against every accepted key, so a forger is named), or, without a
    valid signature, ``unknown (its data says ...)``.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd pgha_event.verify salt/beacon/pg-01/pgha_patroni/state '{...}'
    """
    cfg = __salt__["pgha.config"]()
    match = BEACON_TAG.match(str(tag))
    claimed = match["minion"] if match else None
    keys = _accepted_keys()
    signer = None
    if isinstance(data, dict) and data.get("_sig"):
        order = ([claimed] if claimed in keys else []) + [m for m in keys if m != claimed]
        signer = next((m for m in order if _valid_signature(keys[m], str(tag), data)), None)
    # Members only: a node on its way out (state absent) steers nothing.
    nodes = {name: cfg["nodes"][name]
             for name in cfg["postgres_members"] + cfg["haproxy_members"] + cfg["backup_members"]}
    found = problems(tag, data, nodes, signer, time.time(), cfg["heal"]["event_max_age"])
    if found:
        log.warning("pgha: refusing event %s: %s", tag, "; ".join(found))
    # Without a valid signature nothing proves who sent it. An event a minion sent one by
    # one (event.send) carries the id the master authenticated; a batched one, whatever
    # its sender wrote. Either way it is reported as what the data says, unverified.
    sender = signer
    if sender is None:
        said = data.get("id") if isinstance(data, dict) else None
        sender = f"unknown (its data says {said!r})"
    return {"trusted": not found, "sender": sender, "claimed": claimed, "problems": found}


def sign_events(beacon_name, events):
    """
    Sign a beacon's events (``[{"tag": kind, ...data}]``) as Salt will send them:
    ``salt/beacon/<this minion>/<beacon_name>/<kind>``. Called by pgha's beacons.

    CLI Example:

    .. code-block:: bash

        salt-call pgha_event.sign_events pgha_etcd '[{"tag": "unhealthy", "member": "pg-01"}]'
    """
    signed = []
    for event in events:
        body = {k: v for k, v in event.items() if k != "tag"}
        tag = f"salt/beacon/{__opts__['id']}/{beacon_name}/{event['tag']}"
        signed.append(dict(sign(tag, body), tag=event["tag"]))
    return signed


def gate(tag, data, reaction):
    """
    The first decision of every self-healing reaction (``orch/heal/*.sls``, on the
    master): may this beacon event be acted on now? Returns ``{act, rejected, sender,
    claimed, why, problems}``:

    - a forged, unsigned, stale or misdirected event is ``rejected`` (the reaction
      sends ``pgha/alert/rejected_event`` naming the real signer, if any);
    - with healing off (``pgha:heal:enabled``, or this *reaction*'s switch) or while the
      maintenance lock is held (``salt-run pgha.maintenance``), nothing acts;
    - otherwise ``act`` is true and ``sender`` is the proven minion.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd pgha_event.gate salt/beacon/pg-03/pgha_patroni/state '{...}' reinit
    """
    verdict = verify(tag, data)
    result = {"act": False, "rejected": not verdict["trusted"], "sender": verdict["sender"],
              "claimed": verdict["claimed"], "problems": verdict["problems"], "why": ""}
    if result["rejected"]:
        result["why"] = "rejected: " + "; ".join(verdict["problems"])
        return result
    result["why"] = heal_blocked(reaction)
    result["act"] = not result["why"]
    return result


def heal_blocked(reaction):
    """
    Why self-healing's *reaction* may not act now ("" when it may): healing off
    (``pgha:heal:enabled`` or the reaction's own switch), or the maintenance lock held
    by an operator or an orchestration.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd pgha_event.heal_blocked exporters
    """
    heal = __salt__["pgha.config"]()["heal"]
    if not heal["enabled"] or not heal.get(reaction, False):
        return f"self-healing is off (pgha:heal:enabled, pgha:heal:{reaction})"
    maintenance = __salt__["pgha.leases"]().get("maintenance")
    if maintenance and maintenance.get("kind") == "operator":
        return (f"maintenance by {maintenance['owner']}: "
                f"{maintenance.get('reason') or 'no reason given'}")
    if maintenance:
        return f"{maintenance['owner']} is running (it holds the maintenance lock)"
    return ""


# ---- Alertmanager's webhook ------------------------------------------------------------
# salt-api (rest_cherrypy, /hook/pgha/alert) puts whatever was posted on the bus as
# salt/netapi/hook/pgha/alert: anyone who reaches the port can post. The reactor hands
# on only the SHA-256 of the Authorization header (the token never lands in a job's
# pillar) and the body; an alert becomes an event only when the token matches.

ALERT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
ALERT_STATUSES = ("firing", "resolved")
# The labels an alert event carries on, each bounded; anything else is dropped.
ALERT_LABELS = ("alertname", "severity", "member", "job", "instance", "cluster", "kind", "subject",
                "stanza", "vip", "cert", "mountpoint", "proxy")
MAX_ALERTS = 50
MAX_LABEL = 200


def webhook_problems(auth_sha256, token, post, nodes):
    """
    Judge one webhook post: ``(problems, alerts)``. *problems* non-empty means refuse
    the whole post. *alerts* are the post's alerts as pgha passes them on: ``{name,
    status, member, labels, summary, starts_at, ends_at, fingerprint}``, member None
    when the alert names no node of *nodes*. A plain function of what arrived.
    """
    import hashlib  # pylint: disable=import-outside-toplevel
    import hmac  # pylint: disable=import-outside-toplevel

    if not token:
        return ["the master has no pgha:monitoring:alertmanager:webhook:token"], []
    expected = hashlib.sha256(f"Bearer {token}".encode()).hexdigest()
    if not hmac.compare_digest(str(auth_sha256 or ""), expected):
        return ["no valid token (Authorization: Bearer ...)"], []
    if not isinstance(post, dict) or not isinstance(post.get("alerts"), list):
        return ["the post is not an Alertmanager webhook payload (no alerts list)"], []
    if len(post["alerts"]) > MAX_ALERTS:
        return [f"{len(post['alerts'])} alerts in one post, more than {MAX_ALERTS}"], []
    found, alerts = [], []
    for i, alert in enumerate(post["alerts"]):
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(labels, dict):
            found.append(f"alert {i}: no labels")
            continue
        name, status = labels.get("alertname"), alert.get("status")
        if not isinstance(name, str) or not ALERT_NAME.match(name):
            found.append(f"alert {i}: alertname {name!r} is not a plain name")
            continue
        if status not in ALERT_STATUSES:
            found.append(f"alert {i} ({name}): status {status!r}")
            continue
        kept = {k: str(labels[k])[:MAX_LABEL] for k in ALERT_LABELS if k in labels}
        member = kept.get("member")
        annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
        alerts.append({"name": name, "status": status,
                       "member": member if member in nodes else None, "labels": kept,
                       "summary": str(annotations.get("summary", ""))[:MAX_LABEL * 2],
                       "starts_at": str(alert.get("startsAt", ""))[:40],
                       "ends_at": str(alert.get("endsAt", ""))[:40],
                       "fingerprint": str(alert.get("fingerprint", ""))[:40]})
    return found, alerts


def webhook(auth_sha256, post):
    """
    Decide on the master whether an Alertmanager webhook post (salt-api's
    salt/netapi/hook/pgha/alert event) is genuine: ``{trusted, problems, alerts}``.
    orch/heal/alert.sls fires one pgha/alert/prometheus/<name> event per alert of a
    trusted post, and pgha/alert/rejected_webhook for any other.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd pgha_event.webhook <sha256 of "Bearer <token>"> '{"alerts": []}'
    """
    cfg = __salt__["pgha.config"](redact=False)
    token = cfg["monitoring"]["alertmanager"]["webhook"]["token"]
    found, alerts = webhook_problems(auth_sha256, token, post, cfg["nodes"])
    if found:
        log.warning("pgha: refusing a webhook post: %s", "; ".join(found))
    return {"trusted": not found, "problems": found, "alerts": alerts if not found else []}
