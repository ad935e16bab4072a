"""Backups with pgBackRest on the live lab: the repository on backup-01 (TLS, encrypted,
zst), WAL archived through Patroni's dynamic configuration, orch.backup, a replica
rebuilt from the repository, a stale backup reported by pgha.status, orch.restore's
refusals and a point-in-time recovery (after which the new primary archives on its new
timeline), and orch.rebuild.

Every figure measured here goes to the "measured in this run" summary.
"""

from __future__ import annotations

import time
import uuid

from conftest import FIGURES, PG_NODES, SUPERUSER, orchestrate, pg_connect, pillar_override, salt_data, sql, wait_for

from pgha_lab import faults, labpillar, workload
from pgha_lab.topology import NODES

CFG = labpillar.merged()
STANZA = CFG["backup"]["stanza"] or CFG["cluster"]["name"]
BACKUP = "backup-01"
PGDATA = CFG["postgres"]["data_dir"]


def call(salt_cli, fun, *args, minion=BACKUP, timeout=300):
    ret = salt_cli.run(fun, *args, minion_tgt=minion, _timeout=timeout)
    return ret.returncode, salt_data(ret, [minion])[minion]


def leader() -> str:
    states = wait_for(lambda: (s := workload.member_states(PG_NODES)) and workload.healthy(s) and s,
                      240, "a healthy cluster")
    return workload.leader(states)


def backups(salt_cli) -> list[dict]:
    rc, info = call(salt_cli, "pgbackrest.info")
    assert rc == 0, info
    entry = next(s for s in info if s["name"] == STANZA)
    return entry["backup"]


def test_the_deploy_created_the_stanza_and_wal_reaches_the_encrypted_repository(cluster, salt_cli, lab):
    rc, info = call(salt_cli, "pgbackrest.info")
    assert rc == 0, info
    entry = next(s for s in info if s["name"] == STANZA)
    assert entry["status"]["code"] in (0, 2), entry["status"]
    assert entry["cipher"] == "aes-256-cbc"
    # check switches a WAL segment on the primary and waits until it is in the archive.
    rc, ok = call(salt_cli, "pgbackrest.check")
    assert rc == 0 and ok is True, ok
    rc, archiver = call(salt_cli, "pgbackrest.archiver", minion=leader())
    assert rc == 0 and archiver["archived_count"] > 0 and not archiver["failing"], archiver
    # The repository's files are compressed with zst, and the postgres nodes hold no passphrase.
    listing = lab.exec_(NODES[BACKUP], ["sh", "-c", f"find /var/lib/pgbackrest/archive/{STANZA} -name '*.zst' | head -1"])
    assert listing.stdout.strip(), "no .zst segment in the archive"
    for node in PG_NODES:
        conf = lab.exec_(NODES[node], ["cat", CFG["backup"]["config_file"]]).stdout
        assert "cipher-pass" not in conf and f"repo1-host={NODES[BACKUP].address}" in conf, node
    # The timers the schedule asks for.
    timers = lab.exec_(NODES[BACKUP], ["systemctl", "is-enabled", "pgha-backup-full.timer",
                                       "pgha-backup-diff.timer"]).stdout.split()
    assert timers == ["enabled", "enabled"], timers


def test_orch_backup_takes_a_full_then_a_differential_and_pgha_status_shows_them(cluster, salt_run_cli, salt_cli):
    before = {b["label"] for b in backups(salt_cli)}
    full = orchestrate(salt_run_cli, "orch.backup", pillar={"type": "full"}, timeout=900)
    assert full.retcode == 0, full.comments()
    assert {"pgha-orch-backup-taken", "pgha-orch-backup-expired", "pgha-orch-backup-verified"} <= {
        s["__id__"] for s in full.states.values() if s["result"] is True}, full.comments()
    FIGURES.append(f"orch.backup full of a small cluster: {full.seconds:.1f} s (backup, expire, verify)")
    with pg_connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pgha_backup_t (id int, note text)")
        conn.execute("INSERT INTO pgha_backup_t SELECT g, 'diff' FROM generate_series(1, 1000) g")
    diff = orchestrate(salt_run_cli, "orch.backup", pillar={"type": "diff"}, timeout=900)
    assert diff.retcode == 0, diff.comments()
    new = [b for b in backups(salt_cli) if b["label"] not in before]
    assert [b["type"] for b in new] == ["full", "diff"], new
    assert new[1]["prior"] == new[0]["label"]
    status = salt_run_cli.run("pgha.status", _timeout=120)
    repo = status.data["data"]["backups"]["repository"]
    assert repo["latest"]["full"]["label"] == new[0]["label"]
    assert repo["latest"]["diff"]["label"] == new[1]["label"]
    assert repo["newest_age"] < 600 and repo["wal_max"]


def test_orch_backup_refuses_an_unknown_type_and_takes_nothing(cluster, salt_run_cli, salt_cli):
    before = len(backups(salt_cli))
    refused = orchestrate(salt_run_cli, "orch.backup", pillar={"type": "weekly"}, timeout=120)
    assert refused.retcode != 0
    assert "backup type weekly is not one of full, diff, incr" in refused.comments()
    assert len(backups(salt_cli)) == before


