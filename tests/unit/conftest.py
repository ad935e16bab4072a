"""The fast tier: no lab, no root. pgha's own modules, states, beacons and SLS files run
through Salt's loaders (a masterless minion with this checkout's formula), with the
pillar each test writes and fake HTTP where a service would answer.

`make unit` runs this directory in well under a minute.
"""

from __future__ import annotations

import pytest

from unit.helpers import Minion, lab_pillar, merge


@pytest.fixture(scope="module", autouse=True)
def proven_cluster():
    """No lab here: overrides the live suites' module fixture of the same name."""
    return None


@pytest.fixture(scope="session")
def minions(tmp_path_factory):
    """One loader-backed minion per (id, system), for the whole session."""
    built = {}

    def get(minion_id, system):
        if (minion_id, system) not in built:
            built[minion_id, system] = Minion(tmp_path_factory.mktemp(minion_id), minion_id, system)
        return built[minion_id, system]
    return get


@pytest.fixture
def minion(minions):
    """A factory: minion(pillar_changes, minion_id=..., system=..., tls=...), the lab
    pillar with the changes over it, on one of helpers.SYSTEMS (the lab's by default)."""
    def make(changes: dict | None = None, minion_id: str = "pg-01", system: str = "Debian-13",
             tls: bool = False) -> Minion:
        pillar = merge(lab_pillar(), changes or {})
        if not tls:
            # pgBackRest's TLS server needs TLS: without it, no backups either.
            pillar = merge(pillar, {"tls": {"enabled": False}, "backup": {"enabled": False}})
        return minions(minion_id, system).use({"pgha": pillar})
    return make
