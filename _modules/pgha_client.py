"""
A PostgreSQL client's view of the cluster, through its front end (VIP or load balancer).

Runs where psycopg is installed: the Salt master (orchestration) or any client host.
"""

import logging
import time
import uuid

from salt.exceptions import CommandExecutionError

try:
    import psycopg

    HAS_PSYCOPG = True
except ImportError:
    HAS_PSYCOPG = False

log = logging.getLogger(__name__)

__virtualname__ = "pgha_client"


def __virtual__():
    if not HAS_PSYCOPG:
        return (False, "pgha_client needs psycopg (pip install psycopg[binary])")
    return __virtualname__


def _front(host):
    cfg = __salt__["pgha.config"](redact=False)
    if host:
        return cfg, host
    if cfg["frontend"] == "keepalived":
        return cfg, cfg["keepalived"]["vip"]
    if cfg["hetzner"].get("address"):
        return cfg, cfg["hetzner"]["address"]
    if "hcloud_lb.address" not in __salt__:
        raise CommandExecutionError("no front-end address: pass host=, set "
                                    "pgha:hetzner:address, or install hcloud to ask the API")
    address = __salt__["hcloud_lb.address"]()
    if not address:
        raise CommandExecutionError("the load balancer has neither a private nor a public IPv4: "
                                    "set pgha:hetzner:address")
    return cfg, address


def _reads_served(cfg):
    """Whether the front end serves the reader port (a Hetzner balancer may not)."""
    return cfg["frontend"] != "hetzner" or cfg["hetzner"]["load_balancer"]["reader_service"]


def _ca_file(cfg):
    """The CA to verify PostgreSQL's certificate with: the node's file, or (on the master,
    which is no node) the pillar's CA written into the master's cache."""
    import os  # pylint: disable=import-outside-toplevel

    tls = cfg["tls"]
    if os.path.exists(tls["ca_file"]):
        return tls["ca_file"]
    path = os.path.join(__opts__["cachedir"], "pgha", "ca.crt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(tls["ca_cert"])
    return path


def _connect(cfg, host, port, dbname="postgres", timeout=5):
    su = cfg["patroni"]["superuser"]
    # With TLS, verify-full: the server's certificate must be the CA's and name the
    # address connected to (through HAProxy, which passes TLS through, that is the
    # front address: pgha's node certificates carry it).
    tls = {"sslmode": "verify-full", "sslrootcert": _ca_file(cfg)} if cfg["tls"]["enabled"] else {}
    statement_timeout = int(cfg["checks"]["statement_timeout"] * 1000)
    try:
        return psycopg.connect(host=host, port=port, dbname=dbname, user=su["username"],
                               password=su["password"], connect_timeout=timeout,
                               autocommit=True, options=f"-c statement_timeout={statement_timeout}",
                               **tls)
    except psycopg.Error as exc:
        raise CommandExecutionError(f"cannot connect to PostgreSQL at {host}:{port}/{dbname}: "
                                    f"{str(exc).strip()}")


def _server(conn, names):
    row = conn.execute("SELECT host(inet_server_addr()), pg_is_in_recovery(), "
                       "current_setting('server_version')").fetchone()
    return {"node": names.get(row[0], row[0]), "in_recovery": row[1], "version": row[2]}


def _retry(what, timeout, func):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return func()
        except (CommandExecutionError, psycopg.Error, AssertionError) as exc:
            if time.monotonic() > deadline:
                raise CommandExecutionError(f"{what}: {str(exc).strip()}")
            time.sleep(0.5)


def end_to_end(host=None, timeout=60):
    """
    Check the cluster as a client sees it, through the front end: on the writer port,
    create a database and a table, insert rows and read them back from the primary;
    on the reader port, read the same rows from a replica; then drop everything.
    Return which node served each port. Raise naming the step that failed.

    host
        Front-end address; default: the VIP (or the load balancer's address).

    CLI Example:

    .. code-block:: bash

        salt-call pgha_client.end_to_end
    """
    cfg, host = _front(host)
    names = {node["address"]: name for name, node in cfg["nodes"].items()}
    writer_port, reader_port = cfg["haproxy"]["writer_port"], cfg["haproxy"]["reader_port"]
    dbname = "pgha_e2e_" + uuid.uuid4().hex[:8]
    rows = [(1, "one"), (2, "two"), (3, "three")]
    report = {"host": host, "database": dbname}

    admin = _retry(f"writer port {host}:{writer_port}", timeout,
                   lambda: _connect(cfg, host, writer_port))
    try:
        report["writer"] = _server(admin, names)
        if report["writer"]["in_recovery"]:
            raise CommandExecutionError(f"writer port {host}:{writer_port} reached "
                                        f"{report['writer']['node']}, a replica")
        admin.execute(f'CREATE DATABASE "{dbname}"')
        with _connect(cfg, host, writer_port, dbname) as conn:
            conn.execute("CREATE TABLE e2e (id int PRIMARY KEY, note text NOT NULL)")
            with conn.transaction():
                for row in rows:
                    conn.execute("INSERT INTO e2e VALUES (%s, %s)", row)
            got = conn.execute("SELECT id, note FROM e2e ORDER BY id").fetchall()
            if got != rows:
                raise CommandExecutionError(f"writer read back {got}, expected {rows}")

        def read_replica():
            with _connect(cfg, host, reader_port, dbname) as conn:
                server = _server(conn, names)
                assert server["in_recovery"], f"reader port reached {server['node']}, the primary"
                got = conn.execute("SELECT id, note FROM e2e ORDER BY id").fetchall()
                assert got == rows, f"replica {server['node']} has {got}, expected {rows}"
                return server

        # A synchronous standby has the commit on disk but may not have replayed it yet.
        if _reads_served(cfg):
            report["reader"] = _retry(f"reader port {host}:{reader_port}", timeout, read_replica)
        else:
            report["reader"] = "not served by the front end (pgha:hetzner:load_balancer:reader_service)"
        report["rows"] = len(rows)
    finally:
        try:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        finally:
            admin.close()
    return report


def writer_node(host=None, timeout=5):
    """
    Return the node that the writer port reaches and whether it accepts writes.

    CLI Example:

    .. code-block:: bash

        salt-call pgha_client.writer_node
    """
    cfg, host = _front(host)
    names = {node["address"]: name for name, node in cfg["nodes"].items()}
    with _connect(cfg, host, cfg["haproxy"]["writer_port"], timeout=timeout) as conn:
        return _server(conn, names)
