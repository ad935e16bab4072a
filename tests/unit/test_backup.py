"""Backups with pgBackRest, without the lab: the decisions in _utils/pgha_backup.py (a
repository's summary, freshness, restore targets and refusals), the validation rules,
and what the formula renders for the backup node and a postgres node."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from unit.helpers import load_file

B = load_file("_utils/pgha_backup.py")
NOW = 1_800_000_000
HOUR = 3600


def backup(label, kind, stop, lsn_stop="0/3000100", error=False):
    return {"label": label, "type": kind, "error": error,
            "timestamp": {"start": stop - 60, "stop": stop},
            "lsn": {"start": "0/3000028", "stop": lsn_stop},
            "archive": {"start": "000000010000000000000003", "stop": "000000010000000000000003"},
            "info": {"size": 30_000_000, "delta": 30_000_000, "repository": {"size": 4_000_000}}}


def info(*backups, code=0, message="ok"):
    return [{"name": "pgha", "status": {"code": code, "message": message},
             "archive": [{"id": "17-1", "min": "000000010000000000000001",
                          "max": "00000002000000000000000A"}],
             "backup": list(backups)}]


FULL = backup("20261201-010000F", "full", NOW - 30 * HOUR, "0/5000100")
DIFF = backup("20261201-010000F_20261202-010000D", "diff", NOW - 6 * HOUR, "0/9000100")


def test_the_summary_names_the_newest_backup_of_each_type_and_the_newest_wal():
    s = B.summary(info(FULL, DIFF), "pgha", NOW)
    assert s["latest"]["full"]["label"] == FULL["label"] and s["latest"]["full"]["age"] == 30 * HOUR
    assert s["latest"]["diff"]["age"] == 6 * HOUR and "incr" not in s["latest"]
    assert s["newest_age"] == 6 * HOUR and s["wal_max"] == "00000002000000000000000A"
    assert s["latest"]["full"]["repo_size"] == 4_000_000


def test_a_failed_backup_never_counts_as_the_newest():
    broken = backup("20261202-020000F", "full", NOW - 60, error=True)
    assert B.summary(info(FULL, broken), "pgha", NOW)["newest_age"] == 30 * HOUR


def test_freshness_names_the_age_the_missing_stanza_or_the_empty_repository():
    assert B.freshness_problem(info(FULL, DIFF), "pgha", NOW, 26 * HOUR) is None
    stale = B.freshness_problem(info(FULL), "pgha", NOW, 26 * HOUR)
    assert stale.startswith(f"the newest backup of stanza pgha finished {30 * HOUR} s ago")
    assert B.freshness_problem(info(), "pgha", NOW, 60) == "stanza pgha has no backup"
    assert B.freshness_problem([], "pgha", NOW, 60) == "stanza pgha does not exist in the repository"


@pytest.mark.parametrize("run, expected", [
    ({}, {"type": "default", "value": None}),
    ({"target_time": "2026-12-01 20:15:00+00"}, {"type": "time", "value": "2026-12-01 20:15:00+00:00"}),
    ({"target_time": "2026-12-01T20:15:00Z"}, {"type": "time", "value": "2026-12-01 20:15:00+00:00"}),
    ({"target_lsn": "0/3000060"}, {"type": "lsn", "value": "0/3000060"}),
    ({"target_name": "before_migration"}, {"type": "name", "value": "before_migration"}),
])
def test_restore_targets(run, expected):
    target = B.restore_target(run)
    assert {k: target[k] for k in expected} == expected


@pytest.mark.parametrize("run, message", [
    ({"target_time": "2026-12-01 20:15:00"}, "has no UTC offset"),
    ({"target_time": "yesterday"}, "is not a time"),
    ({"target_lsn": "3000060"}, "is not an LSN"),
    ({"target_name": "x; rm -rf /"}, "is not a restore point name"),
    ({"target_time": "2026-12-01 20:15:00+00", "target_lsn": "0/1"}, "at most one restore target"),
    ({"target_timeline": "newest"}, "is not current, latest or a timeline number"),
])
def test_malformed_restore_targets_are_refused_by_name(run, message):
    with pytest.raises(ValueError, match=message):
        B.restore_target(run)


def at(seconds_ago):
    import datetime
    return datetime.datetime.fromtimestamp(NOW - seconds_ago, datetime.timezone.utc).isoformat(sep=" ")


def test_a_restore_needs_the_confirmation_and_a_backup_that_ended_before_the_target():
    ok = {"confirm": "pgha", "target_time": at(HOUR)}
    assert B.restore_problems(ok, "pgha", info(FULL, DIFF), "pgha") == []
    assert "pass confirm='pgha'" in B.restore_problems(dict(ok, confirm="yes"), "pgha", info(FULL), "pgha")[0]
    too_old = B.restore_problems(dict(ok, target_time=at(40 * HOUR)), "pgha", info(FULL, DIFF), "pgha")
    assert too_old and too_old[0].startswith("no backup ended before") and FULL["label"] in too_old[0]
    assert B.restore_problems({"confirm": "pgha", "target_lsn": "0/4000000"}, "pgha", info(FULL), "pgha")[0] \
        .startswith("no backup ended before LSN 0/4000000")
    assert B.restore_problems({"confirm": "pgha"}, "pgha", info(), "pgha") == ["stanza pgha has no backup to restore from"]


def test_the_restore_command_promotes_at_the_target_and_quotes_it():
    cmd = B.restore_command("pgha", B.restore_target({"target_time": "2026-12-01 20:15:00+00"}))
    assert cmd == ("/usr/bin/pgbackrest --stanza=pgha --delta --type=time "
                   "'--target=2026-12-01 20:15:00+00:00' --target-action=promote restore")
    # The end of the archive: no target, so no target action (pgBackRest refuses one).
    assert B.restore_command("pgha", B.restore_target({})) == "/usr/bin/pgbackrest --stanza=pgha --delta --type=default restore"


def test_a_rebuild_needs_the_confirmation_and_a_young_backup_unless_told_otherwise():
    assert B.rebuild_problems({"confirm": "pgha"}, "pgha", info(FULL, DIFF), "pgha", NOW, 24 * HOUR) == []
    stale = B.rebuild_problems({"confirm": "pgha"}, "pgha", info(FULL), "pgha", NOW, 24 * HOUR)
    assert len(stale) == 1 and "rebuild_requires_backup_within" in stale[0]
    assert B.rebuild_problems({"confirm": "pgha", "allow_without_backup": True}, "pgha", [], "pgha", NOW, 60) == []
    assert "wipes every member's data" in B.rebuild_problems({}, "pgha", info(DIFF), "pgha", NOW, 24 * HOUR)[0]


BAD = {
    "two-backup-nodes": ({"nodes": {"backup-02": {"address": "198.51.100.31", "roles": ["backup"]}}},
                         "pgha:backup: enabled, but 2 nodes have the role backup", "pg-01"),
    "no-passphrase": ({"backup": {"repo": {"cipher_pass": None}}}, "pgha:backup:repo:cipher_pass: missing", "backup-01"),
    "compression": ({"backup": {"compress_type": "xz"}}, "pgha:backup:compress_type: 'xz'", "pg-01"),
    "retention": ({"backup": {"repo": {"retention_full": 0}}}, "pgha:backup:repo:retention_full: 0", "pg-01"),
    "standby": ({"backup": {"backup_standby": "maybe"}}, "pgha:backup:backup_standby: 'maybe'", "pg-01"),
    "repo2-type": ({"backup": {"repo2": {"type": "gcs"}}}, "pgha:backup:repo2:type: 'gcs'", "pg-01"),
    "repo2-missing": ({"backup": {"repo2": {"type": "s3", "bucket": "b"}}},
                      "pgha:backup:repo2: missing endpoint, region, path, key, key_secret", "backup-01"),
    "no-cert": ({"backup": {"tls": {"cert": None}}}, "pgha:backup:tls:cert: missing or not PEM for pg-01", "pg-01"),
}


@pytest.mark.parametrize("rule", sorted(BAD))
def test_a_bad_backup_pillar_is_refused_by_name(minion, rule):
    changes, message, node = BAD[rule]
    errors = minion(changes, minion_id=node, tls=True).modules.pgha.validate()
    assert any(e.startswith(message) for e in errors), errors


def test_the_lab_backup_pillar_is_valid_on_the_backup_node(minion):
    assert minion(minion_id="backup-01", tls=True).modules.pgha.validate() == []


def rendered_conf(minion, node):
    m = minion(minion_id=node, tls=True)
    src = (Path(__file__).resolve().parents[2] / "salt/pgha/pgbackrest/files/pgbackrest.conf.jinja").read_text()
    text = m.modules.file.apply_template_on_contents(src, template="jinja", context={}, defaults={},
                                                     saltenv="base")
    conf = configparser.ConfigParser(strict=False, interpolation=None)
    conf.read_string(text)
    return text, conf


def test_the_backup_node_holds_the_passphrase_and_admits_only_the_postgres_nodes(minion):
    text, conf = rendered_conf(minion, "backup-01")
    assert conf["global"]["repo1-cipher-type"] == "aes-256-cbc" and conf["global"]["repo1-cipher-pass"]
    assert conf["global"]["compress-type"] == "zst"
    auth = [line for line in text.splitlines() if line.startswith("tls-server-auth=")]
    assert auth == [f"tls-server-auth=pg-0{i}=pgha" for i in (1, 2, 3)]
    assert conf["pgha"]["pg1-host"] == "198.51.100.120" and conf["pgha"]["pg3-host-type"] == "tls"


def test_a_postgres_node_has_no_passphrase_and_admits_only_the_backup_node(minion):
    text, conf = rendered_conf(minion, "pg-02")
    assert "cipher-pass" not in text
    assert conf["global"]["repo1-host"] == "198.51.100.30" and conf["global"]["tls-server-address"] == "198.51.100.121"
    assert [line for line in text.splitlines() if line.startswith("tls-server-auth=")] == ["tls-server-auth=backup-01=pgha"]
    assert conf["pgha"]["pg1-path"] == "/var/lib/postgresql/17/pgha"


def test_patroni_archives_through_pgbackrest_and_builds_replicas_from_the_repository(minion):
    m = minion(minion_id="pg-01", tls=True)
    dcs = m.modules.pgha.config(redact=False)["patroni_dcs"]["postgresql"]
    pgbackrest = "/usr/bin/pgbackrest --config=/etc/pgbackrest.conf --stanza=pgha"
    assert dcs["parameters"]["archive_command"] == f"{pgbackrest} archive-push %p"
    assert dcs["recovery_conf"]["restore_command"] == f'{pgbackrest} archive-get %f "%p"'
    import yaml
    src = (Path(__file__).resolve().parents[2] / "salt/pgha/patroni/files/config.yml.jinja").read_text()
    config = yaml.safe_load(m.modules.file.apply_template_on_contents(src, template="jinja", context={},
                                                                      defaults={}, saltenv="base"))
    assert config["postgresql"]["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert config["bootstrap"]["dcs"]["postgresql"]["parameters"]["archive_mode"] == "on"


def test_the_backup_node_gets_timers_the_stanza_and_no_postgres(minion):
    high = minion(minion_id="backup-01", tls=True).modules.state.show_highstate()
    assert isinstance(high, dict), high
    assert "pgha-pgbackrest-stanza-present" in high
    assert "pgha-pgbackrest-schedule-full-timer-managed" in high
    assert "pgha-pgbackrest-schedule-incr-timer-absent" in high
    assert not [sid for sid in high if sid.startswith(("pgha-patroni", "pgha-etcd", "pgha-postgres"))]


def backup_beacon(me, info_answer=None, role="primary", archiver=None):
    cfg = {"id": me, "backup_members": ["backup-01"], "postgres_members": ["pg-01", "pg-02"],
           "backup_stanza": "pgha", "backup": {"max_age": 26 * HOUR}}

    def freshness():
        if isinstance(info_answer, Exception):
            raise info_answer
        return B.freshness_problem(info_answer, "pgha", NOW, 26 * HOUR)
    module = load_file("_beacons/pgha_backup.py", __context__={},
                       __salt__={"pgha.config": lambda: cfg, "pgbackrest.freshness": freshness,
                                 "patroni.health": lambda host=None: {"role": role},
                                 "pgbackrest.archiver": lambda: archiver,
                                 "pgha_event.sign_events": lambda name, events: events})
    return module


def test_the_backup_beacon_reports_a_stale_backup_once_per_repeat():
    module = backup_beacon("backup-01", info(FULL))
    first = module._events(dict(check_interval=60, repeat=300), NOW)
    assert [e["tag"] for e in first] == ["stale"]
    assert first[0]["problem"].startswith(f"the newest backup of stanza pgha finished {30 * HOUR} s ago")
    assert module._events(dict(check_interval=60, repeat=300), NOW + 61) == []   # within repeat
    assert [e["tag"] for e in module._events(dict(check_interval=60, repeat=300), NOW + 400)] == ["stale"]
    fresh = backup_beacon("backup-01", info(FULL, DIFF))
    assert fresh._events(dict(check_interval=60, repeat=300), NOW) == []


def test_the_backup_beacon_reports_failing_archiving_on_the_leader_only():
    failing = {"failing": True, "last_failed_wal": "000000020000000000000007", "failed_count": 3}
    leader = backup_beacon("pg-01", role="primary", archiver=failing)
    events = leader._events(dict(check_interval=60, repeat=300), NOW)
    assert events == [{"tag": "archive_failing", "member": "pg-01", "wal": "000000020000000000000007",
                       "failed_count": 3}]
    replica = backup_beacon("pg-02", role="replica", archiver=failing)
    assert replica._events(dict(check_interval=60, repeat=300), NOW) == []


def test_restorable_refuses_with_every_reason_and_changes_nothing():
    calls = []
    state = load_file("_states/pgbackrest.py", __opts__={"test": False},
                      __utils__={"pgha_backup.stanza_of": B.stanza_of,
                                 "pgha_backup.restore_problems": B.restore_problems,
                                 "pgha_backup.restore_target": B.restore_target},
                      __salt__={"pgha.config": lambda: {"cluster": {"name": "pgha"}},
                                "pgbackrest.info": lambda name: calls.append(name) or info(FULL)})
    refused = state.restorable("pgha", target_time="2001-01-01 00:00:00+00")
    assert refused["result"] is False and refused["changes"] == {}
    assert "pass confirm='pgha'" in refused["comment"] and "no backup ended before" in refused["comment"]
    ok = state.restorable("pgha", confirm="pgha", target_time=at(HOUR))
    assert ok["result"] is True and ok["changes"] == {}, ok
    # An unreachable repository: pgBackRest exits 0 with status 99 "other"; the reason
    # is in the repository's own status (as pgBackRest 2.55.1 answers).
    down = info(code=99, message="other")
    down[0]["repo"] = [{"key": 1, "cipher": "aes-256-cbc", "status": {"code": 99, "message": (
        "[HostConnectError] raised from remote-0 tls protocol on '198.51.100.30': unable to connect to "
        "'198.51.100.30:8432': [111] Connection refused")}}]
    unreachable = load_file("_states/pgbackrest.py", __opts__={"test": False},
                            __utils__={"pgha_backup.stanza_of": B.stanza_of,
                                       "pgha_backup.restore_problems": B.restore_problems},
                            __salt__={"pgha.config": lambda: {"cluster": {"name": "pgha"}},
                                      "pgbackrest.info": lambda name: down})
    refused = unreachable.restorable("pgha", confirm="pgha")
    assert refused["result"] is False and "Connection refused" in refused["comment"], refused
    assert "cannot be read" in B.freshness_problem(down, "pgha", NOW, 60)


def test_the_status_table_shows_the_backups_and_the_archiver():
    out = load_file("_output/pgha_status.py")
    s = B.summary(info(FULL, DIFF), "pgha", NOW)
    text = out.output({"healthy": True, "problems": [], "patroni": [], "etcd": [], "haproxy": {},
                       "vip": {"address": None}, "backups": {
                           "node": "backup-01", "stanza": "pgha", "repository": s,
                           "archiver": {"archived_count": 12, "last_archived_wal": "00000002000000000000000A",
                                        "failed_count": 0, "failing": False}}})
    assert "Backups (stanza pgha on backup-01, newest WAL 00000002000000000000000A)" in text
    assert FULL["label"] in text and "30h00m" in text and "3.8 MB" in text
    assert "archiving: 12 archived (last 00000002000000000000000A), 0 failed" in text


class FakeLocal:
    """salt.client.LocalClient's cmd for pgha.status: one answer per function."""
    def __init__(self, answers):
        self.answers = answers

    def cmd(self, tgt, fun, kwarg=None, timeout=None, full_return=False, **_):
        return {tgt: {"ret": self.answers[fun], "retcode": 0}}


