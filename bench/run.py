#!/usr/bin/env python3
"""pgha benchmark: rollout time, switchover and failover write gaps, lost writes per
fault, pgbench through the VIP against the leader directly, the throughput cost of
synchronous commit and of TLS each on its own, and leader power cuts under the named
profiles other than the lab's (rto norm and safe, rpo bounded).

    make bench            (or: .venv/bin/python bench/run.py)

It boots a fresh lab (the rollout is measured from bare nodes), so it replaces whatever
lab is running. Results: a table on stdout, bench/out/results.json,
bench/out/timeline.png (acknowledged writes per 100 ms around a switchover and a power
cut, with the fault and recovery marked) and bench/out/prometheus-timeline.png (role,
replay lag and commit rate per member around the first power cut, from Prometheus).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))

from pgha_lab import faults, lab, labpillar, tls, workload  # noqa: E402
from pgha_lab import master as lab_master  # noqa: E402
from pgha_lab.topology import NODES, VIP  # noqa: E402

BIN = REPO / ".venv" / "bin"
PILLAR = labpillar.raw()
PASSWORD = PILLAR["patroni"]["superuser"]["password"]
PG = faults.PG


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def salt_run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "salt-run"), *args], cwd=REPO, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"salt-run {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def salt(target: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "salt"), target, *args], cwd=REPO, capture_output=True, text=True)


def wait_healthy(timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not workload.healthy(workload.member_states(PG)):
        if time.monotonic() > deadline:
            raise SystemExit(f"cluster not healthy after {timeout}s: {workload.member_states(PG)}")
        time.sleep(1)


def timed_deploy() -> dict:
    log("fresh lab (bare nodes)")
    lab.up(with_master=True)
    log("orch.deploy from bare nodes")
    start = time.monotonic()
    salt_run("state.orchestrate", "orch.deploy")
    cold = time.monotonic() - start
    log(f"  {cold:.1f}s; no-change re-run")
    start = time.monotonic()
    salt_run("state.orchestrate", "orch.deploy")
    rerun = time.monotonic() - start
    return {"from_bare_nodes_s": round(cold, 1), "no_change_rerun_s": round(rerun, 1)}


def switchover_gap(multi_host: str) -> dict:
    """One orch.switchover under two writers: through the VIP, and on the libpq
    multi-host string (no proxy)."""
    wait_healthy()
    start_id = workload.prepare_table(PASSWORD)
    writer = workload.Writer(PASSWORD, start_id=start_id)
    direct = workload.Writer(PASSWORD, start_id=start_id + 10**9, conninfo=multi_host)
    writer.start()
    direct.start()
    time.sleep(2)
    t0 = time.monotonic()
    salt_run("state.orchestrate", "orch.switchover")
    time.sleep(2)
    writer.stop()
    direct.stop()
    gap, before, after = workload.longest_gap(writer.acks, t0)
    lost = workload.missing_rows(PASSWORD, [a.id for a in writer.acks + direct.acks])
    timeline = workload.Timeline(origin=before, acks=[a.acked for a in writer.acks],
                                 marks={"last write before": 0.0, "first write after": after - before})
    return {"gap": round(gap, 3), "lost": len(lost), "acked": len(writer.acks),
            "multi_host_gap": round(workload.longest_gap(direct.acks, t0)[0], 3),
            "multi_host_acked": len(direct.acks),
            "split_brain": workload.client_split_brain(writer.acks),
            "timeline": {"bins": timeline.bins(), "marks": timeline.marks}}


def keep_etcd_leader_apart(ttl: int) -> None:
    """What orch.deploy, orch.switchover and the role-change reaction do after a leader
    change. A move renews every etcd lease, so wait a full ttl before the next cut: the
    Patroni leader's lease must be at a natural point of its renewal cycle."""
    leader = workload.leader(workload.member_states(PG))
    out = salt(leader, "state.apply", "pgha.etcd.leader", "--out=json").stdout
    if '"etcd_leader"' in out:
        log(f"  etcd leadership moved off {leader}; waiting {ttl + 2}s")
        time.sleep(ttl + 2)


