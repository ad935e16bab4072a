"""The Patroni beacon's problem timers: one per kind of problem, started when that
problem starts; transitions are no failure."""

from __future__ import annotations

from unit.helpers import load_file


class Clock:
    def __init__(self):
        self.now = 1000.0

    def time(self):
        return self.now


def beacon(states):
    """The beacon module with a Patroni that reports *states* (a list, one per look)."""
    looks = iter(states)
    current = {}

    def health(host=None):
        current.update(next(looks))
        return {"role": current.get("role", "replica"), "state": current["state"],
                "replication_state": current.get("replication_state"), "timeline": 1}

    def cluster(host=None):
        return {"members": [{"name": "pg-03", "role": "replica", "lag": 0},
                            {"name": "pg-01", "role": "leader"}]}
    module = load_file("_beacons/patroni.py", __grains__={"id": "pg-03"}, __context__={},
                       __salt__={"patroni.health": health, "patroni.cluster": cluster,
                                 "pgha_event.sign_events": lambda name, events: events})
    clock = Clock()
    module.time = clock
    return module, clock


CONFIG = [{"lag_bytes": 16777216}, {"repeat": 30}, {"not_streaming_grace": 60}, {"failed_grace": 15},
          {"_beacon_name": "pgha_patroni"}]


def run(states, step=5):
    module, clock = beacon(states)
    fired = []
    for _ in states:
        fired += [e for e in module.beacon(CONFIG) if e["tag"] == "state"]
        clock.now += step
    return fired


def test_a_replica_not_streaming_past_its_grace_fires_once():
    fired = run([{"state": "running"}] * 14)
    assert [(e["state"], e["since"]) for e in fired] == [("not streaming", 1000.0)]


def test_cloning_then_not_streaming_starts_the_timer_when_not_streaming_starts():
    """The old beacon counted the whole clone against the not-streaming grace."""
    looks = [{"state": "creating replica"}] * 20 + [{"state": "running"}] * 10
    assert run(looks) == []
    fired = run([{"state": "creating replica"}] * 20 + [{"state": "running"}] * 13)
    assert [(e["state"], e["since"]) for e in fired] == [("not streaming", 1100.0)]


def test_a_start_that_keeps_failing_is_one_problem_across_its_retries():
    looks = [{"state": "start failed"}, {"state": "starting"}] * 3
    assert [e["state"] for e in run(looks)] == ["start failed"]


def test_streaming_ends_every_timer():
    looks = ([{"state": "running"}] * 10 + [{"state": "running", "replication_state": "streaming"}]
             + [{"state": "running"}] * 10)
    assert run(looks) == []


def test_a_promotion_names_the_leader_before_it_as_the_old_leader():
    """During a switchover the candidate's /cluster names it leader a loop before its own
    role turns primary; the role change must still name the member it took over from."""
    looks = iter([("replica", "pg-01"), ("replica", "pg-03"), ("primary", "pg-03")])
    current = {}

    def health(host=None):
        current["role"], current["leader"] = next(looks)
        return {"role": current["role"], "state": "running", "replication_state": "streaming",
                "timeline": 2}

    def cluster(host=None):
        return {"members": [{"name": "pg-03", "role": "leader" if current["leader"] == "pg-03" else "replica"},
                            {"name": "pg-01", "role": "leader" if current["leader"] == "pg-01" else "replica"}]}
    module = load_file("_beacons/patroni.py", __grains__={"id": "pg-03"}, __context__={},
                       __salt__={"patroni.health": health, "patroni.cluster": cluster,
                                 "pgha_event.sign_events": lambda name, events: events})
    module.time = Clock()
    changes = [e for _ in range(3) for e in module.beacon(CONFIG) if e["tag"] == "role_changed"]
    assert [(e["old_leader"], e["new_leader"], e["new_role"]) for e in changes] == [("pg-01", "pg-03", "leader")]


def test_a_pillar_that_changes_after_the_first_render_reaches_the_next_call(minion):
    """A beacon's pgha.config lives in the minion's own process, whose cache outlives a
    pillar refresh; a refresh that swaps the pillar under it must still be seen (CI: the
    backup beacon kept a wrong passphrase after the override that set it was removed)."""
    m = minion({"backup": {"max_age": 100}})
    assert m.modules.pgha.config(redact=False)["backup"]["max_age"] == 100
    # What pillar_refresh does: the loader's pillar swapped in place, __context__ kept.
    held = m.modules.pack["__pillar__"]
    held["pgha"]["backup"]["max_age"] = 200
    assert m.modules.pgha.config(redact=False)["backup"]["max_age"] == 200


def etcd_beacon(healthy):
    """The etcd beacon with a member whose health is *healthy* (a list, one per look;
    None: etcd's service is not running)."""
    looks = iter(healthy)
    current = {}

    def status(service):
        current["look"] = next(looks)
        return current["look"] is not None

    module = load_file("_beacons/etcd3.py", __grains__={"id": "pg-02"}, __context__={},
                       __salt__={"service.status": status,
                                 "pgha.config": lambda refresh=False: {"postgres_members": ["pg-01", "pg-02"]},
                                 "pillar.get": lambda key, default=None: {"pg-01": {}, "pg-02": {}},
                                 "etcd3.health": lambda member: {member: {"healthy": current["look"],
                                                                          "reason": "" if current["look"] else
                                                                          "no leader"}},
                                 "pgha_event.sign_events": lambda name, events: events})
    clock = Clock()
    module.time = clock
    config = [{"service": "etcd"}, {"grace": 15}, {"repeat": 30}, {"_beacon_name": "pgha_etcd"}]
    assert module.validate(config)[0] is True
    fired = []
    for _ in healthy:
        fired += [clock.now for e in module.beacon(config) if e["tag"] == "unhealthy"]
        clock.now += 5
    return fired


def test_an_etcd_member_unhealthy_for_a_moment_after_a_restart_is_not_reported():
    """CI: a highstate restarted etcd on pg-01, the beacon caught it unhealthy once, and
    the etcd heal restarted it again under a second highstate."""
    assert etcd_beacon([True, None, False, True, True, False, True]) == []
    # Stopped in between: the restart starts the count again.
    assert etcd_beacon([False, False, None, False, False, False, True]) == []


def test_an_etcd_member_unhealthy_past_its_grace_is_reported_then_every_repeat():
    fired = etcd_beacon([True] + [False] * 12)
    # Unhealthy from 1005 on: reported at 1020 (15 s), again at 1050 (30 s later).
    assert fired == [1020.0, 1050.0]
    assert etcd_beacon([False] * 4 + [True] + [False] * 3) == [1015.0]


def test_the_formula_gives_each_beacon_every_setting_its_validate_requires(minion):
    """A beacon whose validate() fails is skipped by the minion, with an error in its log
    only: the formula's beacon states must carry every key the modules require."""
    low = minion(minion_id="pg-02", tls=True).modules.state.show_lowstate()
    assert isinstance(low, list), low
    chunks = {chunk["__id__"]: chunk for chunk in low}
    for state_id, module in (("pgha-beacons-etcd", "_beacons/etcd3.py"), ("pgha-beacons-patroni", "_beacons/patroni.py")):
        chunk = chunks[state_id]
        config = [{key: value} for key, value in chunk.items() if not key.startswith("__") and
                  key not in ("name", "state", "fun", "order", "save", "beacon_module", "interval")]
        config.append({"_beacon_name": chunk["name"]})
        assert load_file(module).validate(config) == (True, "valid beacon configuration"), (state_id, config)
    assert {"grace": 15} in [{k: v} for k, v in chunks["pgha-beacons-etcd"].items()]
