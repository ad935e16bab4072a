"""Shared fixtures: one Salt master for the whole session, started by pytest-salt-factories
from the lab's own master configuration, talking to the real minions in the lab nodes.

`make test` boots the nodes first (`pgha-lab up --no-master`); the tests never mock a
service. Test files are numbered: they run in order, and later ones build on the cluster
the earlier ones deployed.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import yaml
from saltjobs import SaltJobs

from pgha_lab import labpillar, workload
from pgha_lab import master as lab_master
from pgha_lab import node as lab_node
from pgha_lab.topology import BRIDGE, MASTER_CONFIG_DIR, NODES, VIP, default_nodes, members

LAB_MINIONS = [n.name for n in default_nodes()]
PG_NODES = members("postgres")
HAPROXY_NODES = members("haproxy")
# The lab pillar with every secret, as the operator on the host reads it (plain YAML).
PILLAR = labpillar.raw()
SUPERUSER = PILLAR["patroni"]["superuser"]


# Figures measured along the way (rollout time, the deb-to-pip switch), printed at the end
# of the run so that a make test log carries them.
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("pgha: measured in this run")
        for line in FIGURES:
            terminalreporter.write_line(line)


def pytest_unconfigure(config):
    # Salt's log handlers outlive pytest's captured streams and print a harmless
    # "I/O operation on closed file" at exit; drop them, and stay quiet about the rest.
    logging.getLogger().handlers.clear()
    logging.raiseExceptions = False


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    """Poll until *predicate* returns something truthy; fail the test naming *what*."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def wait_settled(find, timeout: float, settle: float, failure, poll=lambda found: 1.0) -> None:
    """Until *find*() returns nothing, and still nothing *settle* seconds later (a step
    between two others shows nothing for a moment). After *timeout* seconds the test
    fails with failure(what find returned last); poll(found) is the pause between looks."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while True:
        found = find()
        now = time.monotonic()
        if found:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= settle:
            return
        if now > deadline:
            pytest.fail(failure(found))
        time.sleep(poll(found))


def lab_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the `pgha-lab` console script, as an operator would."""
    exe = Path(sys.executable).with_name("pgha-lab")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def lab_is_up():
    down = [n.name for n in default_nodes() if not lab_node.is_running(n)]
    if down:
        pytest.exit(f"lab nodes not running: {', '.join(down)}; run `make test` "
                    "(or `.venv/bin/pgha-lab up --no-master` before pytest)", returncode=2)


@pytest.fixture(scope="session")
def master(salt_factories, lab_is_up):
    """The lab master, started once with the same configuration as `make lab`'s daemon."""
    lab_master.stop_master()  # `make lab`'s daemon would hold the same ports
    lab_master.write_master_config()
    config = lab_master.master_config()
    # Salt prefixes root_dir to every path; the lab's paths are absolute already.
    config.update(root_dir="/", token_dir=str(lab_master.MASTER_ROOT / "tokens"))
    factory = salt_factories.salt_master_daemon(config["id"], overrides=config)
    with factory.started(start_timeout=120):
        # salt-api beside it: Alertmanager's webhook (pgha/alert/prometheus/* events). Not
        # saltfactories' SaltApi, which waits for the port on localhost: it listens on
        # the bridge only.
        lab_master.start_api(Path(factory.config_dir))
        try:
            yield factory
        finally:
            lab_master.stop_api()


@pytest.fixture(scope="session")
def salt_cli(master):
    """`salt` bounded by the job cache (tests/saltjobs.py): `.run(fun, *args, minion_tgt=...,
    tgt_type=..., _timeout=...)` returns as soon as every targeted minion has returned."""
    return SaltJobs(master.config_file)


@pytest.fixture(scope="session")
def salt_run_cli(master):
    return master.salt_run_cli(timeout=900)


def salt_data(ret, targets: list[str]) -> dict:
    """Per-minion data of a salt_cli run: {minion: return}, None for a minion that did not return."""
    return {name: ret.data.get(name) for name in targets}


def ping(salt_cli, targets: list[str]) -> dict:
    """{minion: True} for each minion that answered test.ping, False for the others."""
    ret = salt_cli.run("test.ping", minion_tgt=",".join(targets), tgt_type="list", _timeout=8,
                       recover=False)
    return {name: value is True for name, value in salt_data(ret, targets).items()}


