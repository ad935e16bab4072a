"""Lab nodes: Debian 13 booted with systemd as PID 1 under systemd-nspawn.

Each node is an overlay of the cached image, lives in its own network namespace and in its
own cgroup (under both the cgroup2 tree and the name=systemd tree). Its own cgroup is what
makes a power cut atomic: writing 1 to cgroup.kill ends nspawn and every task of the node
in one step.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

from . import net
from .sh import LabError, run, say, wait_until
from .topology import HOST_ADDRESS, NODES, RUN_DIR, SALT_PUBLISH_PORT, SALT_RET_PORT, STATE_DIR, Node

CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
CGROUP_PARENT = "pgha-lab"
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")
LOCKS_DIR = Path("/run/systemd/nspawn/locks")


# ---- processes -------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    """True for a live process; a zombie nobody reaped counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def nspawn_pid(node: Node) -> int | None:
    try:
        pid = int(node.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if b"systemd-nspawn" not in cmdline or not _alive(pid):
        return None
    return pid


def pid1(node: Node) -> int | None:
    """The host PID of the node's systemd (PID 1 inside its PID namespace)."""
    parent = nspawn_pid(node)
    if parent is None:
        return None
    try:
        children = [c for task in Path(f"/proc/{parent}/task").iterdir()
                    for c in (task / "children").read_text().split()]
    except OSError:
        return None
    for child in children:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:  # nspawn's short-lived helpers come and go during boot
            continue
        for line in status.splitlines():
            fields = line.split()
            if fields[:1] == ["NSpid:"] and len(fields) > 2 and fields[-1] == "1":
                return int(child)
    return None


def is_running(node: Node) -> bool:
    return nspawn_pid(node) is not None


# ---- cgroups ---------------------------------------------------------------------------

def cgroup_dirs(name: str) -> list[Path]:
    return [root / CGROUP_PARENT / name for root in CGROUP_ROOTS]


def cgroup_entry(name: str) -> str:
    """Shell code that moves the running shell ($$) into its own cgroups under pgha-lab.

    With --keep-unit --register=no, nspawn stays in its launcher's cgroup: without this,
    two nodes launched from one shell would share a tree (and one journald).
    """
    steps = []
    for path in cgroup_dirs(name):
        steps.append(f"mkdir -p {shlex.quote(str(path))}")
        steps.append(f"echo $$ > {shlex.quote(str(path / 'cgroup.procs'))}")
    return "; ".join(steps)


def _rmdir_tree(path: Path) -> None:
    """Remove a cgroup directory and its children, deepest first (cgroupfs has no rm -r)."""
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                      reverse=True):
        sub.rmdir()
    path.rmdir()


def remove_cgroups(name: str) -> None:
    # Reused cgroup directories made services in the next boot die with SIGKILL.
    for path in cgroup_dirs(name):
        _rmdir_tree(path)
    shutil.rmtree(PROPAGATE_DIR / name, ignore_errors=True)


def _cgroup_populated(node: Node) -> bool:
    events = cgroup_dirs(node.name)[0] / "cgroup.events"
    try:
        return "populated 1" in events.read_text()
    except OSError:
        return False


def _cgroup_kill(node: Node) -> None:
    kill_file = cgroup_dirs(node.name)[0] / "cgroup.kill"
    if kill_file.exists():
        kill_file.write_text("1")
    wait_until(lambda: not _cgroup_populated(node), 30, f"{node.name}'s processes to die")


# ---- the node's files ------------------------------------------------------------------

def is_mounted(path: Path) -> bool:
    return os.path.ismount(path)


def create(node: Node, image: Path, pki: Path) -> None:
    """Mount a fresh overlay for *node* on top of *image* and give it its identity."""
    if node.dir.exists():
        raise LabError(f"{node.dir} exists; run `pgha-lab down` first")
    for sub in ("upper", "work", "root"):
        (node.dir / sub).mkdir(parents=True)
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={image},upperdir={node.dir / 'upper'},workdir={node.dir / 'work'}",
         str(node.root)])
    root = node.root
    (root / "etc/hostname").write_text(node.name + "\n")
    (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"{HOST_ADDRESS}\tsalt lab-host"]
    hosts += [f"{n.address}\t{n.name}" for n in NODES.values()]
    (root / "etc/hosts").write_text("\n".join(hosts) + "\n")
    roles = ", ".join(node.roles)
    (root / "etc/salt/minion.d/pgha-lab.conf").write_text(f"""\
# Written by pgha-lab: this node's identity and its master on the host bridge.
id: {node.name}
master: {HOST_ADDRESS}
publish_port: {SALT_PUBLISH_PORT}
master_port: {SALT_RET_PORT}
grains:
  roles: [{roles}]
# Reconnect quickly after the master or this node restarts.
acceptance_wait_time: 2
acceptance_wait_time_max: 5
random_reauth_delay: 0
recon_default: 200
recon_max: 2000
recon_randomize: false
# Salt re-adds its __master_alive schedule each time the master comes back, with
# master_alive_interval as its period; at the default 0 that job runs back to back (a
# Python process per minion, without pause: measured at 56 forks/s and a load of 12 on
# the lab's 2 cores, switchover gaps 4-7 s instead of 1.8 s). A period keeps it idle.
master_alive_interval: 60
log_level_logfile: info
""")
    keydir = root / "etc/salt/pki/minion"
    shutil.copy(pki / "minions-keys" / node.name / "minion.pem", keydir / "minion.pem")
    shutil.copy(pki / "minions-keys" / node.name / "minion.pub", keydir / "minion.pub")
    # Pre-seeding the master's key means the minion never has to trust on first use.
    shutil.copy(pki / "master" / "master.pub", keydir / "minion_master.pub")
    os.chmod(keydir / "minion.pem", 0o400)


