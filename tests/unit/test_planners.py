"""The diff planners: Patroni's dynamic configuration (through the real state and
modules, against a fake Patroni and etcd over HTTP) and the Hetzner balancer's plan."""

from __future__ import annotations

import json

import pytest
from salt.exceptions import CommandExecutionError

from unit.fakehttp import FakeServices
from unit.helpers import load_file

# ---- patroni.dynamic_config ----------------------------------------------------------

patroni_state = load_file("_states/patroni.py")


def test_a_diff_names_each_changed_key_and_compares_patronis_strings_loosely():
    current = {"ttl": 20, "postgresql": {"parameters": {"max_connections": "200", "work_mem": "4MB"}}}
    desired = {"ttl": 30, "postgresql": {"parameters": {"max_connections": 200, "work_mem": "4MB"}}}
    assert patroni_state._diff(current, desired) == {"ttl": {"old": 20, "new": 30}}


def test_parameters_are_owned_by_the_pillar_and_other_keys_are_left_alone():
    current = {"pause": True, "slots": {"x": {}}, "postgresql": {"parameters": {"work_mem": "4MB", "old": "1"}}}
    desired = {"postgresql": {"parameters": {"work_mem": "4MB"}}}
    assert patroni_state._diff(current, desired) == {"postgresql.parameters.old": {"old": "1", "new": None}}


def test_a_patch_nests_dotted_keys_and_removes_with_null():
    changes = {"ttl": {"old": 20, "new": 30}, "postgresql.parameters.old": {"old": "1", "new": None},
               "postgresql.use_slots": {"old": False, "new": True}}
    assert patroni_state._patch_from(changes) == {
        "ttl": 30, "postgresql": {"parameters": {"old": None}, "use_slots": True}}


