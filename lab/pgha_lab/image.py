"""The node image: a Debian 13 root filesystem with systemd and a Salt minion, built once.

The image is cached under CACHE_DIR/images/<key>, where the key hashes every input of the
build. A second `up` with unchanged inputs reuses it and boots in seconds.

The image holds no pgha software: PostgreSQL, etcd, Patroni, HAProxy and keepalived are
installed by the formula's pkg states, through the apt proxy on the host.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from . import node
from .sh import LabError, run, say
from .topology import APT_PROXY_PORT, CACHE_DIR, HOST_ADDRESS, REPO_ROOT

SUITE = "trixie"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "iproute2", "python3", "python3-venv",
            "ca-certificates", "iputils-ping", "procps")
# Timers that would wake apt, dpkg or fstrim in five nodes at once on two cores.
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
                "fstrim.timer", "e2scrub_all.timer", "e2scrub_reap.service",
                "console-getty.service", "getty@tty1.service")
NODE_REQUIREMENTS = REPO_ROOT / "lab" / "requirements-node.txt"
SALT_VENV = "/opt/salt"

MINION_UNIT = f"""\
[Unit]
Description=Salt minion (pgha lab)
Wants=network-online.target
After=network-online.target

[Service]
ExecStart={SALT_VENV}/bin/salt-minion
KillMode=process
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

APT_CONF = f"""\
// pgha lab: nodes have no route out; apt goes through the proxy on the host bridge.
Acquire::http::Proxy "http://{HOST_ADDRESS}:{APT_PROXY_PORT}";
Acquire::Retries "3";
APT::Install-Recommends "false";
"""


def host_mirror() -> str:
    """The Debian mirror the host's own apt uses (the machine can reach no other)."""
    candidates: list[str] = []
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text()
        candidates += re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M)
        candidates += re.findall(r"^URIs:\s*(\S+)", text, re.M)
    for uri in candidates:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    raise LabError("no Debian mirror (a URI ending in /debian) in the host's apt sources")


def recipe(mirror: str) -> dict:
    """Every input that changes the image's content."""
    return {
        "suite": SUITE,
        "mirror": mirror,
        "packages": PACKAGES,
        "masked": MASKED_UNITS,
        "minion_unit": MINION_UNIT,
        "apt_conf": APT_CONF,
        "requirements": NODE_REQUIREMENTS.read_text(),
        "layout": 1,
    }


def image_key(mirror: str) -> str:
    blob = json.dumps(recipe(mirror), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def images_dir() -> Path:
    return CACHE_DIR / "images"


def ensure_image() -> Path:
    """Return the cached image's root filesystem, building it first if needed."""
    mirror = host_mirror()
    key = image_key(mirror)
    final = images_dir() / key
    rootfs = final / "rootfs"
    if (final / "recipe.json").exists():
        return rootfs
    build = images_dir() / f".build-{key}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    say(f"building node image {key} (debootstrap {SUITE} from {mirror}, about 2 minutes)")
    _build(build / "rootfs", mirror)
    (build / "recipe.json").write_text(json.dumps(recipe(mirror), indent=2, sort_keys=True))
    build.rename(final)
    # Images built from older recipes are dead weight.
    for other in images_dir().iterdir():
        if other.name != key:
            shutil.rmtree(other, ignore_errors=True)
    return rootfs


def _build(rootfs: Path, mirror: str) -> None:
    run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
         str(rootfs), mirror], timeout=1800)
    (rootfs / "etc/hostname").unlink(missing_ok=True)
    (rootfs / "etc/machine-id").write_text("")
    systemd_dir = rootfs / "etc/systemd/system"
    for unit in MASKED_UNITS:
        link = systemd_dir / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (rootfs / "etc/apt/apt.conf.d/90pgha-lab").write_text(APT_CONF)
    (systemd_dir / "salt-minion.service").write_text(MINION_UNIT)
    wants = systemd_dir / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "salt-minion.service").symlink_to("/etc/systemd/system/salt-minion.service")
    (rootfs / "etc/salt/minion.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/salt/pki/minion").mkdir(parents=True, exist_ok=True)
    # pip runs inside the image but on the host's network, which sees HTTPS through a
    # proxy with its own CA: hand pip the host's bundle for the build only.
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "root/host-ca.crt")
    shutil.copy(NODE_REQUIREMENTS, rootfs / "root/requirements-node.txt")
    machine = "pgha-image-build"
    try:
        run(["/bin/sh", "-c", f'{node.cgroup_entry(machine)}; exec "$@"', "sh",
             "systemd-nspawn", "--quiet", f"--directory={rootfs}", f"--machine={machine}",
             "--register=no", "--keep-unit", "--pipe",
             "--setenv=PIP_CERT=/root/host-ca.crt", "--setenv=PIP_DISABLE_PIP_VERSION_CHECK=1",
             "/bin/sh", "-ec",
             f"python3 -m venv {SALT_VENV}; "
             f"{SALT_VENV}/bin/pip install --quiet --no-deps -r /root/requirements-node.txt; "
             f"{SALT_VENV}/bin/salt-call --version; apt-get clean"],
            timeout=1800)
    finally:
        node.remove_cgroups(machine)
    (rootfs / "root/host-ca.crt").unlink()
    (rootfs / "root/requirements-node.txt").unlink()
