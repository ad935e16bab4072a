"""The nodes' PyPI: a wheelhouse on the host, for Patroni installed with pip.

Nodes have no route out. The host downloads, once, every wheel of the formula's pinned
Patroni requirements (pgha:patroni:pip:requirements, the one list of them) for the
nodes' Python (Debian 13: CPython 3.13) into CACHE_DIR/wheels/<key>, building a wheel
on the host for the few that PyPI has as source only (pure Python). It then serves the
directory over plain HTTP on the bridge (HOST_ADDRESS:WHEELHOUSE_PORT); the nodes' pip
installs with --no-index --find-links from there, the same way apt goes through the
host's proxy. The key hashes the requirements, so a changed pin downloads again.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from . import labpillar
from .sh import LabError, pidfile_pid, run, say, stop_pidfile, wait_until
from .topology import CACHE_DIR, HOST_ADDRESS, RUN_DIR, WHEELHOUSE_PORT

PIDFILE = RUN_DIR / "wheelhouse.pid"
# The nodes' interpreter (Debian 13's python3) and machine.
NODE_PYTHON = ("3.13", "cp313")
NODE_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                  "manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64",
                  "manylinux1_x86_64", "any")


def requirements() -> list[str]:
    return list(labpillar.merged()["patroni"]["pip"]["requirements"])


def url() -> str:
    return f"http://{HOST_ADDRESS}:{WHEELHOUSE_PORT}/"


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]


def ensure() -> Path:
    """The wheelhouse directory for the current requirements, filled if it is new."""
    reqs = requirements()
    key = hashlib.sha256("\n".join(sorted(reqs)).encode()).hexdigest()[:16]
    final = CACHE_DIR / "wheels" / key
    if (final / ".complete").exists():
        return final
    build = final.with_name(f".build-{key}")
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    say(f"filling the nodes' wheelhouse {key} ({len(reqs)} pinned requirements)")
    platforms = [arg for p in NODE_PLATFORMS for arg in ("--platform", p)]
    for req in reqs:
        # A wheel for the nodes' Python when PyPI has one; else PyPI has only the source,
        # and such a package here is pure Python: the host builds the wheel.
        got = run(_pip("download", "--no-deps", "--only-binary=:all:", "--dest", str(build),
                       "--python-version", NODE_PYTHON[0], "--implementation", "cp",
                       "--abi", NODE_PYTHON[1], "--abi", "abi3", "--abi", "none",
                       *platforms, req), check=False, timeout=600)
        if got.returncode != 0:
            run(_pip("wheel", "--no-deps", "--wheel-dir", str(build), req), timeout=600)
    (build / ".complete").write_text("\n".join(reqs) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    build.rename(final)
    for other in final.parent.iterdir():
        if other.name != key:
            shutil.rmtree(other, ignore_errors=True)
    return final


def pid() -> int | None:
    return pidfile_pid(PIDFILE)


def start() -> None:
    if pid():
        return
    directory = ensure()
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(WHEELHOUSE_PORT),
                             "--bind", HOST_ADDRESS, "--directory", str(directory)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    PIDFILE.write_text(f"{proc.pid}\n")
    import urllib.request

    def serving():
        try:
            with urllib.request.urlopen(url(), timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False
    try:
        wait_until(serving, 15, "the wheelhouse to serve")
    except LabError:
        stop()
        raise
    say(f"wheelhouse on {url()} (pid {proc.pid}), {directory}")


def stop() -> None:
    stop_pidfile(PIDFILE, "the wheelhouse")


def leftovers() -> list[str]:
    return [f"wheelhouse pid {pid()}"] if pid() else []