def wait_for_minions(salt_cli, names: list[str]) -> None:
    """Wait for *names* to answer test.ping; a minion still silent after 45 s is restarted
    once (Salt 3007 minions sometimes wedge after a master restart, see
    pgha_lab.master.restart_minions)."""
    def silent():
        return [n for n, ok in ping(salt_cli, names).items() if not ok]
    try:
        wait_for(lambda: not silent(), 45, f"{', '.join(names)} to answer test.ping")
    except pytest.fail.Exception:
        lab_master.restart_minions(silent())
        wait_for(lambda: not silent(), 120, f"{', '.join(names)} to answer test.ping")


@pytest.fixture(scope="session")
def minions(salt_cli):
    """All lab minions connected to the session's master."""
    wait_for_minions(salt_cli, LAB_MINIONS)
    return LAB_MINIONS


@pytest.fixture(scope="session")
def lab(lab_is_up):
    """The lab's own API (pgha_lab.node), for power cuts, isolation and commands in nodes."""
    return lab_node


@pytest.fixture(scope="session")
def nodes():
    return NODES


@pytest.fixture(scope="session")
def saltfile_dir():
    return MASTER_CONFIG_DIR


# ---- PostgreSQL as a client sees it -----------------------------------------------------

def pg_connect(host: str = VIP, port: int = 5432, dbname: str = "postgres", *,
               user: str | None = None, password: str | None = None, timeout: int = 5,
               autocommit: bool = True, **kwargs) -> psycopg.Connection:
    return psycopg.connect(host=host, port=port, dbname=dbname,
                           user=user or SUPERUSER.get("username", "postgres"),
                           password=password or SUPERUSER["password"],
                           connect_timeout=timeout, autocommit=autocommit, **kwargs)


def sql(query: str, *params, host: str = VIP, port: int = 5432, dbname: str = "postgres"):
    with pg_connect(host, port, dbname) as conn:
        return conn.execute(query, params or None).fetchall()


@contextlib.contextmanager
def foreign_namespace(address: str):
    """A network namespace on the lab bridge with an address no pillar network covers."""
    ns, host_if, ns_if = "pgha-probe", "pgha-probe-h", "pgha-probe-n"
    run = lambda *a: subprocess.run(["ip", *a], check=True, capture_output=True)  # noqa: E731
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "link", "del", host_if], capture_output=True)
    run("netns", "add", ns)
    try:
        run("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        run("link", "set", ns_if, "netns", ns)
        run("link", "set", host_if, "master", BRIDGE, "up")
        run("-n", ns, "addr", "add", f"{address}/24", "dev", ns_if)
        run("-n", ns, "link", "set", ns_if, "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)



# For probe_from: connect to each host given after the password; print the outcome.
CONNECT_PROBE = ("import psycopg, sys\n"
                 "for host in sys.argv[2:]:\n"
                 "    try:\n"
                 "        psycopg.connect(host=host, user='postgres', password=sys.argv[1],"
                 " dbname='postgres', connect_timeout=5).close(); print(host, 'CONNECTED')\n"
                 "    except psycopg.OperationalError as exc: print(host, str(exc).replace('\\n', ' '))\n")


def probe_from(address: str, script: str, *args: str, timeout: float = 60) -> str:
    """Run a Python *script* (with *args*) from a network namespace on the lab bridge
    that holds *address*, an address no pillar network covers; return its stdout."""
    import sys
    with foreign_namespace(address) as ns:
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script, *args],
                              capture_output=True, text=True, timeout=timeout).stdout


# ---- orchestration ----------------------------------------------------------------------

