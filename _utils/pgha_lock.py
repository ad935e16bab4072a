"""
Leases in the master's cache: the maintenance lock, and the slots that keep self-healing
to one action of a kind at a time (one reinit cluster-wide, one etcd restart).

A lease has a name, an owner, a reason and an expiry, so one that is never released (an
orchestration that died half way) ends by itself. All of it lives in one JSON file,
``<master cachedir>/pgha/leases.json``, changed only under an exclusive ``flock``. The
functions here take the path and the clock as arguments: plain functions a unit test
can call.
"""

import contextlib
import fcntl
import json
import os

__virtualname__ = "pgha_lock"

MAINTENANCE = "maintenance"


def __virtual__():
    return __virtualname__


def path(cachedir):
    return os.path.join(cachedir, "pgha", "leases.json")


@contextlib.contextmanager
def _locked(file_path):
    os.makedirs(os.path.dirname(file_path), exist_ok=True)
    with open(file_path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        try:
            leases = json.loads(fh.read() or "{}")
        except ValueError:
            leases = {}
        if not isinstance(leases, dict):
            leases = {}
        before = json.dumps(leases, sort_keys=True)
        yield leases
        if json.dumps(leases, sort_keys=True) != before:
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(leases, indent=2, sort_keys=True))


def _live(leases, now):
    """Drop leases that have expired; return the live ones."""
    for name in [n for n, lease in leases.items()
                 if not isinstance(lease, dict) or float(lease.get("expires", 0)) <= now]:
        del leases[name]
    return leases


def acquire(file_path, name, owner, ttl, now, reason="", kind="orchestration"):
    """
    Take lease *name* for *owner* for *ttl* seconds. Returns ``(True, lease)`` when it is
    now held by *owner* (taken, or renewed because *owner* held it already), or
    ``(False, lease)`` with the lease that someone else holds.
    """
    with _locked(file_path) as leases:
        _live(leases, now)
        held = leases.get(name)
        if held and held.get("owner") != owner:
            return False, dict(held)
        lease = {"owner": owner, "reason": reason, "kind": kind,
                 "since": held.get("since", now) if held else now, "expires": now + float(ttl)}
        leases[name] = lease
        return True, dict(lease)


def release(file_path, name, owner=None, now=0):
    """
    Release lease *name* (only if *owner* holds it, unless *owner* is None). Returns
    the lease that was released, or None when there was none to release.
    """
    with _locked(file_path) as leases:
        _live(leases, now)
        held = leases.get(name)
        if not held or (owner is not None and held.get("owner") != owner):
            return None
        del leases[name]
        return held


def status(file_path, now):
    """Every live lease: ``{name: {owner, reason, kind, since, expires}}``."""
    if not os.path.exists(file_path):
        return {}
    with _locked(file_path) as leases:
        return {name: dict(lease) for name, lease in _live(leases, now).items()}
