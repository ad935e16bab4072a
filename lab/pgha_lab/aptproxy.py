"""The nodes' only way out: an apt-cacher-ng instance on the host's bridge address.

Why a proxy and not NAT or a pre-seeded cache: the formula's pkg states then run exactly
as they would on a real network (apt-get update, then install, with signatures checked),
the nodes keep no route out, nothing changes the host's kernel state (no ip_forward, no
iptables), and the cache on the host makes every install after the first one local.
ForceManaged limits it to the one Debian mirror the host itself uses.
"""

from __future__ import annotations

import shutil
from urllib.parse import urlparse

from .sh import pidfile_pid, run, say, stop_pidfile, wait_until
from .topology import APT_PROXY_PORT, CACHE_DIR, HOST_ADDRESS, RUN_DIR, STATE_DIR

USER = "apt-cacher-ng"
CONF_DIR = STATE_DIR / "aptproxy"
PID_DIR = RUN_DIR / "aptproxy"
PIDFILE = PID_DIR / "acng.pid"
CACHE = CACHE_DIR / "apt"


def pid() -> int | None:
    return pidfile_pid(PIDFILE)


def start(mirror: str) -> None:
    if pid():
        return
    url = urlparse(mirror)
    for path in (CONF_DIR / "log", PID_DIR, CACHE):
        path.mkdir(parents=True, exist_ok=True)
        shutil.chown(path, USER, USER)
    (CONF_DIR / "acng.conf").write_text(f"""\
# Written by pgha-lab. Only the host's own Debian mirror is served (ForceManaged).
CacheDir: {CACHE}
LogDir: {CONF_DIR / 'log'}
SupportDir: /usr/lib/apt-cacher-ng
PidFile: {PIDFILE}
BindAddress: {HOST_ADDRESS}
Port: {APT_PROXY_PORT}
ConnectProto: v4
ForeGround: 0
ForceManaged: 1
Remap-debrep: {url.netloc}{url.path} ; {mirror}
ExThreshold: 4
""")
    run(["runuser", "-u", USER, "--", "apt-cacher-ng", "-c", str(CONF_DIR)])
    wait_until(pid, 15, "apt-cacher-ng to start")
    say(f"apt proxy on {HOST_ADDRESS}:{APT_PROXY_PORT} (pid {pid()}), cache {CACHE}")


def stop() -> None:
    stop_pidfile(PIDFILE, "apt-cacher-ng")


def leftovers() -> list[str]:
    return [f"apt-cacher-ng pid {pid()}"] if pid() else []
