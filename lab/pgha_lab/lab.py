"""Whole-lab operations: bring everything up from any leftover state, or take it all down."""

from __future__ import annotations

import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor

from . import aptproxy, image, labpillar, master, net, node, tls, wheelhouse
from .sh import LabError, run, say, wait_until
from .topology import HOST_ADDRESS, NODES, RUN_DIR, Node, default_nodes


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts, cgroups)")


def _kill_lab_listeners() -> None:
    """End processes still bound to the lab's host address, e.g. a master from a crashed test run."""
    out = run(["ss", "-Hltnp"], check=False).stdout
    pids = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3].startswith(f"{HOST_ADDRESS}:"):
            pids.update(int(p) for p in re.findall(r"pid=(\d+)", line))
    for pid in pids:
        say(f"ending stale process {pid} bound to {HOST_ADDRESS}")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _remove_cgroup_parents() -> None:
    """Kill anything left in the lab's cgroups and remove them (they must be empty to go)."""
    for root in node.CGROUP_ROOTS:
        parent = root / node.CGROUP_PARENT
        if not parent.is_dir():
            continue
        if (parent / "cgroup.kill").exists():
            (parent / "cgroup.kill").write_text("1")
            wait_until(lambda parent=parent: "populated 0" in (parent / "cgroup.events").read_text(),
                       30, f"processes in {parent} to die")
        node._rmdir_tree(parent)  # noqa: SLF001 - same package


def clean() -> None:
    """Remove whatever an earlier run left: processes, mounts, cgroups, namespaces, links,
    the master's caches (job cache, remediation budgets, leases such as a maintenance
    lock) and the tests' pillar overrides."""
    master.stop_master()
    aptproxy.stop()
    wheelhouse.stop()
    for n in NODES.values():
        node.destroy(n)
    for mount in reversed(node.stale_mounts()):
        run(["umount", "-l", mount], check=False)
    _kill_lab_listeners()
    master.purge_master_state()
    master.PILLAR_OVERRIDE_FILE.unlink(missing_ok=True)
    try:
        _remove_cgroup_parents()
    except OSError as exc:
        say(f"warning: could not remove a stale cgroup: {exc}")
    net.teardown()
    for pidfile in RUN_DIR.glob("*.pid") if RUN_DIR.exists() else ():
        pidfile.unlink()


def up(*, with_master: bool = True, nodes: list[Node] | None = None) -> None:
    """Fresh nodes from the cached image, the apt proxy, and (optionally) the master daemon."""
    require_root()
    nodes = nodes or default_nodes()
    clean()
    net.ensure_safe()
    rootfs = image.ensure_image()
    net.bridge_up()
    aptproxy.start(image.host_mirror())
    wheelhouse.start()
    pki = master.ensure_keys([n.name for n in nodes])
    master.write_master_config()
    tls.ensure(master.PILLAR_OVERRIDE_DIR)
    labpillar.write_roles(master.PILLAR_OVERRIDE_DIR)
    labpillar.write_topology(master.PILLAR_OVERRIDE_DIR)
    for n in nodes:
        node.create(n, rootfs, pki)
    say(f"booting {', '.join(n.name for n in nodes)}")
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(node.boot, nodes))
    if with_master:
        master.start_master()
        master.wait_for_minions([n.name for n in nodes])
        say("all minions answer test.ping")


def start_master() -> None:
    """The master daemon for nodes that already run (their cluster is left as it is)."""
    require_root()
    running = [n.name for n in NODES.values() if node.is_running(n)]
    if not running:
        raise LabError("no lab node is running; `pgha-lab up` boots a fresh lab")
    master.start_master()
    master.wait_for_minions(running)
    say(f"minions answer test.ping: {', '.join(running)}")


def add(name: str) -> None:
    """Create and boot one more node (a spare, such as pg-04) in a running lab."""
    require_root()
    n = NODES[name]
    if n.dir.exists():
        raise LabError(f"{name} already exists")
    master.accept_key(name)
    node.create(n, image.ensure_image(), master.PKI_DIR)
    node.boot(n)


def remove(name: str) -> None:
    node.destroy(NODES[name])
    net.node_net_down(NODES[name])
    master.delete_key(name)


def down() -> None:
    require_root()
    clean()
    left = leftovers()
    if left:
        raise LabError("down left these behind: " + "; ".join(left))


def leftovers() -> list[str]:
    found = [f"mount {m}" for m in node.stale_mounts()]
    found += net.leftovers()
    found += aptproxy.leftovers()
    found += wheelhouse.leftovers()
    if master.master_pid():
        found.append(f"salt-master pid {master.master_pid()}")
    found += [f"{n.name} container pid {node.nspawn_pid(n)}" for n in NODES.values() if node.is_running(n)]
    for root in node.CGROUP_ROOTS:
        if (root / node.CGROUP_PARENT).exists():
            found.append(f"cgroup {root / node.CGROUP_PARENT}")
    return found