def test_merging_overrides_changes_neither_side():
    base, over = {"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}
    assert patroni_state._merged(base, over) == {"a": {"b": 3, "c": 2}}
    assert base == {"a": {"b": 1, "c": 2}} and over == {"a": {"b": 3}}


@pytest.fixture
def services():
    fake = FakeServices()
    yield fake
    fake.close()


@pytest.fixture
def patroni_minion(minion, services):
    """pg-01, whose Patroni and etcd are the fake (plain HTTP on 127.0.0.1)."""
    def make():
        # Every member on loopback: one that is not the fake refuses at once.
        return minion({"nodes": {"pg-01": {"address": "127.0.0.1"}, "pg-02": {"address": "127.0.0.2"},
                                 "pg-03": {"address": "127.0.0.3"}},
                       "patroni": {"restapi": {"port": services.port}},
                       "etcd": {"client_port": services.port}})
    yield make


def run_state(m, **kwargs):
    return m.states.patroni.dynamic_config(name="pgha", wait=0, **kwargs)


def lab_dcs(m):
    return m.modules.pgha.config(redact=False)["patroni_dcs"]


def test_test_mode_predicts_the_patch_and_sends_none(patroni_minion, services):
    m = patroni_minion()
    services.config = dict(lab_dcs(m), ttl=99)
    ret = run_state(m, test=True)
    assert ret["result"] is None and ret["changes"] == {"ttl": {"old": 99, "new": 20}}, ret
    assert services.sent("PATCH", "/config") == []


def test_only_the_keys_that_differ_are_patched_and_a_second_run_changes_nothing(patroni_minion, services):
    m = patroni_minion()
    services.config = dict(lab_dcs(m), ttl=99, loop_wait=3, pause=True)
    ret = run_state(m)
    assert ret["result"] is True and set(ret["changes"]) == {"ttl", "loop_wait"}, ret
    assert services.sent("PATCH", "/config") == [{"ttl": 20, "loop_wait": 10}]
    assert services.config["pause"] is True
    again = run_state(m)
    assert again["result"] is True and again["changes"] == {}, again
    assert len(services.sent("PATCH", "/config")) == 1


def test_a_concurrent_writer_makes_the_state_diff_again_from_what_is_there(patroni_minion, services):
    m = patroni_minion()
    services.config = dict(lab_dcs(m), ttl=99, loop_wait=3)
    services.conflicts, services.on_conflict = 1, {"loop_wait": 10}
    ret = run_state(m)
    assert ret["result"] is True and set(ret["changes"]) == {"ttl"}, ret
    assert services.sent("PATCH", "/config") == [{"ttl": 20, "loop_wait": 10}, {"ttl": 20}]


def test_a_switchovers_temporary_values_in_etcd_count_as_desired(patroni_minion, services):
    m = patroni_minion()
    key = m.modules.pgha.config()["dcs_overrides_key"]
    services.config = dict(lab_dcs(m), synchronous_node_count=2)
    services.kv[key] = json.dumps({"synchronous_node_count": 2})
    ret = run_state(m)
    assert ret["result"] is True and ret["changes"] == {}, ret
    del services.kv[key]
    ret = run_state(m)
    assert ret["changes"] == {"synchronous_node_count": {"old": 2, "new": 1}}, ret


def test_a_patroni_that_does_not_answer_is_named(patroni_minion, services):
    m = patroni_minion()
    services.close()
    ret = run_state(m)
    assert ret["result"] is False and "Patroni" in ret["comment"], ret


# ---- hcloud_lb.present's plan ----------------------------------------------------------

hcloud_state = load_file("_states/hcloud_lb.py")

SERVICE = {"protocol": "tcp", "listen_port": 5432, "destination_port": 5432, "proxyprotocol": True,
           "health_check": {"protocol": "http", "port": 8404, "interval": 5, "timeout": 3, "retries": 2,
                            "http": {"path": "/health"}}}


def balancer(**changes):
    lb = {"name": "lb-haproxy", "location": "fsn1", "network_zone": None, "type": "lb11",
          "algorithm": "round_robin", "labels": {"managed-by": "pgha"}, "public_interface": False,
          "network": 7, "ip": "10.0.0.5", "services": [SERVICE],
          "targets": [{"type": "server", "server": "haproxy-01", "use_private_ip": True},
                      {"type": "server", "server": "haproxy-02", "use_private_ip": True}]}
    lb.update(changes)
    return lb


def test_a_balancer_that_matches_plans_nothing():
    assert hcloud_state._plan(balancer(), balancer(), 7, "10.0.0.5") == []


def test_a_freed_port_is_deleted_before_it_is_taken_and_targets_change_one_at_a_time():
    reader = dict(SERVICE, listen_port=5433, destination_port=5433)
    want = balancer(services=[reader], targets=[{"type": "server", "server": "haproxy-01", "use_private_ip": True},
                                                {"type": "server", "server": "haproxy-03", "use_private_ip": True}])
    steps = hcloud_state._plan(balancer(), want, 7, "10.0.0.5")
    assert [(k, (o or {}).get("listen_port") or (o or {}).get("server"),
             (n or {}).get("listen_port") or (n or {}).get("server")) for k, o, n in steps] == [
        ("service", 5432, None), ("service", None, 5433),
        ("target", "haproxy-02", None), ("target", None, "haproxy-03")]


def test_the_public_interface_goes_on_first_and_off_last():
    on = hcloud_state._plan(balancer(), balancer(public_interface=True, algorithm="least_connections"), 7, "10.0.0.5")
    assert [s[0] for s in on] == ["public_interface", "algorithm"]
    off = hcloud_state._plan(balancer(public_interface=True), balancer(algorithm="least_connections"), 7, "10.0.0.5")
    assert [s[0] for s in off] == ["algorithm", "public_interface"]


@pytest.mark.parametrize("current, network, ip, message", [
    (balancer(location="nbg1"), 7, "10.0.0.5", "cannot move"),
    (balancer(network=8), 7, "10.0.0.5", "has one network"),
    (balancer(ip="10.0.0.9"), 7, "10.0.0.5", "detaching"),
])
def test_what_hetzner_cannot_change_in_place_is_refused_with_the_way_out(current, network, ip, message):
    with pytest.raises(CommandExecutionError, match=message):
        hcloud_state._plan(current, balancer(), network, ip)
