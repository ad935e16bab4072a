"""Every validation rule of pgha.validate, through Salt's loaders: a bad pillar gives one
message that names the key; the lab's pillar gives none."""

from __future__ import annotations

import pytest

PG04 = {"address": "198.51.100.123", "roles": ["postgres"]}
HETZNER = {"frontend": "hetzner", "hetzner": {"load_balancer": {"network": "net", "ip": "10.0.0.5"}}}

# rule: (pillar changes over the lab's, the message's start, minion id)
BAD = {
    "too-few-etcd-members": ({"nodes": {"pg-03": {"state": "absent"}}}, "etcd needs at least 3"),
    "even-etcd-members": ({"nodes": {"pg-04": PG04}}, "bootstrap an even number of etcd members"),
    "duplicate-address": ({"nodes": {"haproxy-02": {"address": "198.51.100.11"}}},
                          "pgha:nodes:haproxy-02:address: 198.51.100.11 is also haproxy-01's address"),
    "duplicate-name": ({"nodes": {"PG-01": {"address": "198.51.100.130", "roles": ["haproxy"]}}},
                       "duplicate node name"),
    "address-not-ip": ({"nodes": {"pg-02": {"address": "pg-two"}}},
                       "pgha:nodes:pg-02:address: 'pg-two' is not an IP address"),
    "outside-network": ({"nodes": {"pg-02": {"address": "10.1.1.1"}}},
                        "pgha:nodes:pg-02:address: 10.1.1.1 is outside pgha:cluster:network"),
    "bad-role": ({"nodes": {"pg-02": {"roles": ["database"]}}}, "pgha:nodes:pg-02:roles: ['database']"),
    "node-key-typo": ({"nodes": {"pg-02": {"adress": "198.51.100.121"}}},
                      "pgha:nodes:pg-02:adress: unknown key (a typo?)"),
    "node-state": ({"nodes": {"pg-02": {"state": "gone"}}}, "pgha:nodes:pg-02:state: 'gone'"),
    "etcd-join": ({"nodes": {"pg-02": {"etcd_join": "later"}}}, "pgha:nodes:pg-02:etcd_join: 'later'"),
    "vrrp-priority-range": ({"nodes": {"haproxy-01": {"priority": 300}}},
                            "pgha:nodes:haproxy-01:priority: 300; VRRP priorities are 1 to 254"),
    "vrrp-router-id-range": ({"keepalived": {"virtual_router_id": 256}},
                             "pgha:keepalived:virtual_router_id: 256; VRRP router ids are 1 to 255"),
    "tags-not-a-mapping": ({"nodes": {"pg-02": {"tags": ["nofailover"]}}}, "pgha:nodes:pg-02:tags: must be"),
    "bootstrap-not-postgres": ({"patroni": {"bootstrap_node": "haproxy-01"}},
                               "pgha:patroni:bootstrap_node: 'haproxy-01' is not a postgres node"),
    "missing-password": ({"patroni": {"rewind": {"password": None}}}, "pgha:patroni:rewind:password: missing"),
    "missing-etcd-password": ({"etcd": {"root_password": None}},
                              "pgha:etcd:root_password: missing with pgha:etcd:auth on"),
    "cluster-name-shell": ({"cluster": {"name": "pg ha;rm"}}, "pgha:cluster:name: 'pg ha;rm'; use letters"),
    "stanza-name-shell": ({"backup": {"stanza": "main$(id)"}}, "pgha:backup:stanza: 'main$(id)'; use letters"),
    "timing": ({"patroni": {"dcs": {"retry_timeout": 6}}},
               "pgha:patroni:dcs: loop_wait + 2*retry_timeout = 22 exceeds ttl 20"),
    "ttl-below-minimum": ({"patroni": {"dcs": {"ttl": 10, "loop_wait": 2, "retry_timeout": 3}}},
                          "pgha:patroni:dcs:ttl: 10 is below Patroni's minimum of 20"),
    "vip-outside-network": ({"keepalived": {"vip": "10.9.8.7"}},
                            "pgha:keepalived:vip: 10.9.8.7 is outside pgha:cluster:network"),
    "vip-is-a-node": ({"keepalived": {"vip": "198.51.100.11"}},
                      "pgha:keepalived:vip: 198.51.100.11 is also haproxy-01's address"),
    "colliding-ports": ({"haproxy": {"reader_port": 5432}},
                        "pgha:haproxy:reader_port: port 5432 collides with pgha:haproxy:writer_port"),
    "unknown-key": ({"patroni": {"dsc": {"ttl": 30}}}, "pgha:patroni:dsc: unknown key (a typo?)"),
    "synchronous-unsatisfiable": ({"patroni": {"dcs": {"synchronous_node_count": 3}}},
                                  "pgha:patroni:dcs:synchronous_node_count: 3 synchronous standby(s)"),
    "frontend": ({"frontend": "f5"}, "pgha:frontend: 'f5'"),
    "node-ipv6": ({"nodes": {"pg-01": {"address": "2001:db8::120"}}},
                  "pgha:nodes:pg-01:address: 2001:db8::120 is IPv6; pgha supports IPv4 node addresses only"),
    "network-malformed": ({"postgres": {"app_networks": ["198.51.100.1/33"]}},
                          "pgha:postgres:app_networks[0]: '198.51.100.1/33' is not a CIDR network"),
    "network-host-bits": ({"postgres": {"app_networks": ["10.0.0.5/16"]}},
                          "pgha:postgres:app_networks[0]: '10.0.0.5/16' is not a CIDR network"),
    "network-without-prefix": ({"postgres": {"app_networks": ["198.51.100.1"]}},
                               "pgha:postgres:app_networks[0]: '198.51.100.1' has no prefix length"),
    "network-too-wide": ({"postgres": {"app_networks": ["0.0.0.0/0"]}},
                         "pgha:postgres:app_networks[0]: 0.0.0.0/0 admits 4294967296 addresses"),
    "network-v6-too-wide": ({"postgres": {"app_networks": ["2001::/16"]}},
                            "pgha:postgres:app_networks[0]: 2001::/16 admits"),
    "hetzner-private-needs-network": ({"frontend": "hetzner"},
                                      "pgha:hetzner:load_balancer:public_interface: false needs"),
    "hetzner-proxy-without-sources": (
        {"frontend": "hetzner", "hetzner": {"load_balancer": {"public_interface": True}}},
        "pgha:hetzner:proxy_sources: empty, and no load_balancer:ip to default to"),
    "hetzner-proxy-source-malformed": (
        {**HETZNER, "hetzner": {**HETZNER["hetzner"], "proxy_sources": ["10.0.0.0/33"]}},
        "pgha:hetzner:proxy_sources[0]: '10.0.0.0/33' is not a CIDR network"),
    "hetzner-target-ambiguous": (
        {"frontend": "hetzner", "hetzner": {"load_balancer": {
            "public_interface": True, "proxy_protocol": False,
            "targets": [{"server": "haproxy-01", "ip": "203.0.113.7"}]}}},
        "pgha:hetzner:load_balancer:targets[0]: has ip, server; give exactly one of"),
    "install-method": ({"patroni": {"install_method": "conda"}}, "pgha:patroni:install_method: 'conda'"),
    "pip-unpinned": ({"patroni": {"pip": {"requirements": ["patroni[etcd3]==4.1.4", "psycopg>=3"]}}},
                     "pgha:patroni:pip:requirements[1]: 'psycopg>=3' is not pinned"),
    "repository": ({"postgres": {"repository": "ppa"}}, "pgha:postgres:repository: 'ppa'"),
    "pgdg-mirror-url": ({"postgres": {"repository": "pgdg", "pgdg": {"url": "apt.example"}}},
                        "pgha:postgres:pgdg:url: 'apt.example' is not an http(s) URL"),
    "profile-unknown": ({"profile": {"rto": "ludicrous"}},
                        "pgha:profile:rto: 'ludicrous' is not a profile; choose one of fast, norm, safe"),
    "tls-without-ca": ({"tls": {"enabled": True, "ca_cert": None}}, "pgha:tls:ca_cert: missing or not PEM"),
}