def test_a_replica_with_its_data_destroyed_is_restored_from_the_repository(cluster, salt_cli, lab):
    assert backups(salt_cli), "needs the backups taken above"
    leader()
    # The asynchronous replica: the synchronous one's loss would make commits wait.
    rc, rows = call(salt_cli, "patroni.list", minion=PG_NODES[0])
    replica = next(r["member"] for r in rows if r["role"] == "replica")
    since = lab.exec_(NODES[replica], ["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    start = time.monotonic()
    # Patroni stopped, the data directory emptied: on start, Patroni builds the replica
    # with its first create_replica_method that works.
    lab.exec_(NODES[replica], ["sh", "-ec", f"systemctl stop patroni; rm -rf {PGDATA}; "
                                            "systemctl start patroni"], check=True)
    wait_for(lambda: workload.healthy(workload.member_states(PG_NODES)), 300, f"{replica} streaming again")
    FIGURES.append(f"replica rebuilt from the repository until streaming: {time.monotonic() - start:.1f} s")
    log = lab.exec_(NODES[replica], ["journalctl", "-u", "patroni", "--since", since, "--no-pager"]).stdout
    assert "replica has been created using pgbackrest" in log, log[-3000:]
    # Its data is all there and it follows new writes.
    marker = uuid.uuid4().hex
    with pg_connect() as conn:
        conn.execute("INSERT INTO pgha_backup_t VALUES (-1, %s)", (marker,))
    wait_for(lambda: sql("SELECT count(*) FROM pgha_backup_t WHERE note = %s", marker,
                         host=NODES[replica].address)[0][0] == 1, 60, f"the new row on {replica}")
    assert sql("SELECT count(*) FROM pgha_backup_t WHERE note = 'diff'", host=NODES[replica].address)[0][0] == 1000


def test_pgha_status_and_backup_fresh_report_a_backup_older_than_its_bound(cluster, salt_run_cli, salt_cli):
    fresh = salt_cli.run("state.single", "pgbackrest.backup_fresh", f"name={STANZA}", minion_tgt=BACKUP, _timeout=120)
    assert fresh.returncode == 0, fresh.stdout
    time.sleep(2)
    with pillar_override(salt_cli, {"pgha": {"backup": {"max_age": 1}}}):
        stale = salt_cli.run("state.single", "pgbackrest.backup_fresh", f"name={STANZA}",
                             minion_tgt=BACKUP, _timeout=120)
        assert stale.returncode != 0
        assert "longer than the bound of 1 s" in stale.stdout
        status = salt_run_cli.run("pgha.status", _timeout=120)
        assert status.returncode != 0
        assert any("older than pgha:backup:max_age (1 s)" in p for p in status.data["data"]["problems"]), \
            status.data["data"]["problems"]


def fingerprint() -> dict:
    """What a refused restore must leave as it was: each member's system identifier,
    postmaster start time, role and timeline. The timeline is the one Patroni reports (the
    one a member runs on), not pg_control_checkpoint()'s: a replica's control file only
    takes a new timeline at its next restartpoint, which may fall within the test."""
    states = workload.member_states(PG_NODES)
    out = {}
    for node in PG_NODES:
        row = sql("SELECT system_identifier, pg_postmaster_start_time()::text FROM pg_control_system()",
                  host=NODES[node].address)[0]
        state = states[node] or {}
        out[node] = (*row, state.get("role"), state.get("timeline"))
    return out


def test_a_restore_is_refused_by_name_and_the_running_cluster_is_untouched(cluster, salt_run_cli, salt_cli, lab):
    before = fingerprint()
    recent = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
    cases = {
        "no confirmation": ({"target_time": recent}, "pass confirm='pgha'"),
        "a target older than every backup": ({"target_time": "2001-01-01 00:00:00+00", "confirm": "pgha"},
                                             "no backup ended before 2001-01-01 00:00:00+00:00"),
    }
    for what, (pillar, message) in cases.items():
        refused = orchestrate(salt_run_cli, "orch.restore", pillar=pillar, timeout=180)
        assert refused.retcode != 0, what
        assert message in refused.comments(), (what, refused.comments())
    # The repository's server down: the node that would restore cannot reach it.
    lab.exec_(NODES[BACKUP], ["systemctl", "stop", "pgbackrest"], check=True)
    try:
        refused = orchestrate(salt_run_cli, "orch.restore", pillar={"confirm": "pgha"}, timeout=300)
    finally:
        lab.exec_(NODES[BACKUP], ["systemctl", "start", "pgbackrest"], check=True)
    assert refused.retcode != 0 and "pgha-orch-restore-stopped" not in {
        s["__id__"] for s in refused.states.values() if s.get("changes")}, refused.comments()
    assert "unable to connect" in refused.comments().lower() or "connection refused" in refused.comments().lower(), \
        refused.comments()
    # A wrong passphrase in the pillar: the repository cannot be decrypted.
    with pillar_override(salt_cli, {"pgha": {"backup": {"repo": {"cipher_pass": "not-the-passphrase"}}}}):
        refused = orchestrate(salt_run_cli, "orch.restore", pillar={"confirm": "pgha"}, timeout=180)
    assert refused.retcode != 0
    assert "the repository cannot be read" in refused.comments() or "stanza pgha:" in refused.comments(), \
        refused.comments()
    assert fingerprint() == before


def test_orch_restore_across_a_failover_brings_back_every_row_before_the_target_and_none_after(
        cluster, salt_run_cli, salt_cli):
    """The backups were taken on the old timeline; the leader then loses power, and the
    target lies after the failover: the restore follows the new primary's timeline, which
    it archived by itself."""
    with pg_connect() as conn:
        conn.execute("DROP TABLE IF EXISTS pgha_pitr")
        conn.execute("CREATE TABLE pgha_pitr (id int PRIMARY KEY)")
        conn.execute("INSERT INTO pgha_pitr SELECT generate_series(1, 100)")
    cut = faults.run_fault("leader_power_cut", SUPERUSER["password"])
    assert cut.healed and cut.lost == [] and cut.leader_after not in (None, cut.leader_before), cut.as_dict()
    rc, ok = call(salt_cli, "pgbackrest.check", minion=cut.leader_after)
    assert rc == 0 and ok is True, f"pgbackrest check on the new primary {cut.leader_after}: {ok}"
    with pg_connect() as conn:
        conn.execute("INSERT INTO pgha_pitr SELECT generate_series(101, 200)")
    time.sleep(1.5)
    target = sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")[0][0]
    time.sleep(1.5)
    with pg_connect() as conn:
        conn.execute("INSERT INTO pgha_pitr SELECT generate_series(201, 300)")
        conn.execute("DROP TABLE pgha_backup_t")
    before = {node: row for node, row in fingerprint().items()}
    start = time.monotonic()
    result = orchestrate(salt_run_cli, "orch.restore", pillar={"target_time": target, "confirm": "pgha"},
                         timeout=1200)
    assert result.retcode == 0, result.comments()
    FIGURES.append(f"orch.restore to a point in time, small cluster, until writes work: "
                   f"{time.monotonic() - start:.0f} s")
    assert sql("SELECT count(*), max(id) FROM pgha_pitr")[0] == (200, 200)
    assert sql("SELECT count(*) FROM pgha_backup_t WHERE note = 'diff'")[0][0] == 1000
    after = fingerprint()
    # The same system, on one new timeline on every member; and writes go through the VIP.
    assert {row[0] for row in after.values()} == {next(iter(before.values()))[0]}
    states = wait_for(lambda: (s := workload.member_states(PG_NODES)) and workload.healthy(s) and s,
                      300, "three members streaming")
    timelines = {st["timeline"] for st in states.values()}
    assert len(timelines) == 1 and timelines.pop() > max(row[3] for row in before.values()), states
    with pg_connect() as conn:
        conn.execute("INSERT INTO pgha_pitr VALUES (1000)")
    # The promoted member archives on its new timeline with no one touching it:
    # pgbackrest check switches a segment there and waits for it in the repository.
    new = workload.leader(states)
    rc, ok = call(salt_cli, "pgbackrest.check", minion=new)
    assert rc == 0 and ok is True, ok
    rc, archiver = call(salt_cli, "pgbackrest.archiver", minion=new)
    assert rc == 0 and not archiver["failing"], archiver
    assert int(archiver["last_archived_wal"][:8], 16) == max(st["timeline"] for st in states.values()), archiver


def test_orch_rebuild_is_refused_without_confirmation_and_with_it_bootstraps_an_empty_cluster(
        cluster, salt_run_cli, salt_cli):
    before = fingerprint()
    refused = orchestrate(salt_run_cli, "orch.rebuild", timeout=180)
    assert refused.retcode != 0 and "pass confirm='pgha'" in refused.comments(), refused.comments()
    assert fingerprint() == before
    rebuilt = orchestrate(salt_run_cli, "orch.rebuild", pillar={"confirm": "pgha"}, timeout=900)
    assert rebuilt.retcode == 0, rebuilt.comments()
    wait_for(lambda: workload.healthy(workload.member_states(PG_NODES)), 300, "a healthy rebuilt cluster")
    assert sql("SELECT count(*) FROM pg_tables WHERE tablename IN ('pgha_pitr', 'pgha_backup_t')")[0][0] == 0
    assert {row[0] for row in fingerprint().values()} != {next(iter(before.values()))[0]}
    with pg_connect() as conn:
        conn.execute("CREATE TABLE pgha_after_rebuild (id int)")
    # The repository follows the new cluster: its WAL is archived again.
    rc, ok = call(salt_cli, "pgbackrest.check")
    assert rc == 0 and ok is True, ok
