"""The lab's Salt master: keys, configuration, and the daemon `make lab` runs.

The tests start a master of their own through pytest-salt-factories, from the same
configuration (master_config), so both serve the same checkout to the same minions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from . import tls
from .sh import LabError, pidfile_pid, run, say, stop_pidfile, wait_until
from .topology import HOST_ADDRESS, MASTER_CONFIG_DIR, NODES, REPO_ROOT, RUN_DIR, SALT_API_PORT, SALT_PUBLISH_PORT, SALT_RET_PORT, STATE_DIR

PKI_DIR = STATE_DIR / "pki"
MASTER_ROOT = STATE_DIR / "master"
# Optional pillar layered over the lab's own (pillar/top.sls includes it if present):
# tests use it to add a node or to feed a broken pillar without touching the checkout.
PILLAR_OVERRIDE_DIR = STATE_DIR / "pillar"
# What the tests and the bench lay over the lab pillar for a while (lab up removes it).
PILLAR_OVERRIDE_FILE = PILLAR_OVERRIDE_DIR / "lab_overrides.sls"
MASTER_PIDFILE = RUN_DIR / "salt-master.pid"
API_PIDFILE = RUN_DIR / "salt-api.pid"


def ensure_keys(accepted: list[str]) -> Path:
    """Create the master's and every node's key pair once; accept exactly *accepted*.

    Keys outlive `down`, so a minion never sees its master's key change between runs.
    A spare node's key is accepted only while it is booted: `salt '*'` must not wait
    for a minion that does not exist.
    """
    import salt.crypt  # heavy import, only where needed

    master_dir = PKI_DIR / "master"
    for sub in ("minions", "minions_pre", "minions_rejected", "minions_denied"):
        (master_dir / sub).mkdir(parents=True, exist_ok=True)
    if not (master_dir / "master.pem").exists():
        salt.crypt.gen_keys(str(master_dir), "master", 2048)
    for name in NODES:
        keydir = PKI_DIR / "minions-keys" / name
        if not (keydir / "minion.pem").exists():
            keydir.mkdir(parents=True, exist_ok=True)
            salt.crypt.gen_keys(str(keydir), "minion", 2048)
        if name in accepted:
            shutil.copy(keydir / "minion.pub", master_dir / "minions" / name)
    for path in (master_dir / "minions").iterdir():
        if path.name not in accepted:
            path.unlink()
    return PKI_DIR


def accept_key(name: str) -> None:
    shutil.copy(PKI_DIR / "minions-keys" / name / "minion.pub", PKI_DIR / "master" / "minions" / name)


def delete_key(name: str) -> None:
    (PKI_DIR / "master" / "minions" / name).unlink(missing_ok=True)


def master_config() -> dict:
    """The master's configuration: this checkout's formula, pillar and extensions."""
    reactor_conf = REPO_ROOT / "reactor" / "master.conf"
    reactor = yaml.safe_load(reactor_conf.read_text()) if reactor_conf.exists() else {}
    config = {
        "id": "lab-master",
        "interface": HOST_ADDRESS,
        "publish_port": SALT_PUBLISH_PORT,
        "ret_port": SALT_RET_PORT,
        # No root_dir: Salt would prefix it to every path below, even absolute ones.
        "pki_dir": str(PKI_DIR / "master"),
        "cachedir": str(MASTER_ROOT / "cache"),
        "sock_dir": str(MASTER_ROOT / "sock"),
        "log_file": str(MASTER_ROOT / "master.log"),
        "key_logfile": str(MASTER_ROOT / "key.log"),
        "pidfile": str(MASTER_PIDFILE),
        "open_mode": False,
        "auto_accept": False,
        "file_roots": {"base": [str(REPO_ROOT / "salt")]},
        "pillar_roots": {"base": [str(REPO_ROOT / "pillar"), str(PILLAR_OVERRIDE_DIR)]},
        # Extensions for the master's own loaders (orchestration, runners).
        "runner_dirs": [str(REPO_ROOT / "_runners")],
        "module_dirs": [str(REPO_ROOT / "_modules")],
        "states_dirs": [str(REPO_ROOT / "_states")],
        "utils_dirs": [str(REPO_ROOT / "_utils")],
        "outputter_dirs": [str(REPO_ROOT / "_output")],
        "fileserver_backend": ["roots"],
        "worker_threads": 4,
        "timeout": 15,
        "gather_job_timeout": 15,
        "keep_jobs_seconds": 86400,
        "state_output": "mixed",
        "log_level_logfile": "info",
        # salt-api, for Alertmanager's webhook only (/hook/pgha/alert): HTTPS with the lab
        # host's certificate. No eauth token (Alertmanager cannot log in): the reaction
        # checks the post's bearer token (orch/heal/alert.sls), and nothing else is enabled.
        # One worker thread: rest_cherrypy's Webhook fires every post through one shared
        # event pusher, whose synchronous wrapper is not thread-safe. Two posts at once
        # (Alertmanager's and another) raise "This event loop is already running", the
        # pusher's close then fails too, and every later post answers 500 until salt-api
        # restarts (seen in CI: the ExporterDown alert never reached the bus).
        "rest_cherrypy": {"host": HOST_ADDRESS, "port": SALT_API_PORT,
                          "ssl_crt": tls.client()["cert"], "ssl_key": tls.client()["key"],
                          "webhook_disable_auth": True, "webhook_url": "/hook", "disable_ssl": False,
                          "thread_pool": 1},
        "api_pidfile": str(API_PIDFILE),
        "api_logfile": str(MASTER_ROOT / "api.log"),
    }
    config.update(reactor or {})
    return config


def write_master_config() -> Path:
    """Write the config the Saltfile points `salt`, `salt-run`, `salt-key` and `salt-cp` at."""
    MASTER_CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    MASTER_ROOT.mkdir(parents=True, exist_ok=True)
    PILLAR_OVERRIDE_DIR.mkdir(parents=True, exist_ok=True)
    path = MASTER_CONFIG_DIR / "master"
    path.write_text("# Generated by pgha-lab from pgha_lab.salt.master_config(); do not edit.\n"
                    + yaml.safe_dump(master_config(), sort_keys=True))
    return path


def venv_bin(name: str) -> str:
    return str(REPO_ROOT / ".venv" / "bin" / name)


def master_pid() -> int | None:
    return pidfile_pid(MASTER_PIDFILE)


def start_master() -> None:
    if master_pid():
        return
    write_master_config()
    run([venv_bin("salt-master"), "-c", str(MASTER_CONFIG_DIR), "-d"])
    wait_until(master_pid, 30, "the salt-master daemon to write its pidfile")
    say(f"salt-master running (pid {master_pid()}), log {MASTER_ROOT / 'master.log'}")
    start_api(MASTER_CONFIG_DIR)


def start_api(config_dir: Path) -> None:
    """salt-api beside the master whose configuration is in *config_dir* (the lab's
    daemon, or the tests' own master), until it accepts connections on its port."""
    import socket

    if pidfile_pid(API_PIDFILE):
        return
    run([venv_bin("salt-api"), "-c", str(config_dir), "-d"])

    def listening() -> bool:
        try:
            socket.create_connection((HOST_ADDRESS, SALT_API_PORT), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(listening, 60, f"salt-api to listen on {HOST_ADDRESS}:{SALT_API_PORT}")
    say(f"salt-api running (pid {pidfile_pid(API_PIDFILE)}) on https://{HOST_ADDRESS}:{SALT_API_PORT}/hook")


def stop_api() -> None:
    stop_pidfile(API_PIDFILE, "salt-api", timeout=30)


def stop_master() -> None:
    stop_api()
    # The daemon's workers are its children; they go with it.
    stop_pidfile(MASTER_PIDFILE, "the salt-master", timeout=30)


def restart_minions(names: list[str]) -> None:
    """Restart the salt-minion service inside these nodes.

    Salt 3007 minions now and then wedge after their master restarts (the log stops on
    "Error dispatching event. Message timed out" while the unit stays active); the lab
    restarts a minion that stays silent instead of waiting for ever.
    """
    from . import node
    from .topology import NODES
    for name in names:
        if node.is_running(NODES[name]):
            say(f"restarting the silent minion on {name}")
            node.exec_(NODES[name], ["systemctl", "restart", "salt-minion"], timeout=60)


def silent_minions(names: list[str]) -> list[str]:
    proc = run([venv_bin("salt"), "-c", str(MASTER_CONFIG_DIR), "--out=json", "--static",
                "-t", "5", "-L", ",".join(names), "test.ping"], check=False, timeout=60)
    try:
        data = yaml.safe_load(proc.stdout) or {}
    except yaml.YAMLError:
        data = {}
    return [n for n in names if data.get(n) is not True]


def wait_for_minions(names: list[str], timeout: float = 120, recover_after: float = 30) -> None:
    """Wait until every named minion answers test.ping through the daemon master,
    restarting minions that are still silent after *recover_after* seconds."""
    import time
    start = time.monotonic()
    recovered = False
    while silent := silent_minions(names):
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            raise LabError(f"timed out after {timeout:.0f}s waiting for minions {', '.join(silent)}")
        if elapsed > recover_after and not recovered:
            restart_minions(silent)
            recovered = True
        time.sleep(1)


def log_problems(limit: int = 60, width: int = 1500) -> list[str]:
    """The master log's last *limit* warnings and errors, a line longer than *width*
    shortened to its start and its failed states (_shorten): what `make test` prints when
    a test failed, before `down` deletes the log (a CI run keeps only what was printed).
    Only each record's first line is kept (a traceback's lines carry no level)."""
    log = MASTER_ROOT / "master.log"
    if not log.exists():
        return [f"{log}: no master log"]
    levels = ("][WARNING ]", "][ERROR   ]", "][CRITICAL]")
    with log.open(errors="replace") as lines:
        found = [_shorten(line.rstrip("\n"), width) for line in lines if any(level in line for level in levels)]
    return found[-limit:]


def _shorten(line: str, width: int) -> str:
    """A long line (a whole state run's return) as its start and what surrounds each
    failed state, where the reason is."""
    if len(line) <= width:
        return line
    parts = [line[:300]]
    start = 0
    while len(parts) < 6 and (at := line.find("'result': False", start)) >= 0:
        parts.append(line[max(at - 500, start):at + 500])
        start = at + 500
    return " ... ".join(parts)


def purge_master_state() -> None:
    if master_pid():
        raise LabError("the salt-master is running")
    shutil.rmtree(MASTER_ROOT, ignore_errors=True)