def _image_lock(node: Node) -> Path | None:
    """nspawn's lock file for the node's root directory (/run on this host is no tmpfs)."""
    try:
        st = os.stat(node.root)
    except OSError:
        return None
    return LOCKS_DIR / f"inode-{st.st_dev}:{st.st_ino}"


def destroy(node: Node) -> None:
    if is_running(node) or _cgroup_populated(node):
        kill(node)
    remove_cgroups(node.name)
    lock = _image_lock(node)
    if lock:
        lock.unlink(missing_ok=True)
    if is_mounted(node.root):
        run(["umount", str(node.root)])
    shutil.rmtree(node.dir, ignore_errors=True)


# ---- lifecycle -------------------------------------------------------------------------

def boot(node: Node, timeout: float = 180) -> None:
    """Boot the node's overlay with systemd and wait until it reports `running`."""
    if is_running(node):
        return
    if not is_mounted(node.root):
        raise LabError(f"{node.name} has no root filesystem; run `pgha-lab up` first")
    remove_cgroups(node.name)
    net.node_net_up(node)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    node.pidfile.unlink(missing_ok=True)
    argv = ["systemd-nspawn", "--quiet", "--boot", f"--directory={node.root}",
            f"--machine={node.name}", f"--network-namespace-path=/run/netns/{node.netns}",
            # keepalived must add the VIP; nspawn does not grant this with a joined netns.
            "--capability=CAP_NET_ADMIN",
            "--keep-unit", "--register=no", "--console=passive", "--link-journal=no",
            "--resolv-conf=off", "--timezone=off"]
    # The launcher enters the node's own cgroups before it becomes nspawn, and is
    # detached (setsid -f) so the node outlives this process.
    script = (f"echo $$ > {shlex.quote(str(node.pidfile))}; {cgroup_entry(node.name)}; "
              f"exec {shlex.join(argv)} </dev/null >>{shlex.quote(str(node.dir / 'console.log'))} 2>&1")
    env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
    subprocess.run(["setsid", "-f", "/bin/sh", "-c", script], env=env, check=True)
    wait_until(lambda: pid1(node), 30, f"{node.name}'s systemd to start")
    wait_running(node, timeout)


def wait_running(node: Node, timeout: float = 180) -> None:
    # Early in boot systemctl cannot reach the manager yet and prints nothing: keep asking
    # until systemd reports a settled state.
    settled = ("running", "degraded", "maintenance", "stopping")
    state = wait_until(lambda: (s := system_state(node)) in settled and s, timeout,
                       f"{node.name} to finish booting", interval=0.5)
    if state != "running":
        failed = exec_(node, ["systemctl", "--failed", "--no-legend", "--plain"]).stdout.strip()
        raise LabError(f"{node.name} booted to {state!r}, not 'running'; failed units: {failed}")


def kill(node: Node) -> None:
    """A power cut: every task of the node dies at once, and its cable is pulled."""
    _cgroup_kill(node)
    if net.link_exists(node.host_veth):
        net.set_link(node, up=False)
    node.pidfile.unlink(missing_ok=True)
    remove_cgroups(node.name)


def stop(node: Node, timeout: float = 90) -> None:
    """A clean shutdown: systemd inside stops every unit in order."""
    pid = nspawn_pid(node)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not _alive(pid), timeout, f"{node.name} to shut down")
    except LabError:
        say(f"{node.name} did not shut down within {timeout}s; cutting power")
    kill(node)


def start(node: Node) -> None:
    boot(node)


# ---- inside the node -------------------------------------------------------------------

def nsenter_argv(node: Node) -> list[str]:
    target = pid1(node)
    if target is None:
        raise LabError(f"{node.name} is not running")
    return ["nsenter", f"--target={target}", "--mount", "--uts", "--ipc", "--net", "--pid",
            "--cgroup", "--root", "--wd", "--", "/usr/bin/env", "-i", f"PATH={NODE_PATH}",
            "LANG=C.UTF-8", "HOME=/root"]


def exec_(node: Node, argv: list[str], *, timeout: float | None = 120,
          input: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run *argv* inside the node (all its namespaces) and return the finished process."""
    return run([*nsenter_argv(node), *argv], check=check, timeout=timeout, input=input)


def system_state(node: Node) -> str:
    if not is_running(node):
        return "off"
    try:
        return exec_(node, ["systemctl", "is-system-running"], timeout=10).stdout.strip() or "?"
    except LabError:
        return "unknown"


def status(node: Node) -> dict:
    return {
        "name": node.name,
        "address": node.address,
        "roles": list(node.roles),
        "created": is_mounted(node.root),
        "nspawn_pid": nspawn_pid(node),
        "system": system_state(node),
        "link": ("up" if net.link_is_up(node) else "down") if net.link_exists(node.host_veth) else "absent",
    }


def existing() -> list[Node]:
    """Nodes with a root filesystem or a running container, stale ones included."""
    return [n for n in NODES.values() if n.dir.exists() or is_running(n) or _cgroup_populated(n)]


def stale_mounts() -> list[str]:
    base = str(STATE_DIR / "nodes")
    with open("/proc/mounts") as fh:
        return [line.split()[1] for line in fh if line.split()[1].startswith(base)]
