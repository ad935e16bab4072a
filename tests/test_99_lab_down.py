"""Last of all: `pgha-lab down` leaves no mount, namespace, link or process of the lab."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import lab_cli

from pgha_lab import lab as lab_api
from pgha_lab.topology import BRIDGE, NODES, STATE_DIR

NEEDS_CLUSTER = False


def test_down_leaves_nothing_behind():
    proc = lab_cli("down")
    assert proc.returncode == 0, proc.stderr
    assert lab_api.leftovers() == []
    mounts = Path("/proc/mounts").read_text()
    assert str(STATE_DIR) not in mounts
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "pgha-" not in netns
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert BRIDGE not in links
    assert not any(f"ve-{name}" in links for name in NODES)
    # Only live processes count: PID 1 on this host never reaps orphans, so a dead
    # nspawn can linger as <defunct> with no resources left.
    ps = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True).stdout
    live = [line for line in ps.splitlines() if not line.lstrip().startswith("Z")]
    assert not [line for line in live if "systemd-nspawn" in line or "apt-cacher-ng -c" in line]
    assert not [line for line in live if ".lab/salt" in line]
