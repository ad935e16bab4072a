"""
pgha's monitoring on a node: postgres_exporter's login role (postgres nodes), and the
remediation limits Prometheus alerts on (monitor nodes, node exporter textfile).

The role has pg_monitor and nothing else. Roles replicate, so it is created and kept
on the primary only; its password is checked the way PostgreSQL checks it, by logging
in with it (a SCRAM verifier cannot be compared).
"""

import json
import logging
import os
import re
import tempfile
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "pgha_monitor"

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
LIMITS_FILE = "pgha_remediation.prom"
LABEL = re.compile(r"^[A-Za-z0-9_.:/@-]{1,128}$")


def __virtual__():
    if "pgha.config" not in __salt__:
        return (False, "pgha_monitor needs pgha's execution module (saltutil.sync_modules)")
    return __virtualname__


# What psql says when PostgreSQL is down or not open for connections yet or any more.
NOT_ACCEPTING = ("No such file", "Connection refused", "could not connect", "the database system is starting up",
                 "the database system is shutting down", "the database system is not yet accepting connections",
                 "the database system is in recovery mode", "the database system is not accepting connections")


def _psql(cfg, sql, user, password, stdin=None):
    """Run *sql* (or *stdin*) over the local socket as *user*; (retcode, stdout, stderr)."""
    argv = [f"{cfg['postgres']['bin_dir']}/psql", "-XAtq", "-v", "ON_ERROR_STOP=1",
            "-h", cfg["postgres"]["socket_dir"], "-p", str(cfg["postgres"]["port"]),
            "-U", user, "-d", "postgres"]
    if sql:
        argv += ["-c", sql]
    res = __salt__["cmd.run_all"](argv, runas="postgres", python_shell=False, timeout=30, cwd="/tmp",
                                  env={"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}, stdin=stdin,
                                  ignore_retcode=True, output_loglevel="quiet")
    return res["retcode"], res.get("stdout", "").strip(), res.get("stderr", "").strip()


def _quote_literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def role(name=None):
    """
    Report postgres_exporter's login role on this node's PostgreSQL: ``{running,
    in_recovery, exists, login, pg_monitor, extra, password_ok}``. ``extra`` lists
    any attribute beyond LOGIN (superuser, createrole, ...) the role should not have.

    CLI Example:

    .. code-block:: bash

        salt pg-01 pgha_monitor.role
    """
    cfg = __salt__["pgha.config"](redact=False)
    pe = cfg["monitoring"]["postgres_exporter"]
    name = name or pe["username"]
    if not ROLE_NAME.match(str(name)):
        raise SaltInvocationError(f"{name!r} is not a plain PostgreSQL role name")
    su = cfg["patroni"]["superuser"]
    sql = ("SELECT json_build_object('in_recovery', pg_is_in_recovery(), 'exists', r.oid IS NOT NULL, "
           "'login', coalesce(r.rolcanlogin, false), "
           "'pg_monitor', coalesce(pg_has_role(r.oid, 'pg_monitor', 'member'), false), "
           "'extra', array_remove(ARRAY[CASE WHEN r.rolsuper THEN 'superuser' END, "
           "CASE WHEN r.rolcreaterole THEN 'createrole' END, CASE WHEN r.rolcreatedb THEN 'createdb' END, "
           "CASE WHEN r.rolreplication THEN 'replication' END, CASE WHEN r.rolbypassrls THEN 'bypassrls' END], NULL)) "
           f"FROM (SELECT 1) one LEFT JOIN pg_roles r ON r.rolname = {_quote_literal(name)}")
    rc, out, err = _psql(cfg, sql, su["username"], su["password"])
    if rc != 0:
        # Stopped, or (Patroni just started or is stopping it) not taking connections yet.
        if any(sign in err for sign in NOT_ACCEPTING):
            return {"running": False, "in_recovery": None, "exists": None, "login": None,
                    "pg_monitor": None, "extra": [], "password_ok": None, "error": err}
        raise CommandExecutionError(f"PostgreSQL on {cfg['id']}: {err or rc}")
    status = dict(json.loads(out), running=True, password_ok=None)
    if status["exists"] and status["login"]:
        status["password_ok"] = _psql(cfg, "SELECT 1", name, pe["password"])[0] == 0
    return status


def role_sql(name, password, status):
    """The statements that bring the role from *status* (see ``role``) to what pgha
    wants, and what each changes. Plain function: the state and the unit tests call it.

    CLI Example:

    .. code-block:: bash

        salt pg-01 pgha_monitor.role_sql pgha_monitor secret '{"exists": false}'
    """
    ident = '"' + name.replace('"', '""') + '"'
    statements, changes = [], {}
    if not status.get("exists"):
        statements.append(f"CREATE ROLE {ident} LOGIN PASSWORD {_quote_literal(password)}")
        changes["role"] = "created"
    else:
        if not status.get("login") or status.get("extra"):
            statements.append(f"ALTER ROLE {ident} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB "
                              "NOREPLICATION NOBYPASSRLS")
            changes["attributes"] = {"old": status.get("extra") or ["nologin"], "new": ["login"]}
        if not status.get("password_ok"):
            statements.append(f"ALTER ROLE {ident} PASSWORD {_quote_literal(password)}")
            changes["password"] = "reset to pillar's"
    if not status.get("pg_monitor"):
        statements.append(f"GRANT pg_monitor TO {ident}")
        changes["pg_monitor"] = "granted"
    return statements, changes


def ensure_role(name=None, test=False):
    """
    Create or correct postgres_exporter's role on this node if it is the primary:
    ``{changes, comment}``. On a replica or a stopped PostgreSQL nothing is done (the
    primary's run makes the change; roles replicate). Used by ``pgha_monitor.role_present``.

    CLI Example:

    .. code-block:: bash

        salt pg-01 pgha_monitor.ensure_role test=True
    """
    cfg = __salt__["pgha.config"](redact=False)
    pe = cfg["monitoring"]["postgres_exporter"]
    name = name or pe["username"]
    if not pe.get("password"):
        raise SaltInvocationError("pgha:monitoring:postgres_exporter:password is not set in this node's pillar")
    status = role(name)
    if not status["running"]:
        return {"changes": {}, "comment": f"PostgreSQL is not running on {cfg['id']}: the primary keeps {name}"}
    if status["in_recovery"]:
        return {"changes": {}, "comment": f"{cfg['id']} is a replica: {name} comes from the primary"}
    statements, changes = role_sql(name, pe["password"], status)
    if not statements:
        return {"changes": {}, "comment": f"{name} logs in and has pg_monitor only"}
    if test:
        return {"changes": changes, "comment": f"{name} would be changed"}
    su = cfg["patroni"]["superuser"]
    # On stdin: the password never appears in a process list.
    rc, _, err = _psql(cfg, None, su["username"], su["password"], stdin=";\n".join(statements) + ";\n")
    if rc != 0:
        raise CommandExecutionError(f"{name} on {cfg['id']}: {err or rc}")
    return {"changes": changes, "comment": f"{name} changed"}


def _limits_path():
    return os.path.join(__salt__["pgha.config"]()["monitoring"]["node_exporter"]["textfile_dir"], LIMITS_FILE)


def record_limit(kind, member, subject="", window=600):
    """
    Record on this (monitor) node that self-healing reached its limit for *kind* on
    *member*: a ``pgha_remediation_limit_timestamp_seconds`` sample in the node
    exporter's textfile directory, which the RemediationLimitReached alert reads.
    Entries older than their window are dropped.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgha_monitor.record_limit service pg-02 patroni 600
    """
    for what, value in (("kind", kind), ("member", member)):
        if not LABEL.match(str(value)):
            raise SaltInvocationError(f"{what}: {value!r} is not a plain name")
    if subject and not LABEL.match(str(subject)):
        raise SaltInvocationError(f"subject: {subject!r} is not a plain name")
    path = _limits_path()
    now = int(time.time())
    entries = {}
    if os.path.exists(path):
        for row in open(path, encoding="utf-8"):
            match = re.match(r'^pgha_remediation_limit_timestamp_seconds\{kind="([^"]*)",member="([^"]*)",'
                             r'subject="([^"]*)",window="(\d+)"\} (\d+)$', row.strip())
            if match and now - int(match.group(5)) < int(match.group(4)):
                entries[match.group(1, 2, 3)] = (int(match.group(4)), int(match.group(5)))
    entries[(str(kind), str(member), str(subject))] = (int(window), now)
    text = "".join(f'pgha_remediation_limit_timestamp_seconds{{kind="{k}",member="{m}",subject="{s}",'
                   f'window="{w}"}} {t}\n' for (k, m, s), (w, t) in sorted(entries.items()))
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{LIMITS_FILE}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return {"recorded": {"kind": kind, "member": member, "subject": subject, "at": now}, "entries": len(entries)}


def _prometheus(path, params=None, timeout=5):
    """GET *path* from this monitor node's Prometheus (its API, over TLS with pgha's CA)."""
    cfg = __salt__["pgha.config"](redact=False)  # in-process: the key file's path is "key"
    if cfg["id"] not in cfg["monitor_members"]:
        raise CommandExecutionError(f"{cfg['id']} is no monitor node (pgha:nodes:{cfg['id']}:roles)")
    base = f"{cfg['scheme']}://{cfg['address']}:{cfg['monitoring']['prometheus']['port']}"
    _, _, body = __utils__["pgha_http.request"]("GET", base, path, "Prometheus", params=params,
                                                timeout=timeout, tls=cfg["tls_client"])
    if not isinstance(body, dict) or body.get("status") != "success":
        raise CommandExecutionError(f"Prometheus GET {path}: {body}")
    return body["data"]


def targets():
    """
    Every scrape target of this monitor node's Prometheus: ``[{job, member, url, health,
    error}]``, health ``up``, ``down`` or ``unknown`` (not scraped yet).

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgha_monitor.targets
    """
    data = _prometheus("/api/v1/targets", params={"state": "active"})
    return [{"job": t["labels"].get("job"), "member": t["labels"].get("member"), "url": t.get("scrapeUrl"),
             "health": t.get("health"), "error": t.get("lastError", "")}
            for t in data.get("activeTargets", [])]


def targets_down(found):
    """The targets of *found* (see ``targets``) that are not up, as sentences. Plain
    function: the state and the unit tests call it.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgha_monitor.targets_down '[{"job": "node", "member": "pg-01", "health": "down"}]'
    """
    return [f"{t['job']} on {t['member']}: {t['health']}" + (f" ({t['error']})" if t.get("error") else "")
            for t in found if t.get("health") != "up"]


def alerts(state=None):
    """
    The alerts this monitor node's Prometheus holds: ``[{name, state, member, labels,
    summary, active_at}]``, state ``pending`` or ``firing``; only *state*'s if given.

    CLI Example:

    .. code-block:: bash

        salt backup-01 pgha_monitor.alerts firing
    """
    data = _prometheus("/api/v1/alerts")
    out = [{"name": a["labels"].get("alertname"), "state": a.get("state"), "member": a["labels"].get("member"),
            "labels": a["labels"], "summary": (a.get("annotations") or {}).get("summary", ""),
            "active_at": a.get("activeAt")} for a in data.get("alerts", [])]
    return [a for a in out if state is None or a["state"] == state]
