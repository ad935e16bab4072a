"""The full highstate rendered, through Salt's loaders, with each supported system's
grains: the lab runs Debian 13 only, so Debian 12 and Ubuntu 24.04 (PostgreSQL 17 from
PGDG) are tested here, on what would be applied."""

from __future__ import annotations

import json

import pytest

from unit.helpers import SYSTEMS

PGDG = "deb [signed-by=/etc/apt/keyrings/pgdg.asc] https://apt.postgresql.org/pub/repos/apt {}-pgdg main"


_rendered: dict = {}


def highstate(minion, system, minion_id, changes=None):
    """The highstate's high data on *minion_id* running *system* (rendered once per
    combination: a render takes a second or two)."""
    key = (system, minion_id, json.dumps(changes, sort_keys=True))
    if key not in _rendered:
        high = minion(changes, minion_id=minion_id, system=system).modules.state.show_highstate()
        assert isinstance(high, dict), high
        _rendered[key] = high
    return _rendered[key]


def args(high, state_id, function):
    """The arguments of *state_id*'s *function* (e.g. "pkg.installed") as one dict."""
    module, fun = function.split(".")
    body = high[state_id][module]
    assert fun in body, (state_id, body)
    out = {}
    for item in body:
        if isinstance(item, dict):
            out.update(item)
    return out


def of_module(high, module):
    return {sid: body for sid, body in high.items() if isinstance(body, dict) and module in body}


def packages(high):
    names = []
    for sid, body in of_module(high, "pkg").items():
        if "installed" in body["pkg"]:
            names += [next(iter(p)) if isinstance(p, dict) else p for p in args(high, sid, "pkg.installed").get("pkgs", [])]
    return sorted(names)


@pytest.mark.parametrize("system, codename", [("Debian-12", "bookworm"), ("Ubuntu-24.04", "noble")])
def test_where_the_distribution_lacks_postgresql_17_pgdg_is_managed_first(minion, system, codename):
    high = highstate(minion, system, "pg-01")
    repo = args(high, "pgha-postgres-package-install-pgdg-repo-managed", "pkgrepo.managed")
    assert repo["name"] == PGDG.format(codename)
    assert repo["file"] == "/etc/apt/sources.list.d/pgdg.list"
    assert repo["signedby"] == "/etc/apt/keyrings/pgdg.asc" and repo["aptkey"] is False
    assert repo["key_url"] == "https://www.postgresql.org/media/keys/ACCC4CF8.asc"
    assert {"pkg": "pgha-postgres-package-install-pkg-installed"} in repo["require_in"]
    assert {"postgresql-17", "postgresql-client-17"} <= set(packages(high))


def test_debian_13_uses_its_own_postgresql_17(minion):
    high = highstate(minion, "Debian-13", "pg-01")
    assert of_module(high, "pkgrepo") == {}
    assert {"postgresql-17", "postgresql-client-17", "etcd-server", "etcd-client"} <= set(packages(high))


def test_a_site_mirror_of_pgdg_comes_from_pillar(minion):
    mirror = {"postgres": {"pgdg": {"url": "https://mirror.example/pgdg", "key_url": "https://mirror.example/key.asc"}}}
    high = highstate(minion, "Ubuntu-24.04", "pg-01", mirror)
    repo = args(high, "pgha-postgres-package-install-pgdg-repo-managed", "pkgrepo.managed")
    assert repo["name"].endswith("https://mirror.example/pgdg noble-pgdg main")
    assert repo["key_url"] == "https://mirror.example/key.asc"


def test_the_pillar_can_choose_pgdg_on_debian_13_too(minion):
    high = highstate(minion, "Debian-13", "pg-01", {"postgres": {"repository": "pgdg"}})
    assert args(high, "pgha-postgres-package-install-pgdg-repo-managed", "pkgrepo.managed")["name"] == \
        PGDG.format("trixie")


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_every_system_gets_patroni_41_from_pip_with_the_documented_unit(minion, system):
    high = highstate(minion, system, "pg-01")
    pip = args(high, "pgha-patroni-package-install-pip-installed", "pip.installed")
    assert "patroni[etcd3]==4.1.4" in pip["pkgs"] and pip["bin_env"] == "/opt/patroni/bin/pip"
    unit = args(high, "pgha-patroni-package-install-unit-managed", "file.managed")
    assert unit["name"] == "/etc/systemd/system/patroni.service"
    assert args(high, "pgha-patroni-package-install-patronictl-on-path", "file.symlink")["target"] == \
        "/opt/patroni/bin/patronictl"
    config = args(high, "pgha-patroni-config-file-file-managed", "file.managed")
    assert config["name"] == "/etc/patroni/config.yml" and config["mode"] == "0600"
    services = {args(high, sid, "service.running")["name"] for sid, body in of_module(high, "service").items()
                if "running" in body["service"]}
    assert {"etcd", "patroni"} <= services
    assert "haproxy" not in packages(high)


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_a_haproxy_node_gets_haproxy_and_keepalived_and_no_database(minion, system):
    high = highstate(minion, system, "haproxy-01")
    assert {"haproxy", "keepalived"} <= set(packages(high))
    assert not any(p.startswith("postgresql") or p.startswith("etcd") for p in packages(high))
    assert of_module(high, "pkgrepo") == {}
    haproxy_cfg = args(high, "pgha-haproxy-config-file-file-managed", "file.managed")
    assert haproxy_cfg["name"] == "/etc/haproxy/haproxy.cfg" and "haproxy -c" in haproxy_cfg["check_cmd"]


def test_the_deb_method_installs_the_distributions_patroni(minion):
    high = highstate(minion, "Debian-13", "pg-01", {"patroni": {"install_method": "deb"}})
    assert "patroni" in packages(high)
    assert "pgha-patroni-package-install-pip-installed" not in high
    assert "absent" in high["pgha-patroni-package-install-unit-managed"]["file"]
