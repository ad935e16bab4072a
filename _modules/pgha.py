"""
The pgha formula's parameters and their validation.

``pgha.config`` returns exactly what ``pgha/map.jinja`` computes (defaults.yaml merged
with the pillar's ``pgha:`` key, plus derived lists), so the execution modules, the
states and the SLS files all read one source. ``pgha.validate`` checks it before
anything is changed.
"""

import copy
import hashlib
import ipaddress
import json
import logging
import re

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "pgha"

# Patroni's own floors (patroni/config.py: _validate_and_adjust_timeouts).
PATRONI_MIN = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
ROLES = ("postgres", "haproxy", "backup", "monitor")
# What a node entry may hold (pillar.example documents each).
NODE_KEYS = ("address", "roles", "priority", "tags", "etcd_join", "state")
FRONTENDS = ("keepalived", "hetzner")
INSTALL_METHODS = ("pip", "deb")
# distribution: the system's own packages; pgdg: the PostgreSQL project's apt repository.
REPOSITORIES = ("distribution", "pgdg")
# Maps whose keys are the operator's own (node names, PostgreSQL parameters, ...): the
# typo check does not look inside them.
OPEN_MAPS = {
    ("nodes",),
    ("postgres", "package_versions"),
    ("patroni", "package_versions"),
    ("etcd", "package_versions"),
    ("haproxy", "package_versions"),
    ("keepalived", "package_versions"),
    ("patroni", "parameters"),
    ("patroni", "dcs", "postgresql", "parameters"),
    ("hetzner", "load_balancer", "labels"),
    ("backup", "package_versions"),
    ("monitoring", "node_exporter", "package_versions"),
    ("monitoring", "postgres_exporter", "package_versions"),
    ("monitoring", "prometheus", "package_versions"),
    ("monitoring", "alertmanager", "package_versions"),
    ("backup", "repo2"),
}

_MAP_EXPR = '{%- from "pgha/map.jinja" import pgha %}{{ pgha | json }}'
_DEFAULTS_EXPR = '{%- import_yaml "pgha/defaults.yaml" as d %}{{ d.pgha | json }}'


def __virtual__():
    return __virtualname__


def _saltenv():
    return __opts__.get("saltenv") or "base"


def _render(expr):
    # The run's environment: a state run with saltenv=dev reads dev's map.jinja.
    rendered = __salt__["slsutil.renderer"](string=expr, default_renderer="jinja", saltenv=_saltenv())
    if hasattr(rendered, "read"):
        rendered = rendered.read()
    return json.loads(rendered)


def config(refresh=False, redact=True, **kwargs):
    """
    Return the formula's parameters as ``pgha/map.jinja`` merges them: ``defaults.yaml``
    with the pillar's ``pgha:`` over it, plus derived values (``postgres_members``,
    ``haproxy_members``, ``bootstrap_node``, this node's ``address``, ...).

    refresh
        Render again instead of using the copy cached for this run.
    redact
        Replace every secret (any ``password``, ``token`` or ``key``) with ``******``.
        Only pgha's own modules, calling in-process, get them with ``redact=False``: a
        call that arrives as a job (``salt <minion> pgha.config redact=False``, or
        salt-call) is always redacted, so secrets never travel to a remote caller.

    CLI Example:

    .. code-block:: bash

        salt pg-01 pgha.config
    """
    # The copy is tied to the pillar it was rendered from. Beacons call this in the
    # minion's own process, whose __context__ outlives pillar refreshes: a refresh
    # rebuilds the loader before the new pillar arrives, so a beacon run in between
    # would otherwise keep the old pillar's values (a passphrase put back, a bound
    # changed) until the next refresh.
    pillar = _pillar_fingerprint()
    cached = __context__.get("pgha.config")
    if refresh or cached is None or cached[0] != pillar:
        try:
            __context__["pgha.config"] = cached = (pillar, _render(_MAP_EXPR))
        except Exception as exc:  # a broken pillar surfaces here first
            raise CommandExecutionError(f"cannot render pgha/map.jinja: {exc}")
    # Salt hands a function called as a job its publication data as __pub_* keywords.
    as_job = any(key.startswith("__pub_") for key in kwargs)
    # A copy for each caller: an SLS file that changed what it was given would change it
    # for every file rendered after it in the same run.
    return _redacted(cached[1]) if redact or as_job else copy.deepcopy(cached[1])


def _pillar_fingerprint():
    """A digest of the pillar's ``pgha:`` data, this node's id and the environment: what
    map.jinja renders from besides the formula's own files."""
    data = {"pgha": __salt__["pillar.get"]("pgha", {}), "id": __opts__.get("id"), "saltenv": _saltenv()}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


