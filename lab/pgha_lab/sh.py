"""Small helpers to run host commands with readable failures."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence


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
