"""The lab itself: real nodes booted with systemd, one address each, minions on the master."""

from __future__ import annotations

import errno
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import LAB_MINIONS, lab_cli, ping, wait_for

from pgha_lab.topology import BRIDGE, HOST_ADDRESS, SUBNET

# The lab itself, before any rollout.
NEEDS_CLUSTER = False


def tcp_probe(address: str, port: int = 9, timeout: float = 2.0) -> str:
    """'reachable' when the node answers at all (a refused port counts), else 'unreachable'."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except ConnectionRefusedError:
            return "reachable"
        except (TimeoutError, socket.timeout):
            return "unreachable"
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return "unreachable"
            raise
        return "reachable"


@pytest.mark.parametrize("name", LAB_MINIONS)
def test_node_boots_to_running_with_its_identity(lab, nodes, name):
    node = nodes[name]
    assert lab.system_state(node) == "running"
    assert lab.exec_(node, ["hostname"]).stdout.strip() == name
    addresses = lab.exec_(node, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    assert f"{node.address}/{SUBNET.prefixlen}" in addresses
    # No route out of the lab: only the bridge's subnet is reachable.
    assert "default" not in lab.exec_(node, ["ip", "route"]).stdout


def test_nodes_have_distinct_machine_ids_and_cgroups(lab, nodes):
    ids = {lab.exec_(nodes[n], ["cat", "/etc/machine-id"]).stdout.strip() for n in LAB_MINIONS}
    assert len(ids) == len(LAB_MINIONS)
    pids = {lab.nspawn_pid(nodes[n]) for n in LAB_MINIONS}
    assert None not in pids and len(pids) == len(LAB_MINIONS)
    for name in LAB_MINIONS:
        # Both nspawn and the node's systemd live in the node's own cgroup2 subtree.
        for pid in (lab.nspawn_pid(nodes[name]), lab.pid1(nodes[name])):
            cgroup = Path(f"/proc/{pid}/cgroup").read_text()
            assert f"0::/pgha-lab/{name}/" in cgroup


def test_master_sees_every_minion_with_its_roles(salt_cli, minions, nodes):
    assert ping(salt_cli, minions) == {name: True for name in minions}
    ret = salt_cli.run("grains.get", "roles", minion_tgt="*")
    assert ret.returncode == 0, ret.stderr
    assert ret.data == {name: list(nodes[name].roles) for name in minions}


def test_minion_keys_were_preseeded_not_auto_accepted(master):
    assert master.config["auto_accept"] is False
    assert master.config["open_mode"] is False
    ret = master.salt_key_cli().run("--list-all")
    assert ret.returncode == 0
    assert set(LAB_MINIONS) <= set(ret.data["minions"])
    assert ret.data["minions_pre"] == []


def test_kill_stops_the_minion_and_start_brings_it_back(lab, nodes, salt_cli, minions):
    victim = nodes["haproxy-02"]
    lab.kill(victim)
    try:
        assert lab.system_state(victim) == "off"
        assert ping(salt_cli, [victim.name]) == {victim.name: False}
    finally:
        lab.start(victim)
    assert lab.system_state(victim) == "running"
    wait_for(lambda: ping(salt_cli, [victim.name]) == {victim.name: True}, 90,
             f"{victim.name}'s minion to answer again")


def test_exec_returns_the_commands_exit_code_and_output(lab):
    proc = lab_cli("exec", "pg-02", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "out\n", "err\n")


def test_isolate_cuts_a_running_node_off_and_heal_restores_it(lab, nodes):
    victim, peer = nodes["pg-03"], nodes["pg-01"]
    assert lab_cli("isolate", victim.name).returncode == 0
    try:
        assert lab.system_state(victim) == "running"
        assert lab.exec_(peer, ["ping", "-c", "2", "-W", "1", victim.address]).returncode != 0
        assert lab.exec_(victim, ["ping", "-c", "2", "-W", "1", HOST_ADDRESS]).returncode != 0
        assert tcp_probe(victim.address) == "unreachable"
    finally:
        assert lab_cli("heal", victim.name).returncode == 0
    wait_for(lambda: lab.exec_(peer, ["ping", "-c", "1", "-W", "1", victim.address]).returncode == 0,
             20, "pg-03 to answer pings after heal")
    assert tcp_probe(victim.address) == "reachable"


def test_bridge_holds_the_host_address(lab):
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE], capture_output=True,
                         text=True, check=True).stdout
    assert f"{HOST_ADDRESS}/{SUBNET.prefixlen}" in out