SECRET_KEYS = ("password", "token", "key", "root_password", "patroni_password", "cipher_pass",
               "key_secret")


def _redacted(value):
    if isinstance(value, dict):
        return {k: ("******" if k in SECRET_KEYS and v else _redacted(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def defaults():
    """
    Return the formula's ``defaults.yaml`` (the ``pgha:`` key), untouched by pillar.

    CLI Example:

    .. code-block:: bash

        salt pg-01 pgha.defaults
    """
    return _render(_DEFAULTS_EXPR)


def validate():
    """
    Check the pillar's ``pgha:`` data and return a list of problems, each naming the
    key and the fix. An empty list means the pillar is good.

    CLI Example:

    .. code-block:: bash

        salt-call pgha.validate
    """
    raw = __salt__["pillar.get"]("pgha", {})
    if not isinstance(raw, dict):
        return ["pgha: must be a mapping; see pillar.example"]
    base = defaults()
    errors = _unknown_keys(raw, base, ())
    if errors:
        # A typo can make every later message misleading; fix these first.
        return errors
    try:
        cfg = config(refresh=True, redact=False)
    except CommandExecutionError as exc:
        return [str(exc)]
    return _check(cfg)


def _check(cfg):
    """Validate merged parameters (as ``config`` returns them); return the problems."""
    errors = []
    nodes = cfg.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        return ["pgha:nodes: no nodes defined; add {name: {address: ..., roles: [...]}} for "
                "every node (see pillar.example)"]
    errors += _check_nodes(cfg, nodes)
    errors += _check_etcd_members(cfg)
    errors += _check_passwords(cfg)
    errors += _check_profile(cfg)
    errors += _check_timing(cfg)
    errors += _check_frontend(cfg)
    errors += _check_packages(cfg)
    errors += _check_ports(cfg, nodes)
    errors += _check_synchronous(cfg)
    errors += _check_tls(cfg)
    errors += _check_networks(cfg)
    errors += _check_backup(cfg)
    errors += _check_monitoring(cfg)
    errors += _check_names(cfg)
    return errors


# ---- the rules ------------------------------------------------------------------------

def _unknown_keys(raw, base, path):
    errors = []
    for key, value in raw.items():
        here = path + (key,)
        if key not in base:
            known = ", ".join(sorted(base)) if isinstance(base, dict) else ""
            errors.append(f"pgha:{':'.join(here)}: unknown key (a typo?); known keys here: {known}")
        elif here in OPEN_MAPS:
            continue
        elif isinstance(value, dict) and isinstance(base[key], dict):
            errors += _unknown_keys(value, base[key], here)
    return errors


def _check_nodes(cfg, nodes):
    errors = []
    seen_addresses = {}
    seen_names = {}
    network = None
    if cfg["cluster"].get("network"):
        try:
            network = ipaddress.ip_network(cfg["cluster"]["network"], strict=False)
        except ValueError:
            errors.append(f"pgha:cluster:network: {cfg['cluster']['network']!r} is not a network; "
                          "write it as CIDR, e.g. 198.51.100.0/24")
    else:
        errors.append("pgha:cluster:network: missing; set the CIDR all nodes share, "
                      "e.g. 198.51.100.0/24")
    for name, node in sorted(nodes.items()):
        where = f"pgha:nodes:{name}"
        if not isinstance(node, dict):
            errors.append(f"{where}: must be a mapping with address and roles")
            continue
        lowered = name.lower()
        if lowered in seen_names:
            errors.append(f"{where}: duplicate node name (also {seen_names[lowered]}); "
                          "node names must be unique, ignoring case")
        seen_names[lowered] = name
        unknown = sorted(set(node) - set(NODE_KEYS))
        if unknown:
            errors.append(f"{where}:{unknown[0]}: unknown key (a typo?); a node has "
                          f"{', '.join(NODE_KEYS)}")
        if "priority" in node and not (isinstance(node["priority"], int)
                                       and not isinstance(node["priority"], bool)
                                       and 1 <= node["priority"] <= 254):
            errors.append(f"{where}:priority: {node['priority']!r}; VRRP priorities are 1 to 254")
        if "tags" in node and not isinstance(node["tags"], dict):
            errors.append(f"{where}:tags: must be a mapping of Patroni tags, e.g. {{nofailover: true}}")
        if node.get("state") not in ("present", "absent"):
            errors.append(f"{where}:state: {node['state']!r}; use present or absent")
        if node.get("etcd_join") not in ("new", "existing"):
            errors.append(f"{where}:etcd_join: {node['etcd_join']!r}; use new or existing")
        roles = node.get("roles") or []
        bad_roles = [r for r in roles if r not in ROLES]
        if not roles or bad_roles:
            errors.append(f"{where}:roles: {roles!r}; use one or more of {', '.join(ROLES)}")
        address = node.get("address")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            errors.append(f"{where}:address: {address!r} is not an IP address; set the node's address")
            continue
        if ip.version != 4:
            # The formula writes host:port and URLs without brackets (etcd, Patroni,
            # HAProxy, pg_hba): an IPv6 address would render configs that do not parse.
            errors.append(f"{where}:address: {ip} is IPv6; pgha supports IPv4 node addresses only")
            continue
        if str(ip) in seen_addresses:
            errors.append(f"{where}:address: {ip} is also {seen_addresses[str(ip)]}'s address; "
                          "every node needs its own")
        seen_addresses[str(ip)] = name
        if network and ip not in network:
            errors.append(f"{where}:address: {ip} is outside pgha:cluster:network {network}")
    vip = cfg["keepalived"].get("vip")
    if vip and vip in seen_addresses:
        errors.append(f"pgha:keepalived:vip: {vip} is also {seen_addresses[vip]}'s address; "
                      "the VIP needs an address of its own")
    router_id = cfg["keepalived"].get("virtual_router_id")
    if not (isinstance(router_id, int) and not isinstance(router_id, bool) and 1 <= router_id <= 255):
        errors.append(f"pgha:keepalived:virtual_router_id: {router_id!r}; VRRP router ids are 1 to 255")
    bootstrap = cfg["patroni"].get("bootstrap_node")
    if bootstrap is not None and bootstrap not in cfg["postgres_members"]:
        errors.append(f"pgha:patroni:bootstrap_node: {bootstrap!r} is not a postgres node; use one "
                      f"of {', '.join(cfg['postgres_members']) or '(none)'}")
    errors += _check_role_grain(cfg)
    return errors


# name==version, optionally with extras: what a reproducible install needs.
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.+!-]+$")


def _check_packages(cfg):
    """Where Patroni and PostgreSQL come from."""
    errors = []
    patroni, postgres = cfg["patroni"], cfg["postgres"]
    if patroni["install_method"] not in INSTALL_METHODS:
        errors.append(f"pgha:patroni:install_method: {patroni['install_method']!r}; use one of "
                      f"{', '.join(INSTALL_METHODS)}")
    elif patroni["install_method"] == "pip":
        requirements = patroni["pip"]["requirements"]
        if not isinstance(requirements, list) or not requirements:
            errors.append("pgha:patroni:pip:requirements: must list Patroni and what it needs, pinned")
        else:
            for i, req in enumerate(requirements):
                if not isinstance(req, str) or not PINNED.match(req.strip()):
                    errors.append(f"pgha:patroni:pip:requirements[{i}]: {req!r} is not pinned; "
                                  "write name==version, so every node installs the same")
    if postgres["repository"] not in REPOSITORIES:
        errors.append(f"pgha:postgres:repository: {postgres['repository']!r}; use one of "
                      f"{', '.join(REPOSITORIES)}")
    elif postgres["repository"] == "pgdg":
        for key in ("url", "key_url"):
            if not re.match(r"^https?://\S+$", str(postgres["pgdg"][key] or "")):
                errors.append(f"pgha:postgres:pgdg:{key}: {postgres['pgdg'][key]!r} is not an http(s) URL")
        if not str(postgres["pgdg"]["keyring"] or "").startswith("/"):
            errors.append(f"pgha:postgres:pgdg:keyring: {postgres['pgdg']['keyring']!r}; give an absolute path")
    return errors


def _check_role_grain(cfg):
    """Roles come from pillar only. The lab also writes them as the `roles` grain, for
    people: when that grain exists it must agree (a minion sets its grains itself, so
    nothing trusts them)."""
    node = cfg["nodes"].get(cfg["id"])
    grain = __grains__.get("roles")
    if not isinstance(node, dict) or grain is None:
        return []
    if sorted(grain if isinstance(grain, list) else [grain]) != sorted(node.get("roles") or []):
        return [f"pgha:nodes:{cfg['id']}:roles: {sorted(node.get('roles') or [])} in pillar, but "
                f"this minion's roles grain says {grain}; roles come from pillar: fix or remove "
                "the grain"]
    return []


# Wider networks than this (0.0.0.0/0 included) are admitted only with
# pgha:postgres:allow_wide_networks: true.
WIDEST_PREFIX = {4: 8, 6: 32}


def _check_networks(cfg):
    """pgha:postgres:app_networks: each a CIDR network, none wider than /8 (IPv4) or /32
    (IPv6) unless allow_wide_networks. A malformed entry would break PostgreSQL's pg_hba
    at its next restart."""
    pg = cfg["postgres"]
    networks = pg.get("app_networks")
    if not isinstance(networks, list):
        return ["pgha:postgres:app_networks: must be a list of CIDR networks, e.g. [10.0.0.0/16]"]
    errors = []
    for index, entry in enumerate(networks):
        where = f"pgha:postgres:app_networks[{index}]"
        try:
            net = ipaddress.ip_network(str(entry), strict=True)
        except ValueError as exc:
            errors.append(f"{where}: {entry!r} is not a CIDR network ({exc}); write it as e.g. "
                          "10.0.0.0/16 or 10.0.0.5/32")
            continue
        if "/" not in str(entry):
            errors.append(f"{where}: {entry!r} has no prefix length; write {net}")
        elif net.prefixlen < WIDEST_PREFIX[net.version] and not pg.get("allow_wide_networks"):
            errors.append(f"{where}: {net} admits {net.num_addresses} addresses (wider than "
                          f"/{WIDEST_PREFIX[net.version]}); narrow it, or set "
                          "pgha:postgres:allow_wide_networks: true if you mean it")
    return errors


def _check_etcd_members(cfg):
    count = len(cfg["postgres_members"])
    if count == 1 and cfg["cluster"].get("dev_single_etcd"):
        return []
    if count < 3:
        return [f"pgha:nodes: {count} postgres node(s) give {count} etcd member(s); etcd needs at "
                "least 3 to survive a failure (set pgha:cluster:dev_single_etcd: true for a "
                "1-node development cluster)"]
    # The cluster a bootstrap creates must be odd. Members joined later (etcd_join:
    # existing, orch.add_node) may make it even on the way to the next odd size.
    initial = [n for n in cfg["postgres_members"] if cfg["nodes"][n]["etcd_join"] != "existing"]
    if len(initial) % 2 == 0:
        return [f"pgha:nodes: {len(initial)} postgres nodes bootstrap an even number of etcd "
                f"members, which tolerates no more failures than {len(initial) - 1}: use an odd "
                "number (grow an existing cluster with orch.add_node instead)"]
    return []


BACKUP_COMPRESS = ("zst", "lz4", "gz", "bz2", "none")
BACKUP_CIPHERS = ("aes-256-cbc", "none")
BACKUP_ARCHIVE_TYPES = ("full", "diff", "incr")
REPO2_REQUIRED = ("type", "bucket", "endpoint", "region", "path", "key", "key_secret")


# A cluster or stanza name goes into shell commands PostgreSQL runs (archive_command),
# pgBackRest's INI sections, systemd units and etcd keys: letters, digits, . _ - only.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _check_names(cfg):
    """pgha:cluster:name and pgha:backup:stanza are safe in every place they go."""
    names = {"cluster:name": cfg["cluster"]["name"]}
    if cfg["backup"]["stanza"] is not None:  # null: the cluster's name
        names["backup:stanza"] = cfg["backup"]["stanza"]
    errors = []
    for key, value in names.items():
        if not isinstance(value, str) or not SAFE_NAME.match(value):
            errors.append(f"pgha:{key}: {value!r}; use letters, digits, '.', '_' and '-' only "
                          "(at most 63, starting with a letter or digit): it goes into shell "
                          "commands, pgBackRest's configuration and etcd keys")
    return errors


def _check_backup(cfg):
    """pgha:backup: one backup node, TLS (pgBackRest's server admits clients by their
    certificate), a passphrase on the backup node, sane retention and an S3 repo2 with
    every key it needs."""
    b = cfg["backup"]
    if not b.get("enabled"):
        return []
    errors = []
    where = "pgha:backup"
    if len(cfg["backup_members"]) != 1:
        errors.append(f"{where}: enabled, but {len(cfg['backup_members'])} nodes have the role "
                      "backup; give exactly one node roles: [backup] (the repository host)")
    if not cfg["tls"].get("enabled"):
        errors.append(f"{where}: enabled needs pgha:tls:enabled (pgBackRest's TLS server)")
    if cfg["id"] in cfg["backup_members"] + cfg["postgres_members"]:
        for key, marker in (("cert", "BEGIN CERTIFICATE"), ("key", "PRIVATE KEY")):
            if marker not in str(b["tls"].get(key) or ""):
                errors.append(f"{where}:tls:{key}: missing or not PEM for {cfg['id']}; pgBackRest "
                              "needs a certificate whose CommonName is the minion id")
    repo = b["repo"]
    if repo.get("cipher_type") not in BACKUP_CIPHERS:
        errors.append(f"{where}:repo:cipher_type: {repo.get('cipher_type')!r}; use "
                      f"{' or '.join(BACKUP_CIPHERS)}")
    if cfg["id"] in cfg["backup_members"] and repo.get("cipher_type") != "none" and not repo.get("cipher_pass"):
        errors.append(f"{where}:repo:cipher_pass: missing on the backup node; set the repository's "
                      "passphrase in its pillar only (e.g. openssl rand -base64 48)")
    if b.get("compress_type") not in BACKUP_COMPRESS:
        errors.append(f"{where}:compress_type: {b.get('compress_type')!r}; use one of "
                      f"{', '.join(BACKUP_COMPRESS)}")
    if repo.get("retention_archive_type") not in BACKUP_ARCHIVE_TYPES:
        errors.append(f"{where}:repo:retention_archive_type: {repo.get('retention_archive_type')!r}; "
                      f"use one of {', '.join(BACKUP_ARCHIVE_TYPES)}")
    for key in ("retention_full", "retention_diff"):
        if not isinstance(repo.get(key), int) or isinstance(repo.get(key), bool) or repo[key] < 1:
            errors.append(f"{where}:repo:{key}: {repo.get(key)!r} is not a count of 1 or more")
    for key in ("max_age", "rebuild_requires_backup_within", "restore_timeout",
                "archive_timeout", "io_timeout", "process_max"):
        if not isinstance(b.get(key), int) or isinstance(b.get(key), bool) or b[key] < 1:
            errors.append(f"{where}:{key}: {b.get(key)!r} is not a whole number of 1 or more")
    if b.get("backup_standby") not in (True, False, "prefer"):
        errors.append(f"{where}:backup_standby: {b.get('backup_standby')!r}; use true, false or prefer")
    schedule = b.get("schedule")
    if not isinstance(schedule, dict) or set(schedule) - {"full", "diff", "incr"}:
        errors.append(f"{where}:schedule: {schedule!r}; a map of full, diff and incr to systemd "
                      "OnCalendar expressions (or null)")
    repo2 = b.get("repo2")
    if repo2 is not None:
        if not isinstance(repo2, dict):
            errors.append(f"{where}:repo2: {repo2!r} is not a map (see pillar.example)")
        else:
            if repo2.get("type") != "s3":
                errors.append(f"{where}:repo2:type: {repo2.get('type')!r}; only s3 is supported")
            missing = [k for k in REPO2_REQUIRED if not repo2.get(k)]
            if cfg["id"] in cfg["backup_members"] and missing:
                errors.append(f"{where}:repo2: missing {', '.join(missing)}")
            if repo.get("cipher_type") != "none" and cfg["id"] in cfg["backup_members"] \
                    and not repo2.get("cipher_pass"):
                errors.append(f"{where}:repo2:cipher_pass: missing; an encrypted repo2 needs its own passphrase")
            unknown = sorted(set(repo2) - set(REPO2_REQUIRED) - {"uri_style", "cipher_pass", "retention_full"})
            if unknown:
                errors.append(f"{where}:repo2: unknown key(s) {', '.join(unknown)}")
    return errors


def _check_tls(cfg):
    tls = cfg["tls"]
    if not tls.get("enabled"):
        return []
    errors = []
    if "BEGIN CERTIFICATE" not in str(tls.get("ca_cert") or ""):
        errors.append("pgha:tls:ca_cert: missing or not PEM; with pgha:tls:enabled every node "
                      "needs the CA certificate (-----BEGIN CERTIFICATE-----)")
    # The master renders no node's certificate; each node checks its own.
    if cfg["id"] in cfg["nodes"]:
        for key, marker in (("cert", "BEGIN CERTIFICATE"), ("key", "PRIVATE KEY")):
            if marker not in str(tls.get(key) or ""):
                errors.append(f"pgha:tls:{key}: missing or not PEM for {cfg['id']}; give each "
                              "node its own certificate and key in pillar")
    return errors


# The secrets each role needs; a minion receives (pillar/top.sls) and is checked for only
# those of its own role. The master, which runs the orchestrations, is checked for all.
ROLE_SECRETS = {
    "postgres": [("patroni", "superuser", "password"), ("patroni", "replication", "password"),
                 ("patroni", "rewind", "password"), ("patroni", "restapi", "password")],
    "haproxy": [("haproxy", "stats", "password")],
    "backup": [],
    "monitor": [],
}
ETCD_SECRETS = [("etcd", "root_password"), ("etcd", "patroni_password")]
# With monitoring on: the exporter's login role (postgres nodes), and the webhook's
# token (monitor nodes, and the master, which checks it) when a webhook is set.
MONITORING_SECRETS = {"postgres": [("monitoring", "postgres_exporter", "password")]}
WEBHOOK_SECRET = ("monitoring", "alertmanager", "webhook", "token")


def _roles_of(cfg):
    """The roles whose secrets this node must have: its own, or (on the master, which is
    no node) every role the cluster has."""
    node = cfg["nodes"].get(cfg["id"])
    if isinstance(node, dict):
        return set(node.get("roles") or [])
    return {role for role in ROLES if cfg[f"{role}_members"]}


def _check_passwords(cfg):
    roles = _roles_of(cfg)
    wanted = [path for role in sorted(roles) for path in ROLE_SECRETS[role]]
    if "postgres" in roles and cfg["etcd"]["auth"]:
        wanted += ETCD_SECRETS
    if cfg["monitoring_ready"]:
        wanted += [path for role in sorted(roles) for path in MONITORING_SECRETS.get(role, [])]
        if cfg["monitoring"]["alertmanager"]["webhook"]["url"] and (
                "monitor" in roles or cfg["id"] not in cfg["nodes"]):
            wanted.append(WEBHOOK_SECRET)
    errors = []
    for path in wanted:
        value = cfg
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if not value:
            why = " with pgha:etcd:auth on" if path[0] == "etcd" else ""
            errors.append(f"pgha:{':'.join(path)}: missing{why}; set it in the pillar of the "
                          f"{'/'.join(sorted(roles))} nodes (keep it encrypted, e.g. with the "
                          "gpg renderer)")
    return errors


def _check_monitoring(cfg):
    """The monitor role's settings: the webhook over HTTPS, and receivers Alertmanager
    can load (a mapping with a name of its own)."""
    if not cfg["monitoring_ready"]:
        return []
    mon, errors = cfg["monitoring"], []
    url = mon["alertmanager"]["webhook"]["url"]
    if url and not str(url).startswith("https://"):
        errors.append(f"pgha:monitoring:alertmanager:webhook:url: {url!r} is not https://; the token "
                      "would cross the network in clear text")
    receivers = mon["alertmanager"]["receivers"]
    if not isinstance(receivers, list):
        return errors + [f"pgha:monitoring:alertmanager:receivers: {receivers!r} is not a list"]
    names = []
    for i, receiver in enumerate(receivers):
        name = receiver.get("name") if isinstance(receiver, dict) else None
        if not isinstance(name, str) or not name or name == "salt" or name in names:
            errors.append(f"pgha:monitoring:alertmanager:receivers[{i}]: needs a name of its own "
                          "(not 'salt', which pgha's webhook receiver has, nor a repeated one)")
        names.append(name)
    return errors


def _check_profile(cfg):
    """pgha:profile names a preset of salt/pgha/profiles.yaml on each axis."""
    chosen = cfg.get("profile")
    if not isinstance(chosen, dict):
        return [f"pgha:profile: {chosen!r} is not a mapping of rto and rpo"]
    return [f"pgha:profile:{axis}: {chosen.get(axis)!r} is not a profile; choose one of {', '.join(names)}"
            for axis, names in sorted(cfg["profile_choices"].items()) if chosen.get(axis) not in names]


def _check_timing(cfg):
    dcs = cfg["patroni"]["dcs"]
    errors = []
    for key, floor in PATRONI_MIN.items():
        value = dcs.get(key)
        if not isinstance(value, int):
            errors.append(f"pgha:patroni:dcs:{key}: {value!r} is not a whole number of seconds")
        elif value < floor:
            errors.append(f"pgha:patroni:dcs:{key}: {value} is below Patroni's minimum of {floor}; "
                          f"set it to {floor} or more")
    if errors:
        return errors
    if dcs["loop_wait"] + 2 * dcs["retry_timeout"] > dcs["ttl"]:
        errors.append(f"pgha:patroni:dcs: loop_wait + 2*retry_timeout = "
                      f"{dcs['loop_wait'] + 2 * dcs['retry_timeout']} exceeds ttl {dcs['ttl']}; "
                      "Patroni would silently shrink them: lower loop_wait or retry_timeout, "
                      "or raise ttl")
    return errors


def _check_frontend(cfg):
    frontend = cfg.get("frontend")
    if frontend not in FRONTENDS:
        return [f"pgha:frontend: {frontend!r}; use one of {', '.join(FRONTENDS)}"]
    if frontend == "hetzner":
        return _check_hetzner(cfg)
    if not cfg["haproxy_members"]:
        return []
    vip = cfg["keepalived"].get("vip")
    if not vip:
        return ["pgha:keepalived:vip: missing; set the virtual IP the haproxy nodes share"]
    try:
        ip = ipaddress.ip_address(vip)
    except ValueError:
        return [f"pgha:keepalived:vip: {vip!r} is not an IP address"]
    network = cfg["cluster"].get("network")
    try:
        if network and ip not in ipaddress.ip_network(network, strict=False):
            return [f"pgha:keepalived:vip: {vip} is outside pgha:cluster:network {network}; "
                    "VRRP only moves an address within the nodes' own network"]
    except ValueError:
        pass  # reported by _check_nodes
    return []


HETZNER_ALGORITHMS = ("round_robin", "least_connections")
HETZNER_CHECKS = ("tcp", "http")


def _check_hetzner(cfg):
    """The load balancer's description; the token is checked when the API is called."""
    hz = cfg["hetzner"]
    lb = hz["load_balancer"]
    where = "pgha:hetzner:load_balancer"
    errors = []
    if not lb.get("name"):
        errors.append(f"{where}:name: missing; name the load balancer (e.g. lb-haproxy)")
    if bool(lb.get("location")) == bool(lb.get("network_zone")):
        errors.append(f"{where}: set exactly one of location (e.g. fsn1) or network_zone "
                      "(e.g. eu-central); set the other to null")
    if lb.get("algorithm") not in HETZNER_ALGORITHMS:
        errors.append(f"{where}:algorithm: {lb.get('algorithm')!r}; use one of "
                      f"{', '.join(HETZNER_ALGORITHMS)}")
    if lb.get("health_check", {}).get("protocol") not in HETZNER_CHECKS:
        errors.append(f"{where}:health_check:protocol: {lb['health_check'].get('protocol')!r}; "
                      f"use one of {', '.join(HETZNER_CHECKS)}")
    if not lb.get("public_interface") and not lb.get("network"):
        errors.append(f"{where}:public_interface: false needs {where}:network: with no "
                      "public interface, clients and targets are reached only through it")
    if lb.get("ip") and not lb.get("network"):
        errors.append(f"{where}:ip: {lb['ip']} needs {where}:network, the network it is in")
    errors += _check_ip(f"{where}:ip", lb.get("ip"))
    if lb.get("proxy_protocol") and not hz.get("proxy_sources") and not lb.get("ip"):
        errors.append("pgha:hetzner:proxy_sources: empty, and no load_balancer:ip to default to; "
                      "with the PROXY protocol HAProxy must know the balancer's addresses (set "
                      "load_balancer:ip, or list them here)")
    for index, source in enumerate(hz.get("proxy_sources") or []):
        try:
            ipaddress.ip_network(str(source), strict=True)
        except ValueError as exc:
            errors.append(f"pgha:hetzner:proxy_sources[{index}]: {source!r} is not a CIDR network ({exc})")
    errors += _check_ip("pgha:hetzner:address", hz.get("address"))
    targets = lb.get("targets") or []
    if not isinstance(targets, list):
        return errors + [f"{where}:targets: must be a list of {{server: ...}}, "
                         "{label_selector: ...} or {ip: ...}"]
    if not targets and not cfg["haproxy_members"]:
        errors.append(f"{where}:targets: empty and no haproxy nodes to default to")
    for index, target in enumerate(targets):
        kinds = [k for k in ("server", "label_selector", "ip") if (target or {}).get(k)] \
            if isinstance(target, dict) else []
        if len(kinds) != 1 or len(target) != 1:
            given = ", ".join(sorted(target)) if isinstance(target, dict) else repr(target)
            errors.append(f"{where}:targets[{index}]: has {given or 'nothing'}; give exactly "
                          "one of server, label_selector or ip")
        elif kinds == ["ip"]:
            errors += _check_ip(f"{where}:targets[{index}]:ip", target["ip"])
    return errors


def _check_ip(key, value):
    if value is None:
        return []
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [f"{key}: {value!r} is not an IP address"]
    return []


def _check_ports(cfg, nodes):
    """Ports that share a node must differ."""
    by_role = {
        "postgres": {
            "pgha:postgres:port": cfg["postgres"]["port"],
            "pgha:patroni:restapi:port": cfg["patroni"]["restapi"]["port"],
            "pgha:etcd:client_port": cfg["etcd"]["client_port"],
            "pgha:etcd:peer_port": cfg["etcd"]["peer_port"],
        },
        "haproxy": {
            "pgha:haproxy:writer_port": cfg["haproxy"]["writer_port"],
            "pgha:haproxy:reader_port": cfg["haproxy"]["reader_port"],
            "pgha:haproxy:stats:port": cfg["haproxy"]["stats"]["port"],
            "pgha:haproxy:health:port": cfg["haproxy"]["health"]["port"],
        },
    }
    errors = []
    reported = set()
    for name, node in sorted(nodes.items()):
        used = {}
        for role in (node.get("roles") or []) if isinstance(node, dict) else []:
            for key, port in by_role.get(role, {}).items():
                if not isinstance(port, int) or not 0 < port < 65536:
                    if key not in reported:
                        errors.append(f"{key}: {port!r} is not a TCP port")
                        reported.add(key)
                elif port in used and (used[port], key) not in reported:
                    errors.append(f"{key}: port {port} collides with {used[port]} on {name}; "
                                  "give each service its own port")
                    reported.add((used[port], key))
                else:
                    used[port] = key
    return errors


def _check_synchronous(cfg):
    dcs = cfg["patroni"]["dcs"]
    if not dcs.get("synchronous_mode"):
        return []
    standbys = len(cfg["postgres_members"]) - 1
    wanted = dcs.get("synchronous_node_count", 1)
    if wanted > standbys:
        return [f"pgha:patroni:dcs:synchronous_node_count: {wanted} synchronous standby(s) but only "
                f"{standbys} replica(s); lower it to at most {standbys} or add postgres nodes"]
    if dcs.get("synchronous_mode_strict") and standbys == wanted:
        return [f"pgha:patroni:dcs:synchronous_mode_strict: with {standbys} replica(s) all "
                "synchronous, losing one stops every write; add a replica or turn strict off"]
    return []


def leases():
    """
    The master's live leases (run on the master, e.g. while an orchestration renders):
    ``{name: {owner, reason, kind, since, expires}}``. ``maintenance`` is the maintenance
    lock (``salt-run pgha.maintenance``); the others are self-healing's one-at-a-time
    slots (``reinit``, ``etcd``). Expired leases are not shown.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd pgha.leases
    """
    import time  # pylint: disable=import-outside-toplevel

    return __utils__["pgha_lock.status"](__utils__["pgha_lock.path"](__opts__["cachedir"]),
                                         time.time())


# ---- plans the orchestrations render -----------------------------------------------------

def _first_answer(minions, fun, timeout=15):
    """The first successful answer to *fun* among *minions* (on the master)."""
    answers = __salt__["saltutil.cmd"](list(minions), fun, tgt_type="list", timeout=timeout)
    for minion in sorted(answers):
        answer = answers[minion]
        if isinstance(answer, dict) and answer.get("retcode", 1) == 0:
            return answer.get("ret")
    return None


def rolling_restart_plan(members, force=False, service=False):
    """
    Plan ``orch.rolling_restart`` from the live cluster, asked through *members* (run on
    the master while the orchestration renders). See ``pgha_plans.rolling_restart``.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd pgha.rolling_restart_plan '[pg-01, pg-02, pg-03]'
    """
    rows = _first_answer(members, "patroni.list") or []
    reasons = _first_answer(members, "patroni.pending_restarts") or {}
    return __utils__["pgha_plans.rolling_restart"](rows if isinstance(rows, list) else [],
                                                   reasons if isinstance(reasons, dict) else {},
                                                   force=force, service=service)


def removal_plan(node):
    """
    Whether ``orch.remove_node`` may remove *node*, asked of the live cluster through
    the other members (run on the master while the orchestration renders): ``{problem}``.
    See ``pgha_plans.removal_problem``.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd pgha.removal_plan pg-04
    """
    cfg = config()
    members = cfg["postgres_members"]
    remaining = [m for m in members if m != node]
    leader = _first_answer(remaining, "patroni.leader") if remaining else None
    health = _first_answer(remaining, "etcd3.health") if remaining else None
    healthy = sorted(n for n, st in (health or {}).items() if st.get("healthy")) \
        if isinstance(health, dict) else []
    if node in members and remaining and health is None:
        return {"problem": "no remaining member answered with etcd's health"}
    return {"problem": __utils__["pgha_plans.removal_problem"](node, members, leader, healthy,
                                                               cfg["cluster"]["dev_single_etcd"])}
