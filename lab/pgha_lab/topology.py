"""The lab's fixed shape: addresses, nodes and where its state lives on the host.

Everything here is a documentation address (RFC 5737 198.51.100.0/24) on a bridge that
only this host can reach: nothing the lab does can leave the machine.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

SUBNET = ipaddress.ip_network("198.51.100.0/24")
BRIDGE = "pgha0"
HOST_ADDRESS = "198.51.100.1"
VIP = "198.51.100.10"

SALT_PUBLISH_PORT = 4505
SALT_RET_PORT = 4506
APT_PROXY_PORT = 3142
WHEELHOUSE_PORT = 3143
# salt-api (rest_cherrypy, TLS) beside the master: Alertmanager's webhook posts there.
SALT_API_PORT = 8000

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("PGHA_LAB_STATE_DIR", "/var/lib/pgha-lab"))
CACHE_DIR = Path(os.environ.get("PGHA_LAB_CACHE_DIR", "/var/cache/pgha-lab"))
RUN_DIR = Path(os.environ.get("PGHA_LAB_RUN_DIR", "/run/pgha-lab"))
# The Saltfile at the repository root points the salt CLIs at this directory.
MASTER_CONFIG_DIR = REPO_ROOT / ".lab" / "salt"


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    roles: tuple[str, ...]
    # Spare nodes exist in the topology but only boot on demand (orch.add_node).
    spare: bool = False

    @property
    def netns(self) -> str:
        return f"pgha-{self.name}"

    @property
    def host_veth(self) -> str:
        # Interface names are limited to 15 characters: "ve-haproxy-01" is 13.
        return f"ve-{self.name}"

    @property
    def dir(self) -> Path:
        return STATE_DIR / "nodes" / self.name

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def pidfile(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"


NODES: dict[str, Node] = {
    n.name: n
    for n in (
        Node("pg-01", "198.51.100.120", ("postgres",)),
        Node("pg-02", "198.51.100.121", ("postgres",)),
        Node("pg-03", "198.51.100.122", ("postgres",)),
        Node("haproxy-01", "198.51.100.11", ("haproxy",)),
        Node("haproxy-02", "198.51.100.12", ("haproxy",)),
        # The repository host also runs Prometheus and Alertmanager (about 150 MiB more,
        # against the ~220 MiB of each database node's stack): a seventh node would cost a
        # boot and a minion for little.
        Node("backup-01", "198.51.100.30", ("backup", "monitor")),
        Node("pg-04", "198.51.100.123", ("postgres",), spare=True),
    )
}


def node(name: str) -> Node:
    try:
        return NODES[name]
    except KeyError:
        raise SystemExit(f"unknown node {name!r}; the lab has: {', '.join(NODES)}") from None


def default_nodes() -> list[Node]:
    return [n for n in NODES.values() if not n.spare]


def members(role: str) -> list[str]:
    """The names of the default (non-spare) nodes with *role*, sorted."""
    return sorted(n.name for n in default_nodes() if role in n.roles)


WHEELHOUSE_URL = f"http://{HOST_ADDRESS}:{WHEELHOUSE_PORT}/"