@dataclass
class OrchResult:
    retcode: int
    states: dict = field(default_factory=dict)
    raw: object = None
    seconds: float = 0.0

    @property
    def changed(self) -> list[str]:
        return [s["__id__"] for s in self.states.values() if s.get("changes")]

    @property
    def failed(self) -> list[str]:
        return [s["__id__"] for s in self.states.values() if s.get("result") is False]

    def by_id(self, state_id: str) -> dict:
        """The return of the orchestration state *state_id*."""
        found = [s for s in self.states.values() if s.get("__id__") == state_id]
        assert found, f"{state_id} did not run: {self.comments()}"
        return found[0]

    def comments(self) -> str:
        """Each step's comment, and under a failed salt.state step the comment of every
        state that failed on each minion (what the operator reads to know why)."""
        lines = []
        for s in self.states.values():
            lines.append(f"{s['__id__']}: {s.get('comment')}")
            per_minion = (s.get("changes") or {}).get("ret") if s.get("result") is False else None
            for minion, rets in sorted((per_minion or {}).items()):
                for ret in (rets.values() if isinstance(rets, dict) else []):
                    if isinstance(ret, dict) and ret.get("result") is False:
                        lines.append(f"  {minion} {ret.get('__id__')}: {ret.get('comment')}")
        return "\n".join(lines)


def orchestrate(salt_run_cli, sls: str, pillar: dict | None = None, timeout: int = 600) -> OrchResult:
    """Run an orchestration; a run that outlasts *timeout* fails the test with what every
    minion is still running (job ids), not with a bare timeout."""
    from pytestshellutils.exceptions import FactoryTimeout
    args = ["state.orchestrate", sls]
    if pillar:
        import json
        args.append(f"pillar={json.dumps(pillar)}")
    start = time.monotonic()
    try:
        ret = salt_run_cli.run(*args, _timeout=timeout)
    except FactoryTimeout:
        running = SaltJobs(str(MASTER_CONFIG_DIR / "master")).running()
        pytest.fail(f"salt-run state.orchestrate {sls} did not finish within {timeout}s; "
                    f"jobs still running on the minions: {running or 'none'}")
    seconds = time.monotonic() - start
    data = ret.data if isinstance(ret.data, dict) else {}
    states = {}
    for per_master in (data.get("data") or {}).values():
        if isinstance(per_master, dict):
            states.update(per_master)
    retcode = data.get("retcode", ret.returncode) if data else ret.returncode
    return OrchResult(retcode=retcode, states=states, raw=ret.stdout or ret.data, seconds=seconds)


@pytest.fixture(scope="session")
def deploy(salt_run_cli, salt_cli, minions):
    """orch.deploy from whatever state the nodes are in (bare, in `make test`), once,
    with Debian's Patroni (install_method: deb): every make test deploys that way too,
    before the rolling switch to the lab's default (`switched`)."""
    with pillar_override(salt_cli, {"pgha": {"patroni": {"install_method": "deb"}}}):
        result = orchestrate(salt_run_cli, "orch.deploy", timeout=480)
        assert result.retcode == 0 and not result.failed, result.comments() or result.raw
        result.versions = patroni_versions()
    FIGURES.append(f"orch.deploy from bare nodes (install_method deb): {result.seconds:.0f} s")
    return result


def patroni_versions() -> dict:
    """{member: the Patroni version its own REST API reports}."""
    return {name: ((st or {}).get("patroni") or {}).get("version")
            for name, st in workload.member_states(PG_NODES).items()}


@dataclass
class Switch:
    """The rolling switch from the deb install to the lab's default (pip, Patroni 4.1)."""
    result: OrchResult
    before: dict
    after: dict
    acked: int
    lost: list
    write_gap: float


@pytest.fixture(scope="session")
def switched(deploy, salt_run_cli, salt_cli):
    """Patroni switched from Debian's package to pip, one member at a time, while a
    client writes through the VIP (orch.rolling_restart with service: true)."""
    wait_healthy(salt_cli)
    start = workload.prepare_table(SUPERUSER["password"])
    writer = workload.Writer(SUPERUSER["password"], start_id=start)
    writer.start()
    t0 = time.monotonic()
    try:
        result = orchestrate(salt_run_cli, "orch.rolling_restart", pillar={"service": True}, timeout=600)
    finally:
        time.sleep(2)
        writer.stop()
    assert result.retcode == 0 and not result.failed, result.comments() or result.raw
    ids = [a.id for a in writer.acks]
    gap = workload.longest_gap(writer.acks, t0)[0]
    switch = Switch(result, deploy.versions, patroni_versions(), len(ids),
                    workload.missing_rows(SUPERUSER["password"], ids) if ids else [], round(gap, 3))
    FIGURES.append(f"deb -> pip rolling switch: {result.seconds:.0f} s, {switch.acked} writes acknowledged, "
                   f"{len(switch.lost)} lost, longest write gap {switch.write_gap} s")
    return switch


