"""Client-side instruments for fault runs: a writer through the VIP that logs a row as
acknowledged only after its commit returned, and a monitor that samples every node's
role from inside the node (so a node cut off the network is still watched).

Used by the fault tests (tests/) and the benchmark (bench/); both judge a run the same
way: lost acknowledged rows, the longest gap between acknowledgements, and whether two
nodes ever accepted writes at once.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import requests

from . import node as lab_node
from . import tls
from .topology import NODES, VIP

TABLE = "pgha_writes"


@dataclass
class Ack:
    id: int
    sent: float
    acked: float
    server: str


class Writer(threading.Thread):
    """Insert numbered rows through the front end, one transaction each, every *interval*."""

    def __init__(self, password: str, *, host: str = VIP, port: int = 5432, user: str = "postgres",
                 dbname: str = "postgres", interval: float = 0.025, start_id: int = 1,
                 conninfo: str | None = None):
        """*conninfo*, a libpq string (the multi-host writer string pgha.status prints),
        replaces host and port: the client then finds the primary by itself."""
        super().__init__(daemon=True, name="writer")
        # connect_timeout 5 s, like a typical application: long enough to ride HAProxy's
        # queue through a switchover (libpq rounds anything below 2 s up to 2 s anyway).
        credentials = dict(user=user, password=password, dbname=dbname, autocommit=True)
        if conninfo:
            self.connect_args = ((conninfo,), dict(credentials, sslrootcert=tls.client()["ca"]))
        else:
            self.connect_args = ((), dict(credentials, host=host, port=port, connect_timeout=5))
        self.interval = interval
        self.next_id = start_id
        self.acks: list[Ack] = []
        self.errors: list[tuple[float, str]] = []
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)

    def run(self) -> None:
        conn = None
        while not self._halt.is_set():
            if conn is None:
                try:
                    conn = psycopg.connect(*self.connect_args[0], **self.connect_args[1])
                except psycopg.Error as exc:
                    self.errors.append((time.monotonic(), type(exc).__name__))
                    self._halt.wait(self.interval)
                    continue
            row_id, sent = self.next_id, time.monotonic()
            self.next_id += 1
            try:
                server = conn.execute(
                    f"INSERT INTO {TABLE} (id) VALUES (%s) RETURNING host(inet_server_addr())",
                    (row_id,)).fetchone()[0]
                self.acks.append(Ack(row_id, sent, time.monotonic(), server))
            except psycopg.Error as exc:
                self.errors.append((time.monotonic(), type(exc).__name__))
                conn.close()
                conn = None
            self._halt.wait(self.interval)
        if conn is not None:
            conn.close()


class PrimaryMonitor(threading.Thread):
    """Every *interval*, ask each postgres node (from inside it) whether it is a primary."""

    def __init__(self, password: str, nodes: list[str], interval: float = 0.3):
        super().__init__(daemon=True, name="primary-monitor")
        self.password = password
        self.nodes = nodes
        self.interval = interval
        self.samples: list[tuple[float, dict[str, str]]] = []
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)

    def _role(self, name: str) -> str:
        node = NODES[name]
        if not lab_node.is_running(node):
            return "off"
        try:
            proc = lab_node.exec_(node, ["env", f"PGPASSWORD={self.password}", "psql", "-h",
                                         "127.0.0.1", "-U", "postgres", "-Atqc",
                                         "SELECT pg_is_in_recovery()"], timeout=3)
        except Exception:  # noqa: BLE001 - a node mid-crash: not a primary
            return "down"
        return {"f": "primary", "t": "replica"}.get(proc.stdout.strip(), "down")

    def run(self) -> None:
        while not self._halt.is_set():
            at = time.monotonic()
            results: dict[str, str] = {}
            threads = [threading.Thread(target=lambda n=n, results=results: results.__setitem__(n, self._role(n)))
                       for n in self.nodes]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.samples.append((at, results))
            self._halt.wait(self.interval)

    def double_primaries(self) -> list[tuple[float, list[str]]]:
        return [(at, [n for n, r in roles.items() if r == "primary"])
                for at, roles in self.samples
                if sum(r == "primary" for r in roles.values()) > 1]


# ---- judging a run ------------------------------------------------------------------

def client_split_brain(acks: list[Ack]) -> list[str]:
    """Acknowledgements that came from a server the writer had already left: two nodes
    accepted this client's writes in interleaved order."""
    order: list[str] = []
    problems = []
    for ack in acks:
        if not order or order[-1] != ack.server:
            if ack.server in order:
                problems.append(f"row {ack.id} acknowledged by {ack.server} after "
                                f"{order[-1]} had taken over")
            order.append(ack.server)
    return problems