def put_etcd_leader_on_primary(ttl: int) -> None:
    """The case pgha avoids, forced to show what it costs: etcd's leader on the Patroni
    primary, so that one power cut loses both leaders. Then a full ttl, as above."""
    leader = workload.leader(workload.member_states(PG))
    proc = salt(leader, "etcd3.move_leader", f"to={leader}", "--out=json")
    if proc.returncode != 0:
        raise SystemExit(f"etcd3.move_leader to={leader} failed:\n{proc.stdout}\n{proc.stderr}")
    if workload.etcd_leader(PG) != leader:
        raise SystemExit(f"etcd's leader is {workload.etcd_leader(PG)}, not {leader}, after the move")
    log(f"  etcd leadership put on the primary {leader}; waiting {ttl + 2}s")
    time.sleep(ttl + 2)


def fault_run(kind: str, ttl: int, multi_host: str | None = None, etcd_leader_on_primary: bool = False) -> dict:
    wait_healthy()
    if etcd_leader_on_primary:
        put_etcd_leader_on_primary(ttl)
    elif kind == "leader_power_cut":
        keep_etcd_leader_apart(ttl)
    etcd_leader = workload.etcd_leader(PG)
    report = faults.run_fault(kind, PASSWORD, multi_host=multi_host).as_dict()
    report["etcd_leader_on_victim"] = etcd_leader in report["victims"]
    return report


def pgbench_init(flags: list[str], env: dict, scale: int) -> None:
    subprocess.run(["pgbench", "-U", "postgres", *flags, "-i", "-s", str(scale), "-q"], env=env,
                   check=True, capture_output=True)


def pgbench_tps(flags: list[str], env: dict, seconds: int, clients: int) -> float:
    proc = subprocess.run(["pgbench", "-U", "postgres", *flags, "-c", str(clients), "-j", "2",
                           "-T", str(seconds), "-M", "prepared", "-n"],
                          env=env, capture_output=True, text=True, check=True)
    return float(re.search(r"tps = ([\d.]+)", proc.stdout).group(1))


def pgbench(leader_address: str, multi_host: str, seconds: int, clients: int, rounds: int) -> dict:
    """TPS straight to the leader, through the VIP, and on the libpq multi-host string,
    the three paths alternating (reversed every other round) *rounds* times per mode, so
    that drift on a shared 2-core host hits all alike; medians and ratios to direct."""
    env = dict(os.environ, PGPASSWORD=PASSWORD)
    log("  pgbench -i (scale 10)")
    pgbench_init(["-h", VIP, "-p", "5432", "-d", "postgres"], env, 10)
    paths = {"direct": ["-h", leader_address, "-p", "5432", "-d", "postgres"],
             "vip": ["-h", VIP, "-p", "5432", "-d", "postgres"],
             # pgbench takes a conninfo string where the database name goes.
             "multi_host": ["-d", f"{multi_host} dbname=postgres sslrootcert={tls.client()['ca']}"]}
    results = {}
    for mode, flags in (("select-only", ["-S"]), ("tpcb-like", [])):
        samples: dict[str, list[float]] = {path: [] for path in paths}
        for i in range(rounds):
            for path in (list(paths) if i % 2 == 0 else list(reversed(paths))):
                samples[path].append(pgbench_tps([*paths[path], *flags], env, seconds, clients))
        medians = {path: statistics.median(v) for path, v in samples.items()}
        results[mode] = {**{path: round(m, 1) for path, m in medians.items()},
                         "ratio": round(medians["vip"] / medians["direct"], 3),
                         "multi_host_ratio": round(medians["multi_host"] / medians["direct"], 3),
                         "samples": samples}
        log(f"  {mode}: direct {medians['direct']:.0f}, vip {medians['vip']:.0f} "
            f"({results[mode]['ratio']:.3f}), multi-host {medians['multi_host']:.0f} "
            f"({results[mode]['multi_host_ratio']:.3f}) tps")
    return results


def apply_pillar(over: dict | None) -> None:
    """Lay *over* on the lab pillar (None takes it back, as the tests' pillar_override
    does) and apply it with a highstate everywhere, then wait for the cluster."""
    path = lab_master.PILLAR_OVERRIDE_FILE
    if over is None:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(over))  # JSON is YAML
    for args in (("saltutil.refresh_pillar", "wait=True"), ("state.highstate", "queue=True", "--state-verbose=False")):
        proc = salt("*", *args, "-t", "300")
        if proc.returncode != 0:
            raise SystemExit(f"salt '*' {' '.join(args)} with pillar {over} failed:\n{proc.stdout}\n{proc.stderr}")
    wait_healthy()