STATUS_CFG = {"backup_ready": True, "backup_node": "backup-01", "backup_stanza": "pgha",
              "backup": {"max_age": 26 * HOUR}}
LEADER = [{"member": "pg-01", "role": "leader"}]
ARCHIVING = {"failing": False, "last_failed_wal": None, "failed_count": 0}


def status_of(repository, archiver=ARCHIVING):
    runner = load_file("_runners/pgha.py")
    problems = []
    out = runner._backups(FakeLocal({"pgbackrest.summary": repository, "pgbackrest.archiver": archiver}),
                          STATUS_CFG, LEADER, problems)
    return out, problems


def test_pgha_status_counts_a_stale_backup_and_failing_archiving_but_not_a_first_day_without_one():
    out, problems = status_of(B.summary(info(), "pgha", NOW))
    assert problems == [] and "no backup yet" in out["note"]
    _, problems = status_of(B.summary(info(FULL), "pgha", NOW))
    assert problems == [f"backups: the newest backup is {30 * HOUR} s old, older than pgha:backup:max_age "
                        f"({26 * HOUR} s)"]
    _, problems = status_of(B.summary(info(FULL, DIFF), "pgha", NOW),
                            {"failing": True, "last_failed_wal": "000000010000000000000009", "failed_count": 2})
    assert problems == ["backups: pg-01 fails to archive 000000010000000000000009 (2 failures)"]
    _, problems = status_of(B.summary(info(code=99, message="other"), "pgha", NOW))
    assert problems and problems[0].startswith("backups: stanza pgha: other")
