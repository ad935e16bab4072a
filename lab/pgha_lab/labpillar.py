"""The lab's pillar as the host-side tools read it: the cluster (pillar/pgha.sls), its
secrets (pillar/pgha_secrets/*.sls) and the formula's defaults under them.

The master compiles the same files for the minions, each getting only the secrets of
its role (pillar/top.sls); the host's tools (tests, benchmark, `pgha-lab info`) are the
operator and read them all. What pgha-lab writes into the second pillar root
(lab_roles.yaml, lab_topology.sls, lab_tls.sls) is generated here and in tls.py from
topology.py, the one place the lab's shape is written down.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .topology import HOST_ADDRESS, NODES, REPO_ROOT, SALT_API_PORT, SUBNET, VIP, WHEELHOUSE_URL, default_nodes

PILLAR_DIR = REPO_ROOT / "pillar"
SECRET_FILES = sorted((PILLAR_DIR / "pgha_secrets").glob("*.sls"))


def _load(path: Path) -> dict:
    return (yaml.safe_load(path.read_text()) or {}).get("pgha", {})


def merge(base: dict, over: dict) -> dict:
    """*over* laid on *base*, recursively, as map.jinja merges pillar over defaults."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def topology() -> dict:
    """The part of the lab pillar that topology.py decides: the network, the nodes
    that boot by default (spares join through orch.add_node), the VIP, the host as the
    application network, the wheelhouse the nodes install Patroni from, and the master's
    salt-api webhook that Alertmanager posts alerts to."""
    return {
        "cluster": {"network": str(SUBNET)},
        "nodes": {n.name: {"address": n.address, "roles": list(n.roles)} for n in default_nodes()},
        "keepalived": {"vip": VIP},
        "postgres": {"app_networks": [f"{HOST_ADDRESS}/32"]},
        "patroni": {"pip": {"find_links": WHEELHOUSE_URL, "no_index": True, "trusted_host": HOST_ADDRESS}},
        "monitoring": {"alertmanager": {"webhook": {
            "url": f"https://{HOST_ADDRESS}:{SALT_API_PORT}/hook/pgha/alert"}}},
    }


def write_topology(pillar_dir: Path) -> Path:
    path = pillar_dir / "lab_topology.sls"
    pillar_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by pgha-lab from lab/pgha_lab/topology.py: the lab's network, nodes,\n"
                    "# VIP and wheelhouse. pillar/pgha.sls holds the rest of the lab pillar.\n"
                    + yaml.safe_dump({"pgha": topology()}, sort_keys=True))
    return path


def raw() -> dict:
    """The lab pillar's pgha: key, secrets included, without the defaults."""
    data = merge(topology(), _load(PILLAR_DIR / "pgha.sls"))
    for path in SECRET_FILES:
        data = merge(data, _load(path))
    return data


def merged() -> dict:
    """The lab pillar over the formula's defaults (the values the formula would use)."""
    defaults = yaml.safe_load((REPO_ROOT / "salt/pgha/defaults.yaml").read_text())["pgha"]
    return merge(defaults, raw())


def roles() -> dict[str, list[str]]:
    """{role: [minion ids]} of every lab node, spares included: what pillar/top.sls
    scopes the secrets by (minion ids, which the master authenticates; never grains,
    which a minion sets itself)."""
    by_role: dict[str, list[str]] = {}
    for node in NODES.values():
        for role in node.roles:
            by_role.setdefault(role, []).append(node.name)
    return {role: sorted(names) for role, names in by_role.items()}


def write_roles(pillar_dir: Path) -> Path:
    path = pillar_dir / "lab_roles.yaml"
    pillar_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by pgha-lab from lab/pgha_lab/topology.py: the minion ids of each "
                    "role,\n# which pillar/top.sls gives that role's secrets to.\n"
                    + yaml.safe_dump(roles(), sort_keys=True))
    return path
