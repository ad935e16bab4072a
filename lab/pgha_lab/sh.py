"""Small helpers to run host commands with readable failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class LabError(RuntimeError):
    """A lab operation failed; the message says which step and why."""


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run *argv* and capture its output; raise LabError with stderr when *check* fails."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabError(f"{' '.join(argv)} exited {proc.returncode}: {detail}")
    return proc


def say(msg: str) -> None:
    print(f"pgha-lab: {msg}", file=sys.stderr, flush=True)


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               interval: float = 0.2) -> object:
    """Poll *predicate* until it returns something truthy, or raise LabError naming *what*."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def pidfile_pid(pidfile: Path) -> int | None:
    """The live process *pidfile* names, or None."""
    try:
        value = int(pidfile.read_text().strip())
        stat = Path(f"/proc/{value}/stat").read_text()
    except (OSError, ValueError):
        return None
    # This host's PID 1 reaps no orphans: a dead daemon lingers as a zombie.
    return value if stat.rsplit(")", 1)[1].split()[0] != "Z" else None


def stop_pidfile(pidfile: Path, what: str, timeout: float = 15) -> None:
    """SIGTERM the process *pidfile* names, wait for it to end, remove the file. A daemon
    still there after *timeout* (a wedged thread ignores SIGTERM) is killed with its
    process group, so that a later `up` starts clean instead of finding it half alive."""
    value = pidfile_pid(pidfile)
    if value:
        os.kill(value, signal.SIGTERM)
        try:
            wait_until(lambda: pidfile_pid(pidfile) is None, timeout, f"{what} to stop")
        except LabError:
            say(f"{what} (pid {value}) ignored SIGTERM for {timeout:.0f}s: killing it")
            try:
                group = os.getpgid(value)
                if group != os.getpgrp():
                    os.killpg(group, signal.SIGKILL)
                else:
                    os.kill(value, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended just now
            wait_until(lambda: pidfile_pid(pidfile) is None, 10, f"{what} to die")
    pidfile.unlink(missing_ok=True)