def longest_gap(acks: list[Ack], after: float) -> tuple[float, float, float]:
    """(gap seconds, last ack before it, first ack after it) among acks around *after*."""
    times = [a.acked for a in acks]
    before = [t for t in times if t <= after]
    points = ([before[-1]] if before else []) + [t for t in times if t > after]
    best = (0.0, after, after)
    for prev, nxt in zip(points, points[1:]):
        if nxt - prev > best[0]:
            best = (nxt - prev, prev, nxt)
    return best


def missing_rows(password: str, ids: list[int], *, host: str = VIP, port: int = 5432) -> list[int]:
    """Acknowledged ids that the current primary does not have."""
    with psycopg.connect(host=host, port=port, user="postgres", password=password,
                         dbname="postgres", connect_timeout=5, autocommit=True) as conn:
        present = {r[0] for r in conn.execute(f"SELECT id FROM {TABLE} WHERE id = ANY(%s)",
                                              (ids,)).fetchall()}
    return sorted(set(ids) - present)


def prepare_table(password: str, *, host: str = VIP, port: int = 5432) -> int:
    """Create the writes table if needed; return the next free id."""
    with psycopg.connect(host=host, port=port, user="postgres", password=password,
                         dbname="postgres", connect_timeout=5, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} "
                     "(id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        return conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {TABLE}").fetchone()[0]


# ---- Patroni as seen from the host ------------------------------------------------------

def rest_get(name: str, path: str, timeout: float = 2):
    """GET *path* from member *name*'s Patroni REST API (HTTPS with the lab's CA)."""
    return requests.get(f"https://{NODES[name].address}:8008{path}", timeout=timeout,
                        verify=tls.client()["ca"])


def etcd_leader(nodes: list[str], timeout: float = 1) -> str | None:
    """The member etcd's members agree leads, asked from the host (each member's
    /v3/maintenance/status gives its own id and its leader's); None if they disagree
    or none answers."""
    client = tls.client()
    ids, leaders = {}, set()
    for name in nodes:
        try:
            resp = requests.post(f"https://{NODES[name].address}:2379/v3/maintenance/status", json={},
                                 timeout=timeout, verify=client["ca"], cert=(client["cert"], client["key"]))
            body = resp.json()
        except (requests.RequestException, ValueError):
            continue
        ids[body.get("header", {}).get("member_id")] = name
        leaders.add(body.get("leader"))
    return ids.get(leaders.pop()) if len(leaders) == 1 else None


def member_states(nodes: list[str]) -> dict:
    """Each member's report about itself (GET /patroni), None when it does not answer.

    Self-reports, not one member's /cluster: a member that just came back from isolation
    serves a stale cached view of the cluster, in which it may still be the leader.
    """
    states = {}
    for name in nodes:
        try:
            resp = rest_get(name, "/patroni")
            states[name] = resp.json() if resp.ok else None
        except (requests.RequestException, ValueError):
            states[name] = None
    return states


def leader(states: dict) -> str | None:
    primaries = [n for n, st in states.items() if st and st.get("role") == "primary"]
    return primaries[0] if len(primaries) == 1 else None


def healthy(states: dict) -> bool:
    """One running primary, and every other member streaming from it on its timeline."""
    name = leader(states)
    if name is None or states[name].get("state") != "running":
        return False
    timeline = states[name].get("timeline")
    return all(st and st.get("role") == "replica" and st.get("replication_state") == "streaming"
               and st.get("timeline") == timeline
               for n, st in states.items() if n != name)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "min": min(values), "median": statistics.median(values),
            "max": max(values)} if values else {"n": 0}


@dataclass
class Timeline:
    """Acknowledged writes per 100 ms, with marks, relative to the fault."""
    origin: float
    acks: list[float] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)

    def bins(self, width: float = 0.1) -> list[tuple[float, int]]:
        if not self.acks:
            return []
        rel = [t - self.origin for t in self.acks]
        start = min(rel)
        counts = Counter(int((r - start) // width) for r in rel)
        return [(round(start + i * width, 3), counts.get(i, 0)) for i in range(max(counts) + 1)]