@pytest.mark.parametrize("rule", sorted(BAD))
def test_a_bad_pillar_gives_one_message_naming_the_key(rule, minion):
    changes, message = BAD[rule]
    errors = minion(changes, tls=changes.get("tls", {}).get("enabled", False)).modules.pgha.validate()
    assert len(errors) == 1 and errors[0].startswith(message) or message in errors[0], errors


def test_the_lab_pillar_is_valid_on_every_role_and_the_master(minion):
    for minion_id in ("pg-01", "haproxy-01", "lab-master"):
        assert minion(minion_id=minion_id).modules.pgha.validate() == [], minion_id


def test_secrets_are_checked_by_role(minion):
    """A haproxy node needs no PostgreSQL or etcd secret; the master needs every one."""
    without = {"patroni": {"superuser": {"password": None}}, "etcd": {"root_password": None}}
    assert minion(without, minion_id="haproxy-01").modules.pgha.validate() == []
    on_postgres = minion(without, minion_id="pg-01").modules.pgha.validate()
    assert [e.split(":")[1:3] for e in on_postgres] == [["patroni", "superuser"], ["etcd", "root_password"]]
    assert len(minion(without, minion_id="lab-master").modules.pgha.validate()) == 2
    no_stats = {"haproxy": {"stats": {"password": None}}}
    assert minion(no_stats, minion_id="pg-01").modules.pgha.validate() == []
    assert minion(no_stats, minion_id="haproxy-01").modules.pgha.validate()[0].startswith(
        "pgha:haproxy:stats:password: missing")


def test_wide_networks_need_a_confirmation(minion):
    wide = {"postgres": {"app_networks": ["0.0.0.0/0"], "allow_wide_networks": True}}
    assert minion(wide).modules.pgha.validate() == []


def test_a_profile_sets_timing_and_checks_and_the_pillars_own_keys_win(minion):
    cfg = minion({"profile": {"rto": "safe", "rpo": "bounded"}}).modules.pgha.config()
    dcs = cfg["patroni"]["dcs"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"], dcs["synchronous_mode"]) == (60, 10, 25, False)
    assert (cfg["haproxy"]["check"]["inter"], cfg["haproxy"]["check"]["fall"]) == ("2s", 3)
    assert cfg["patroni_dcs"]["ttl"] == 60  # what Patroni is given (bootstrap and dynamic config)
    own = minion({"profile": {"rto": "safe"}, "patroni": {"dcs": {"ttl": 80}}}).modules.pgha.config()
    assert (own["patroni"]["dcs"]["ttl"], own["patroni"]["dcs"]["retry_timeout"]) == (80, 25)
    lab = minion().modules.pgha.config()
    assert (lab["patroni"]["dcs"]["ttl"], lab["haproxy"]["check"]["downinter"]) == (20, "250ms")
    assert lab["patroni"]["dcs"]["synchronous_mode"] is True
