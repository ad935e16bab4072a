"""Signed beacon events: only the minion whose key signed an event may make the master
act, only as itself, only for its role, and only while the event is fresh."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from unit.helpers import load_file

NODES = {"pg-01": {"address": "198.51.100.120", "roles": ["postgres"]},
         "pg-02": {"address": "198.51.100.121", "roles": ["postgres"]},
         "haproxy-01": {"address": "198.51.100.11", "roles": ["haproxy"]}}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Each minion's Salt key pair, and the master's directory of accepted keys."""
    root = tmp_path_factory.mktemp("pki")
    (root / "master" / "minions").mkdir(parents=True)
    for name in NODES:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (root / name).mkdir()
        (root / name / "minion.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        (root / "master" / "minions" / name).write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return root


def on_minion(pki, name):
    return load_file("_modules/pgha_event.py", __opts__={"id": name, "pki_dir": str(pki / name)})


def on_master(pki):
    config = {"nodes": NODES, "postgres_members": ["pg-01", "pg-02"], "haproxy_members": ["haproxy-01"], "backup_members": [],
              "heal": {"event_max_age": 60, "enabled": True, "reinit": True}}
    return load_file("_modules/pgha_event.py", __opts__={"id": "lab-master", "pki_dir": str(pki / "master")},
                     __salt__={"pgha.config": lambda: config, "pgha.leases": lambda: {}})


def event(pki, signer, tag, data):
    """What arrives on the master: the signed data, without the beacon's tag key."""
    return {k: v for k, v in on_minion(pki, signer).sign(tag, data).items()}


STATE = "salt/beacon/pg-02/pgha_patroni/state"


def test_an_event_signed_by_its_minion_is_trusted(pki):
    verdict = on_master(pki).verify(STATE, event(pki, "pg-02", STATE, {"member": "pg-02", "state": "stopped"}))
    assert verdict == {"trusted": True, "sender": "pg-02", "claimed": "pg-02", "problems": []}


def test_beacon_events_are_signed_for_the_tag_salt_gives_them(pki):
    signed = on_minion(pki, "pg-02").sign_events("pgha_patroni", [{"tag": "state", "member": "pg-02"}])
    assert signed[0]["tag"] == "state"
    data = {k: v for k, v in signed[0].items() if k != "tag"}
    assert on_master(pki).verify(STATE, data)["trusted"] is True


def test_a_haproxy_node_signing_as_itself_but_claiming_a_postgres_node_is_named(pki):
    forged = event(pki, "haproxy-01", STATE, {"member": "pg-01", "state": "stopped"})
    verdict = on_master(pki).verify(STATE, forged)
    assert verdict["trusted"] is False and verdict["sender"] == "haproxy-01"
    assert "signed by haproxy-01, but the tag claims pg-02" in verdict["problems"]
    assert "it names member 'pg-01', not its sender pg-02" in verdict["problems"]


def test_changing_a_signed_event_breaks_its_signature(pki):
    signed = event(pki, "pg-02", STATE, {"member": "pg-02", "state": "stopped"})
    verdict = on_master(pki).verify(STATE, dict(signed, state="crashed"))
    assert verdict["trusted"] is False and verdict["sender"] == "unknown (its data says 'pg-02')"


def test_an_unsigned_event_with_a_target_pattern_and_yaml_is_refused(pki):
    tag = "salt/beacon/'*'/pgha_services/patroni"
    verdict = on_master(pki).verify(tag, {"id": "'*'", "service": "patroni\n  - tgt: '*'"})
    assert verdict["trusted"] is False and verdict["sender"] == "unknown (its data says \"'*'\")"
    assert "'*' is not a node in pgha:nodes" in verdict["problems"]


def test_a_service_event_needs_the_role_that_runs_the_service(pki):
    tag = "salt/beacon/haproxy-01/pgha_services/patroni"
    verdict = on_master(pki).verify(tag, event(pki, "haproxy-01", tag, {"service": "patroni"}))
    assert "haproxy-01 does not have the postgres role an pgha_services event needs" in verdict["problems"]
    tag = "salt/beacon/haproxy-01/pgha_services/haproxy"
    assert on_master(pki).verify(tag, event(pki, "haproxy-01", tag, {"service": "haproxy"}))["trusted"]


def test_a_replayed_event_is_refused(pki, monkeypatch):
    signed = event(pki, "pg-02", STATE, {"member": "pg-02"})
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    verdict = on_master(pki).verify(STATE, signed)
    assert verdict["trusted"] is False and any("a replay or a stale event" in p for p in verdict["problems"])


def test_the_gate_acts_only_on_trusted_events_with_healing_on_and_no_maintenance(pki):
    master = on_master(pki)
    good = event(pki, "pg-02", STATE, {"member": "pg-02"})
    assert master.gate(STATE, good, "reinit")["act"] is True
    master.__salt__["pgha.leases"] = lambda: {"maintenance": {"owner": "alice", "kind": "operator", "reason": "disk"}}
    gate = master.gate(STATE, good, "reinit")
    assert gate["act"] is False and gate["why"] == "maintenance by alice: disk"
    assert master.gate(STATE, dict(good, id="pg-01"), "reinit")["rejected"] is True
