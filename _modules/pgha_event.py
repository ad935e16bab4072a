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
    heal = __salt__["pgha.config"]()["heal"]
    if not heal["enabled"] or not heal.get(reaction, False):
        result["why"] = f"self-healing is off (pgha:heal:enabled, pgha:heal:{reaction})"
        return result
    maintenance = __salt__["pgha.leases"]().get("maintenance")
    if maintenance and maintenance.get("kind") == "operator":
        result["why"] = (f"maintenance by {maintenance['owner']}: "
                         f"{maintenance.get('reason') or 'no reason given'}")
        return result
    if maintenance:
        result["why"] = f"{maintenance['owner']} is running (it holds the maintenance lock)"
        return result
    result["act"] = True
    return result