@pytest.fixture
def cluster(switched):
    """A deployed cluster (Patroni 4.1 from pip), healthy at the start of the test: asked
    of each member's REST API from here, not through a Salt job (one job per test cost
    about a second each, some ninety times a run)."""
    wait_for(lambda: workload.healthy(workload.member_states(PG_NODES)), 180,
             "one running primary and every replica streaming from it (each member's REST API)")
    return switched


def wait_healthy(salt_cli, timeout: int = 180):
    ret = salt_cli.run("patroni.wait_healthy", f"timeout={timeout}", minion_tgt="pg-01",
                       _timeout=timeout + 30)
    assert ret.returncode == 0, ret.stdout + ret.stderr
    return salt_data(ret, ["pg-01"])["pg-01"]


def node_fingerprint(salt_cli):
    """Checksums of every managed file plus the main PID of every service, per node: equal
    before and after means nothing on any node changed."""
    files = ("/etc/default/etcd /etc/patroni/config.yml /etc/haproxy/haproxy.cfg "
             "/etc/keepalived/keepalived.conf /etc/pgha/tls/node.key")
    ret = salt_cli.run("cmd.run", f"sha256sum {files} 2>/dev/null; "
                       "systemctl show -p MainPID --value patroni etcd haproxy keepalived",
                       minion_tgt="*", _timeout=60)
    assert not ret.missing, ret.stderr
    return ret.data


# ---- pillar overrides -------------------------------------------------------------------

@contextlib.contextmanager
def pillar_override(salt_cli, data: dict):
    """Layer *data* over the lab pillar (the optional lab_overrides.sls) for a block."""
    path = lab_master.PILLAR_OVERRIDE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    refresh_pillar(salt_cli)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        refresh_pillar(salt_cli)


def refresh_pillar(salt_cli):
    ret = salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*", _timeout=60)
    assert ret.returncode == 0, ret.stdout + ret.stderr


# ---- the master's event bus -------------------------------------------------------------