def guarantee_costs(seconds: int, clients: int, rounds: int) -> dict:
    """tpcb-like straight to the leader with and without each of pgha's two guarantees:
    waiting for the synchronous standby (per session, synchronous_commit=local) and TLS
    (pg_hba admits plain TCP for the measurement: pgha:postgres:require_ssl false, taken
    back afterwards). The four variants alternate, reversed every other round."""
    variants = {"sync, TLS (pgha)": ("require", "on"), "async, TLS": ("require", "local"),
                "sync, plain": ("disable", "on"), "async, plain": ("disable", "local")}
    apply_pillar({"pgha": {"postgres": {"require_ssl": False}}})
    try:
        leader = workload.leader(workload.member_states(PG))
        flags = ["-h", NODES[leader].address, "-p", "5432", "-d", "postgres"]
        base_env = dict(os.environ, PGPASSWORD=PASSWORD)
        pgbench_init(flags, base_env, 10)
        samples: dict[str, list[float]] = {v: [] for v in variants}
        for i in range(rounds):
            for name in (list(variants) if i % 2 == 0 else list(reversed(variants))):
                sslmode, commit = variants[name]
                env = dict(base_env, PGSSLMODE=sslmode, PGOPTIONS=f"-c synchronous_commit={commit}")
                samples[name].append(pgbench_tps(flags, env, seconds, clients))
    finally:
        apply_pillar(None)
    medians = {v: statistics.median(s) for v, s in samples.items()}
    top = medians["async, plain"]
    result = {v: {"tps": round(m, 1), "of_async_plain": round(m / top, 3), "samples": samples[v]}
              for v, m in medians.items()}
    log("  " + ", ".join(f"{v}: {m:.0f} tps" for v, m in medians.items()))
    return result


def profile_runs(runs: int, multi_host: str, results: dict) -> dict:
    """Leader power cuts under each named profile other than the lab's (rto norm and
    safe, rpo bounded), the profile laid over the lab pillar and applied by highstate:
    its RTO (the write gap) and RPO (acknowledged writes lost), into *results* as each
    profile finishes (a later failure keeps the earlier ones)."""
    try:
        for axis, name in (("rto", "norm"), ("rto", "safe"), ("rpo", "bounded")):
            apply_pillar({"pgha": {"profile": {axis: name}}})
            dcs = salt_json(PG[0], "pgha.config")["patroni"]["dcs"]
            log(f"  profile {axis} {name}: ttl {dcs['ttl']}, synchronous_mode {dcs['synchronous_mode']}; "
                f"{runs} leader power cuts")
            cuts = []
            for i in range(runs):
                cuts.append(fault_run("leader_power_cut", dcs["ttl"], multi_host))
                log(f"    power cut {i + 1}: gap {cuts[-1]['write_gap']:.2f}s, lost {len(cuts[-1]['lost'])}")
            results[f"{axis} {name}"] = {
                "ttl": dcs["ttl"], "loop_wait": dcs["loop_wait"], "retry_timeout": dcs["retry_timeout"],
                "synchronous_mode": dcs["synchronous_mode"],
                "summary": workload.summary([r["write_gap"] for r in cuts]),
                "lost": [len(r["lost"]) for r in cuts], "acked": [r["acked"] for r in cuts]}
    except BaseException as exc:
        # Named before the pillar is put back, which may fail on its own.
        log(f"  profile run failed: {exc}")
        raise
    finally:
        apply_pillar(None)
    return results


