"""The lab network: one host bridge, one network namespace and veth pair per node.

Nodes get no default route. The only way out of the lab is the apt proxy on the host's
bridge address, which only speaks to Debian's mirror.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path

from .sh import LabError, run
from .topology import BRIDGE, HOST_ADDRESS, NODES, SUBNET, Node

# Hosts the host itself must keep reaching; a lab subnet that covers them would cut it off.
REGISTRY_HOSTS = ("deb.debian.org", "pypi.org", "files.pythonhosted.org", "registry.npmjs.org")


def _ip_json(*args: str) -> list[dict]:
    out = run(["ip", "-j", *args]).stdout.strip()
    return json.loads(out) if out else []


def address_conflicts() -> list[str]:
    """Everything on the host that the lab subnet would shadow, as readable sentences."""
    problems = []
    for route in _ip_json("-4", "route", "show", "default"):
        gateway = route.get("gateway")
        if gateway and ipaddress.ip_address(gateway) in SUBNET:
            problems.append(f"the host's default gateway {gateway} is inside {SUBNET}")
    resolv = Path("/etc/resolv.conf")
    if resolv.exists():
        for line in resolv.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                try:
                    if ipaddress.ip_address(parts[1]) in SUBNET:
                        problems.append(f"the host's DNS server {parts[1]} is inside {SUBNET}")
                except ValueError:
                    pass
    for host in REGISTRY_HOSTS:
        try:
            infos = socket.getaddrinfo(host, 443, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror:
            continue
        for info in infos:
            if ipaddress.ip_address(info[4][0]) in SUBNET:
                problems.append(f"registry {host} resolves to {info[4][0]}, inside {SUBNET}")
    for link in _ip_json("-4", "addr", "show"):
        if link.get("ifname") == BRIDGE:
            continue
        for addr in link.get("addr_info", []):
            if ipaddress.ip_address(addr["local"]) in SUBNET:
                problems.append(f"interface {link['ifname']} already holds {addr['local']}")
    return problems


def ensure_safe() -> None:
    problems = address_conflicts()
    if problems:
        raise LabError("refusing to start the lab network: " + "; ".join(problems))


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def bridge_up() -> None:
    if not link_exists(BRIDGE):
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "replace", f"{HOST_ADDRESS}/{SUBNET.prefixlen}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def node_net_up(node: Node) -> None:
    """Create the node's namespace and veth pair, with only its own address on eth0."""
    if not netns_exists(node.netns):
        run(["ip", "netns", "add", node.netns])
    if not link_exists(node.host_veth):
        run(["ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0",
             "netns", node.netns])
    ns = ["ip", "-n", node.netns]
    # Addresses a dead node held (a VIP, say) must not come back with it.
    run([*ns, "addr", "flush", "dev", "eth0"])
    run([*ns, "addr", "add", f"{node.address}/{SUBNET.prefixlen}", "dev", "eth0"])
    run([*ns, "link", "set", "lo", "up"])
    run([*ns, "link", "set", "eth0", "up"])
    run(["ip", "link", "set", node.host_veth, "master", BRIDGE, "up"])


def set_link(node: Node, up: bool) -> None:
    """Plug or unplug the node's cable: the host side of its veth pair."""
    run(["ip", "link", "set", node.host_veth, "up" if up else "down"])


def link_is_up(node: Node) -> bool:
    info = _ip_json("link", "show", "dev", node.host_veth) if link_exists(node.host_veth) else []
    return bool(info) and "UP" in info[0].get("flags", [])


def node_net_down(node: Node) -> None:
    if link_exists(node.host_veth):
        run(["ip", "link", "del", node.host_veth])
    if netns_exists(node.netns):
        run(["ip", "netns", "del", node.netns])


def teardown() -> None:
    """Remove every lab namespace and link, including ones from an earlier, crashed run."""
    for node in NODES.values():
        node_net_down(node)
    for path in Path("/run/netns").glob("pgha-*") if Path("/run/netns").exists() else ():
        run(["ip", "netns", "del", path.name], check=False)
    for link in _ip_json("link", "show"):
        if link.get("ifname", "").startswith("ve-") and link.get("master") == BRIDGE:
            run(["ip", "link", "del", link["ifname"]], check=False)
    if link_exists(BRIDGE):
        run(["ip", "link", "del", BRIDGE])


def leftovers() -> list[str]:
    """Lab namespaces and links still present, for `down` to prove it left nothing."""
    found = []
    if Path("/run/netns").exists():
        found += [f"netns {p.name}" for p in Path("/run/netns").glob("pgha-*")]
    for link in _ip_json("link", "show"):
        name = link.get("ifname", "")
        if name == BRIDGE or (name.startswith("ve-") and name[3:] in NODES):
            found.append(f"link {name}")
    return found