class MasterEvents:
    """Listens on the session master's event bus from the moment it is created, so an
    event fired by a reaction to a fault the test causes afterwards is never missed.

    A thread reads the bus all the time. Read only while a test waits, the subscription
    fell behind during a long orchestration, and the master's event publisher drops a
    subscriber that has not drained for publish_drain_timeout (60 s): "Publisher
    discarding slow subscriber" in the master's log, and every event until the
    reconnect lost."""

    def __init__(self, config: dict, keep: tuple[str, ...] = ("",)):
        import threading
        self._keep = keep  # tag prefixes held; a whole session's bus is too much to hold
        self.seen: list[tuple[float, str, dict]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._failed: BaseException | None = None
        self._reader = threading.Thread(target=self._read, args=(config,), daemon=True,
                                        name="master-events")
        self._reader.start()
        if not self._subscribed.wait(30):
            self._check()
            raise RuntimeError("the master's event bus did not accept a subscriber within 30s")

    def _read(self, config: dict) -> None:
        import salt.utils.event
        try:
            # The bus is made, used and closed in this one thread: Salt's event objects
            # are not thread-safe.
            bus = salt.utils.event.get_master_event(config, config["sock_dir"], listen=True)
            try:
                bus.subscribe("")
                self._subscribed.set()
                while not self._stop.is_set():
                    event = bus.get_event(wait=0.5, full=True)
                    if event and event["tag"].startswith(self._keep):
                        with self._lock:
                            self.seen.append((time.monotonic(), event["tag"], event["data"]))
            finally:
                bus.destroy()
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            self._failed = exc

    def _check(self) -> None:
        """A reader that died makes every later look fail with its own error, not with a
        misleading 'no event within'."""
        if self._failed is not None:
            raise RuntimeError(f"the master event listener died: {self._failed!r}") from self._failed

    def snapshot(self) -> list[tuple[float, str, dict]]:
        """(monotonic arrival time, tag, data) of every event seen so far."""
        self._check()
        with self._lock:
            return list(self.seen)

    def wait(self, tag: str, timeout: float, where=lambda data: True) -> tuple[float, dict]:
        """(monotonic arrival time, data) of the first event whose tag starts with *tag*
        and whose data satisfies *where*; fails the test after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for arrived, seen_tag, data in self.snapshot():
                if seen_tag.startswith(tag) and where(data):
                    return arrived, data
            if time.monotonic() >= deadline:
                tags = sorted({t for _, t, _ in self.snapshot() if t.startswith(("pgha/", "salt/beacon/"))})
                pytest.fail(f"no event {tag!r} within {timeout:.0f}s; pgha and beacon tags seen: {tags}")
            time.sleep(0.2)

    def reactions_in_flight(self, longest: float = 600) -> list[str]:
        """The reactor's runner jobs (its orchestrations and what they call) that started
        since this listener did and have not returned yet. One that started more than
        *longest* seconds ago no longer counts: its return event was lost, or it hangs,
        and waiting for it would stall every test after it."""
        started, returned = {}, set()
        now = time.monotonic()
        for arrived, tag, data in self.snapshot():
            parts = tag.split("/")
            if len(parts) == 4 and parts[:2] == ["salt", "run"]:
                if parts[3] == "new" and data.get("user") == "Reactor" and now - arrived < longest:
                    args = data.get("fun_args") or [{}]
                    mods = args[0].get("mods") if isinstance(args[0], dict) else None
                    started[parts[2]] = f"{data.get('fun')} {mods or ''}".strip()
                elif parts[3] == "ret":
                    returned.add(parts[2])
        return [f"{what} (job {jid})" for jid, what in started.items() if jid not in returned]

    def wait_reactions_done(self, timeout: float = 300, settle: float = 5) -> None:
        """Until no reaction is in flight, twice in a row *settle* seconds apart: a test
        that caused a fault must not hand the next one a remediation still running."""
        wait_settled(self.reactions_in_flight, timeout, settle,
                     lambda busy: f"reactions still in flight after {timeout:.0f}s: {busy}",
                     poll=lambda busy: 0.5)

    def all(self, tag: str) -> list[dict]:
        time.sleep(0.5)  # what is on its way now
        return [data for _, seen_tag, data in self.snapshot() if seen_tag.startswith(tag)]

    def close(self) -> None:
        self._stop.set()
        self._reader.join(10)


@pytest.fixture
def master_events(master):
    events = MasterEvents(master.config)
    yield events
    events.close()


@pytest.fixture(scope="session")
def reactor_jobs(master):
    """The reactor's runner jobs from the first module that needs the cluster to the
    session's end: an orchestration still judging a fault (its SLS renders for up to
    two minutes and runs nothing on any minion meanwhile) is a remediation in flight
    that saltutil.running on the minions cannot see."""
    events = MasterEvents(master.config, keep=("salt/run/",))
    yield events
    events.close()


# ---- a proven starting state ------------------------------------------------------------

def vip_holders(lab) -> list[str]:
    """The haproxy nodes whose eth0 carries the VIP (asked inside each running node)."""
    return [n for n in HAPROXY_NODES if lab.is_running(NODES[n])
            and f" {VIP}/" in lab.exec_(NODES[n], ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout]


def cluster_problems(salt_cli, lab, reactions: MasterEvents) -> list[str]:
    """Everything that keeps the lab from the state every test module starts from, each
    as a sentence naming the component and the member: one Patroni leader with every
    replica streaming, etcd healthy and accepting membership changes, HAProxy routing
    writes to the leader, the VIP on one node, no remediation in flight, and nothing
    left over (pillar override, learner, spare node)."""
    problems = []
    override = lab_master.PILLAR_OVERRIDE_FILE
    if override.exists():
        problems.append(f"a pillar override is left over: {override}")
    spare = [n.name for n in NODES.values() if n.spare and n.dir.exists()]
    if spare:
        problems.append(f"spare node(s) left over: {', '.join(spare)}")

    states = workload.member_states(PG_NODES)
    leader = workload.leader(states)
    if leader is None:
        roles = {n: (st or {}).get("role", "no answer") for n, st in states.items()}
        problems.append(f"Patroni: no single primary ({roles})")
    elif not workload.healthy(states):
        for name, st in sorted(states.items()):
            if name != leader and not (st and st.get("replication_state") == "streaming"
                                       and st.get("timeline") == states[leader].get("timeline")):
                problems.append(f"Patroni: {name} is not streaming from {leader} "
                                f"({(st or {}).get('state', 'no answer')})")
    asker = leader or PG_NODES[0]
    members = salt_data(salt_cli.run("etcd3.members", minion_tgt=asker, _timeout=30), [asker])[asker]
    if not isinstance(members, list):
        problems.append(f"etcd: {asker} cannot list members: {members}")
    else:
        names = sorted(m["name"] or m["id"] for m in members)
        if names != PG_NODES:
            problems.append(f"etcd: members are {names}, not {PG_NODES}")
        learners = [m["name"] or m["id"] for m in members if m["is_learner"]]
        if learners:
            problems.append(f"etcd: learner(s) left over: {', '.join(learners)}")
        ready = salt_data(salt_cli.run("etcd3.membership_ready", minion_tgt=asker, _timeout=30),
                          [asker])[asker]
        if not isinstance(ready, dict):
            problems.append(f"etcd: {asker} cannot tell its peer connections: {ready}")
        else:
            problems += [f"etcd: {p}" for p in ready["problems"]]
        health = salt_data(salt_cli.run("etcd3.health", minion_tgt=asker, _timeout=30), [asker])[asker]
        for name, st in sorted((health or {}).items()) if isinstance(health, dict) else ():
            if not st["healthy"]:
                problems.append(f"etcd: {name} is unhealthy: {st['reason']}")

    backends = salt_cli.run("pgha_haproxy.backends", minion_tgt=",".join(HAPROXY_NODES),
                            tgt_type="list", _timeout=30)
    for node in HAPROXY_NODES:
        servers = backends.data.get(node)
        if not isinstance(servers, list):
            problems.append(f"HAProxy: {node} did not report its backends: {servers}")
            continue
        up = sorted(s["server"] for s in servers if s["proxy"] == "postgres_writer" and s["status"] == "UP")
        if leader and up != [leader]:
            problems.append(f"HAProxy: {node} routes writes to {up or 'nothing'}, not {leader}")
    holders = vip_holders(lab)
    if len(holders) != 1:
        problems.append(f"VIP {VIP} is held by {holders or 'no node'}")
    elif leader:
        # And a client's write through it really reaches the leader.
        try:
            with pg_connect(VIP, 5432) as conn:
                served = conn.execute("SELECT host(inet_server_addr()), pg_is_in_recovery()").fetchone()
            if served != (NODES[leader].address, False):
                problems.append(f"the VIP's writer port reaches {served}, not the leader {leader}")
        except psycopg.Error as exc:
            problems.append(f"the VIP's writer port refuses a client: {str(exc).strip()}")

    running = salt_cli.running()
    if running:
        problems.append(f"remediation or another job in flight: {running}")
    if orchestrating := reactions.reactions_in_flight():
        problems.append(f"the reactor's orchestrations in flight on the master: {orchestrating}")
    return problems


def prove_cluster(salt_cli, lab, reactions: MasterEvents, timeout: float = 300, settle: float = 3.0) -> None:
    """Wait until cluster_problems() is empty twice in a row, *settle* seconds apart (a
    reaction between two steps runs nothing for a moment); fail naming what is not yet
    healthy after *timeout* seconds."""
    wait_settled(lambda: cluster_problems(salt_cli, lab, reactions), timeout, settle,
                 lambda problems: f"the cluster is not in its proven starting state after {timeout:.0f}s:\n- "
                 + "\n- ".join(problems or ["(healthy, but not for long enough)"]),
                 poll=lambda problems: 1 if problems else settle)


@pytest.fixture(scope="module", autouse=True)
def proven_cluster(request):
    """Every test module that uses the deployed cluster starts from a cluster proven
    healthy in every component. Modules that set NEEDS_CLUSTER = False (the lab's own
    tests, the static checks, the teardown) skip this."""
    if not getattr(request.module, "NEEDS_CLUSTER", True):
        return
    request.getfixturevalue("switched")
    prove_cluster(request.getfixturevalue("salt_cli"), request.getfixturevalue("lab"),
                  request.getfixturevalue("reactor_jobs"))