def salt_json(target: str, *args: str):
    proc = subprocess.run([str(BIN / "salt"), target, *args, "--out=json", "--static"], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"salt {target} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout)[target]


def orch(sls: str, pillar: dict) -> float:
    start = time.monotonic()
    salt_run("state.orchestrate", sls, f"pillar={json.dumps(pillar)}")
    return round(time.monotonic() - start, 1)


def backup_figures(scale: int, load_seconds: int) -> dict:
    """pgBackRest with pgbench -i -s *scale*: the full backup's time and size, a
    differential after *load_seconds* of pgbench, archive lag under that load (how long
    a finished WAL segment waits before pg_stat_archiver has it), and a point-in-time
    restore of the cluster until writes work through the VIP."""
    env = dict(os.environ, PGPASSWORD=PASSWORD)
    through_vip = ["-d", "postgres", "-h", VIP, "-p", "5432"]
    base = ["pgbench", "-U", "postgres", *through_vip]
    log(f"  pgbench -i -s {scale}")
    pgbench_init(through_vip, env, scale)
    size = int(sql_scalar("SELECT pg_database_size('postgres')"))
    out = {"scale": scale, "database_bytes": size}
    out["full_s"] = orch("orch.backup", {"type": "full"})
    info = salt_json("backup-01", "pgbackrest.summary")
    out["full_repo_bytes"] = info["latest"]["full"]["repo_size"]
    out["full_bytes"] = info["latest"]["full"]["size"]
    log(f"  full: {out['full_s']} s, {out['full_bytes']} B -> {out['full_repo_bytes']} B in the repository")
    log(f"  pgbench tpcb-like for {load_seconds} s, archive lag sampled")
    bench = subprocess.Popen([*base, "-c", "4", "-j", "2", "-T", str(load_seconds), "-n"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A segment is finished when the current one moves past it; it is archived when
    # pg_stat_archiver's last_archived_wal reaches it. The wait is the time between.
    finished, waits = {}, []
    previous = None
    while bench.poll() is None:
        current, archived = (sql_scalar("SELECT pg_walfile_name(pg_current_wal_lsn()) || ' ' || "
                                        "coalesce(last_archived_wal, '') FROM pg_stat_archiver").split(" ") + [""])[:2]
        now = time.monotonic()
        if previous and current != previous:
            finished.setdefault(previous, now)
        for segment in [seg for seg in finished if archived and seg[8:] <= archived[8:]]:
            waits.append(now - finished.pop(segment))
        previous = current
        time.sleep(0.5)
    out["archive_lag"] = {"segments": len(waits),
                          "median_s": round(statistics.median(waits), 2) if waits else None,
                          "max_s": round(max(waits), 2) if waits else None}
    log(f"  archive lag: {out['archive_lag']}")
    out["diff_s"] = orch("orch.backup", {"type": "diff"})
    info = salt_json("backup-01", "pgbackrest.summary")
    out["diff_repo_bytes"] = info["latest"]["diff"]["repo_size"]
    log(f"  diff: {out['diff_s']} s, {out['diff_repo_bytes']} B in the repository")
    target = sql_scalar("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00'")
    time.sleep(1)
    sql_scalar("SELECT count(*) FROM pgbench_accounts")
    start = time.monotonic()
    salt_run("state.orchestrate", "orch.restore", f"pillar={json.dumps({'target_time': target, 'confirm': 'pgha'})}")
    wait_healthy(600)
    sql_scalar("CREATE TABLE IF NOT EXISTS bench_after_restore (id int)")
    out["restore_s"] = round(time.monotonic() - start, 1)
    log(f"  restore to {target}: {out['restore_s']} s until writes work through the VIP")
    return out


def sql_scalar(query: str):
    import psycopg
    with psycopg.connect(host=VIP, port=5432, user="postgres", password=PASSWORD, dbname="postgres",
                         autocommit=True, sslmode="require", connect_timeout=10) as conn:
        cur = conn.execute(query)
        row = cur.fetchone() if cur.description else None  # DDL returns no rows
    return row[0] if row else None


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("planned switchover (orch.switchover)", results["switchover"]["runs"][0]["timeline"]),
              ("leader power cut (pgha-lab kill)", results["power_cut"]["runs"][0]["timeline"])]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.2 * len(panels)))
    for ax, (title, tl) in zip(axes, panels):
        xs = [b[0] for b in tl["bins"]]
        ys = [b[1] for b in tl["bins"]]
        ax.bar(xs, ys, width=0.1, align="edge", color="#3b6ea5")
        for i, (name, at) in enumerate(sorted(tl["marks"].items(), key=lambda kv: kv[1])):
            ax.axvline(at, color=f"C{i + 1}", linestyle="--", linewidth=1)
            ax.text(at, max(ys or [1]) * (0.95 - 0.12 * i), f" {name} ({at:.1f}s)", fontsize=8,
                    color=f"C{i + 1}")
        ax.set_title(title)
        ax.set_xlabel("seconds from the fault")
        ax.set_ylabel("acknowledged writes / 100 ms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


PROM_SERIES = {
    # What each member says it is: 1 primary, 0 replica (absent while it is down).
    "role (1 = primary)": "patroni_primary",
    "replay lag behind the primary (bytes)":
        "scalar(max(patroni_xlog_location and on (instance) (patroni_primary == 1)))"
        " - (patroni_xlog_replayed_location and on (instance) (patroni_replica == 1))",
    "commits per second": 'sum by (member) (rate(pg_stat_database_xact_commit{datname="postgres"}[15s]))',
}


def prometheus_series(start: float, end: float) -> dict:
    """Each PROM_SERIES query over [start, end] from the monitor node's Prometheus, per
    member: {title: {member: [(seconds from start, value)]}}; {} without a monitor node."""
    import requests
    cfg = labpillar.merged()
    monitors = [n for n, node in cfg["nodes"].items() if "monitor" in node["roles"]]
    if not monitors:
        return {}
    port = cfg["monitoring"]["prometheus"]["port"]
    out = {}
    for title, query in PROM_SERIES.items():
        resp = requests.get(f"https://{NODES[monitors[0]].address}:{port}/api/v1/query_range",
                            params={"query": query, "start": start, "end": end, "step": "2s"},
                            timeout=30, verify=tls.client()["ca"])
        resp.raise_for_status()
        out[title] = {r["metric"].get("member", "?"): [(float(t) - start, float(v)) for t, v in r["values"]]
                      for r in resp.json()["data"]["result"]}
    return out


def plot_prometheus(series: dict, fault_at: float, path: Path, title: str) -> None:
    """The failover as Prometheus recorded it: role, lag and commit rate per member."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(series), 1, figsize=(11, 2.8 * len(series)), sharex=True)
    for ax, (name, members) in zip(axes, series.items()):
        for member, points in sorted(members.items()):
            ax.step([p[0] for p in points], [p[1] for p in points], where="post", label=member)
        ax.axvline(fault_at, color="red", linestyle="--", linewidth=1)
        ax.set_ylabel(name, fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_title(f"{title}: Prometheus' own series (red: the fault)")
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def table(results: dict) -> str:
    """The figures of every section this run (or an earlier one in results.json) has."""
    dcs = results["settings"]["patroni_dcs"]
    median_bound = dcs["ttl"] - dcs["loop_wait"] / 2 + 2
    bound = dcs["ttl"] + 2
    rows = []
    if "deploy" in results:
        rows += [("orch.deploy from bare nodes", f"{results['deploy']['from_bare_nodes_s']} s", "<= 300 s"),
                 ("orch.deploy no-change re-run", f"{results['deploy']['no_change_rerun_s']} s", "")]
    if "switchover" in results:
        sw, mh = results["switchover"]["summary"], results["switchover"].get("multi_host_summary")
        rows.append((f"switchover write gap, VIP (n={sw['n']})",
                     f"median {sw['median']:.2f} s, max {sw['max']:.2f} s", "<= 1.5 s median, <= 2.0 s max"))
        if mh:
            rows.append((f"switchover write gap, multi-host string (n={mh['n']})",
                         f"median {mh['median']:.2f} s, max {mh['max']:.2f} s", ""))
    for section, what in (("power_cut", "etcd leader elsewhere"), ("power_cut_same_etcd", "etcd leader on it too")):
        if section not in results:
            continue
        pc, mh = results[section]["summary"], results[section].get("multi_host_summary")
        target = f"<= {median_bound:.1f} s median, <= {bound:.1f} s max" if section == "power_cut" else "(forced, for contrast)"
        rows.append((f"leader power cut, {what}, VIP (n={pc['n']})",
                     f"median {pc['median']:.2f} s, min {pc['min']:.2f} s, max {pc['max']:.2f} s", target))
        if mh:
            rows.append((f"leader power cut, {what}, multi-host (n={mh['n']})",
                         f"median {mh['median']:.2f} s, min {mh['min']:.2f} s, max {mh['max']:.2f} s", ""))
    for kind, r in results.get("faults", {}).items():
        rows.append((f"fault {kind}", f"lost {len(r['lost'])} of {r['acked']}, gap {r['write_gap']:.2f} s, "
                     f"split brain {len(r['client_split_brain']) + len(r['node_split_brain'])}, "
                     f"healed {'yes' if r['healed'] else 'NO'}", "lost 0, split 0"))
    if "backup" in results:
        b = results["backup"]
        rows += [(f"full backup, pgbench scale {b['scale']} ({b['database_bytes'] / 2**30:.2f} GiB)",
                  f"{b['full_s']} s, {b['full_repo_bytes'] / 2**20:.0f} MiB in the repository", ""),
                 ("differential after the pgbench load", f"{b['diff_s']} s, {b['diff_repo_bytes'] / 2**20:.0f} MiB", ""),
                 ("archive lag under pgbench (finished segment to archived)",
                  f"median {b['archive_lag']['median_s']} s, max {b['archive_lag']['max_s']} s over "
                  f"{b['archive_lag']['segments']} segments", ""),
                 ("orch.restore to a point in time, until writes work", f"{b['restore_s']} s", "")]
    for mode, r in results.get("pgbench", {}).items():
        rows.append((f"pgbench {mode} tps (vip / direct)", f"{r['vip']} / {r['direct']} = {r['ratio']}",
                     ">= 0.80" if mode == "select-only" else ">= 0.90"))
        if "multi_host" in r:
            rows.append((f"pgbench {mode} tps (multi-host / direct)",
                         f"{r['multi_host']} / {r['direct']} = {r['multi_host_ratio']}", ""))
    for variant, r in results.get("costs", {}).items():
        rows.append((f"pgbench tpcb-like direct, {variant}", f"{r['tps']} tps = {r['of_async_plain']} of async, plain", ""))
    for profile, r in results.get("profiles", {}).items():
        pc = r["summary"]
        rows.append((f"profile {profile}: leader power cut (n={pc['n']}, ttl {r['ttl']})",
                     f"median {pc['median']:.2f} s, max {pc['max']:.2f} s, lost {sum(r['lost'])} of {sum(r['acked'])}",
                     f"<= {r['ttl'] - r['loop_wait'] / 2 + 2:.1f} s median"))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'figure':<{width}}  {'measured':<58}  target", "-" * (width + 80)]
    lines += [f"{a:<{width}}  {b:<58}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="switchovers and power cuts (>= 5)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"))
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--pgbench-clients", type=int, default=4)
    parser.add_argument("--pgbench-rounds", type=int, default=4,
                        help="alternating rounds of the three paths per pgbench mode")
    parser.add_argument("--backup-scale", type=int, default=100)
    parser.add_argument("--backup-load-seconds", type=int, default=300)
    parser.add_argument("--profile-runs", type=int, default=3, help="power cuts per named profile")
    parser.add_argument("--only", default="deploy,switchover,power_cut,power_cut_same_etcd,faults,pgbench,costs,"
                                          "profiles,backup",
                        help="comma-separated sections to run; the others keep their values "
                             "from an earlier results.json (without deploy, the running lab is used)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}

    deployed = None
    if "deploy" in only:
        deployed = timed_deploy()
    else:
        lab.start_master()  # and wait for (or recover) the running minions
    # The settings as map.jinja resolves them (defaults, the rto/rpo profile, pillar).
    cfg = salt_json(PG[0], "pgha.config")
    dcs, haproxy = cfg["patroni"]["dcs"], cfg["haproxy"]["check"]
    multi_host = cfg["client_conninfo"]["writer"]
    results = {"settings": {"profile": cfg["profile"],
                            "patroni_dcs": {k: dcs[k] for k in ("ttl", "loop_wait", "retry_timeout",
                                                                 "primary_start_timeout",
                                                                 "synchronous_mode", "failsafe_mode")},
                            "haproxy_check": haproxy, "haproxy_timeout_connect": cfg["haproxy"]["timeout"]["connect"],
                            "keepalived_advert_int": cfg["keepalived"]["advert_int"]},
               "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    results = {**previous, **results}

    def save() -> None:
        # After every section, so that a failure later keeps what was measured.
        (out / "results.json").write_text(json.dumps(results, indent=2))
    if deployed:
        results["deploy"] = deployed

    if "switchover" in only:
        log(f"{args.runs} switchovers")
        runs = []
        for i in range(args.runs):
            runs.append(switchover_gap(multi_host))
            log(f"  switchover {i + 1}: gap {runs[-1]['gap']:.2f}s (multi-host {runs[-1]['multi_host_gap']:.2f}s), "
                f"lost {runs[-1]['lost']}")
        results["switchover"] = {"summary": workload.summary([r["gap"] for r in runs]),
                                 "multi_host_summary": workload.summary([r["multi_host_gap"] for r in runs]),
                                 "runs": runs}
        save()

    for section, on_primary in (("power_cut", False), ("power_cut_same_etcd", True)):
        if section not in only:
            continue
        log(f"{args.runs} leader power cuts, etcd's leader {'on the same node' if on_primary else 'elsewhere'}")
        runs = []
        for i in range(args.runs):
            runs.append(fault_run("leader_power_cut", dcs["ttl"], multi_host, etcd_leader_on_primary=on_primary))
            log(f"  power cut {i + 1}: gap {runs[-1]['write_gap']:.2f}s "
                f"(multi-host {runs[-1]['multi_host']['write_gap']:.2f}s), lost {len(runs[-1]['lost'])}, "
                f"etcd leader on the victim: {runs[-1]['etcd_leader_on_victim']}")
        results[section] = {"summary": workload.summary([r["write_gap"] for r in runs]),
                            "multi_host_summary": workload.summary([r["multi_host"]["write_gap"] for r in runs]),
                            "etcd_leader_on_victim": sum(r["etcd_leader_on_victim"] for r in runs),
                            "runs": runs}
        save()

    if "faults" in only:
        log("every fault kind once (the power cut's first run stands for its kind)")
        results["faults"] = {"leader_power_cut": results["power_cut"]["runs"][0]}
        for kind in faults.FAULTS:
            if kind != "leader_power_cut":
                results["faults"][kind] = fault_run(kind, dcs["ttl"])
                log(f"  {kind}: gap {results['faults'][kind]['write_gap']:.2f}s, "
                    f"lost {len(results['faults'][kind]['lost'])}")
                save()

    if "pgbench" in only:
        log("pgbench")
        wait_healthy()
        leader = workload.leader(workload.member_states(PG))
        results["pgbench"] = pgbench(NODES[leader].address, multi_host, args.pgbench_seconds,
                                     args.pgbench_clients, args.pgbench_rounds)
        results["pgbench_settings"] = {"seconds": args.pgbench_seconds, "clients": args.pgbench_clients,
                                       "threads": 2, "scale": 10, "protocol": "prepared",
                                       "rounds": args.pgbench_rounds, "statistic": "median of alternating runs"}
        save()

    if "costs" in only:
        log("the cost of synchronous commit and of TLS, each on its own")
        wait_healthy()
        results["costs"] = guarantee_costs(args.pgbench_seconds, args.pgbench_clients, args.pgbench_rounds)
        save()

    if "profiles" in only:
        log("the named profiles")
        wait_healthy()
        results["profiles"] = {}
        save()
        try:
            profile_runs(args.profile_runs, multi_host, results["profiles"])
        finally:
            save()

    if "backup" in only:
        log("backups: pgBackRest")
        wait_healthy()
        results["backup"] = backup_figures(args.backup_scale, args.backup_load_seconds)

    save()
    if "switchover" in results and "power_cut" in results:
        plot(results, out / "timeline.png")
    if results.get("power_cut", {}).get("runs"):
        first = results["power_cut"]["runs"][0]
        series = prometheus_series(first["fault_epoch"] - 30, first["fault_epoch"] + 90)
        if series:
            plot_prometheus(series, 30, out / "prometheus-timeline.png",
                            f"leader power cut of {', '.join(first['victims'])}")
    print(table(results))
    print(f"\nresults: {out / 'results.json'}   plot: {out / 'timeline.png'}")
    lost = sum(len(r["lost"]) for r in results.get("faults", {}).values())
    for section in ("power_cut", "power_cut_same_etcd"):
        lost += sum(len(r["lost"]) + len((r.get("multi_host") or {}).get("lost", []))
                    for r in results.get(section, {}).get("runs", []))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
