"""pgha-lab: the command line of the local lab.

    pgha-lab up [--no-master]        fresh nodes (and the master daemon), from any leftover state
    pgha-lab down                    stop everything and leave nothing behind
    pgha-lab status [--json]         nodes, links, master and apt proxy
    pgha-lab exec NODE -- CMD...     run CMD inside NODE; exits with CMD's exit code
    pgha-lab shell NODE              an interactive shell inside NODE
    pgha-lab kill NODE               power cut: every task of the node dies at once, cable pulled
    pgha-lab stop NODE               clean shutdown
    pgha-lab start NODE              boot a stopped or killed node (its disk is kept)
    pgha-lab isolate NODE            pull the node's cable; it keeps running
    pgha-lab heal NODE               plug it back in
    pgha-lab add NODE                create and boot a spare node (pg-04) in a running lab
    pgha-lab remove NODE             power off and delete a node
    pgha-lab info                    how to reach the cluster: connection strings on the VIP
    pgha-lab master-log              the master log's last warnings and errors
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import lab, master, net, node
from .sh import LabError
from .topology import NODES


def _status(as_json: bool) -> int:
    rows = [node.status(n) for n in NODES.values() if n.dir.exists() or not n.spare]
    extra = {"master_pid": master.master_pid(), "apt_proxy_pid": lab.aptproxy.pid()}
    if as_json:
        print(json.dumps({"nodes": rows, **extra}, indent=2))
    else:
        print(f"{'node':<12} {'address':<16} {'roles':<10} {'system':<10} {'link':<7} pid")
        for r in rows:
            print(f"{r['name']:<12} {r['address']:<16} {','.join(r['roles']):<10} "
                  f"{r['system']:<10} {r['link']:<7} {r['nspawn_pid'] or '-'}")
        print(f"salt-master: {extra['master_pid'] or 'not running'}   "
              f"apt proxy: {extra['apt_proxy_pid'] or 'not running'}")
    return 0


def _client_conninfo(cfg: dict) -> dict | None:
    """The multi-host connection strings as map.jinja derives them (one source), asked
    from a postgres minion; None when the master or the minion does not answer."""
    import subprocess

    minion = next((n for n, spec in sorted(cfg["nodes"].items()) if "postgres" in spec["roles"]), None)
    if minion is None:
        return None
    proc = subprocess.run([master.venv_bin("salt"), "-c", str(master.MASTER_CONFIG_DIR), minion, "pgha.config",
                           "--out=json", "--static", "--timeout=20"], capture_output=True, text=True)
    try:
        return json.loads(proc.stdout)[minion]["client_conninfo"]
    except (ValueError, KeyError, TypeError):
        return None


def _info() -> int:
    """Connection strings, from the lab pillar merged over the formula's defaults."""
    from . import labpillar
    cfg = labpillar.merged()
    user, vip, haproxy = cfg["patroni"]["superuser"]["username"], cfg["keepalived"]["vip"], cfg["haproxy"]
    print(f"writer (primary):  postgresql://{user}@{vip}:{haproxy['writer_port']}/postgres")
    print(f"reader (replicas): postgresql://{user}@{vip}:{haproxy['reader_port']}/postgres")
    print("password:          pgha:patroni:superuser:password in pillar/pgha_secrets/postgres.sls")
    conninfo = _client_conninfo(cfg)
    if conninfo:
        print("without the proxy (libpq multi-host strings, as salt-run pgha.status shows them):")
        for kind in ("writer", "readers"):
            print(f"  {kind + ':':<16} {conninfo[kind]} user={user} sslrootcert=/var/lib/pgha-lab/tls/ca.crt")
    for name, spec in sorted(cfg["nodes"].items()):
        if "haproxy" in spec["roles"]:
            print(f"HAProxy stats:     https://{spec['address']}:{haproxy['stats']['port']}/ ({name}; "
                  "user and password: pgha:haproxy:stats; CA: /var/lib/pgha-lab/tls/ca.crt)")
    mon = cfg["monitoring"]
    for name, spec in sorted(cfg["nodes"].items()):
        if "monitor" in spec["roles"] and mon["enabled"]:
            print(f"Prometheus:        https://{spec['address']}:{mon['prometheus']['port']}/classic/targets ({name}; "
                  "CA: /var/lib/pgha-lab/tls/ca.crt)")
            print(f"Alertmanager:      https://{spec['address']}:{mon['alertmanager']['port']}/ ({name})")
    print("cluster status:    salt-run pgha.status      a node's shell: pgha-lab shell pg-01")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgha-lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="boot a fresh lab")
    p_up.add_argument("--no-master", action="store_true",
                      help="do not start the master daemon (the tests start their own)")
    sub.add_parser("down", help="tear the lab down")
    sub.add_parser("master", help="start the master daemon for the running nodes "
                                  "(after pytest, whose own master stops with it)")
    sub.add_parser("info", help="connection strings for the deployed cluster")
    sub.add_parser("master-log", help="the master log's last warnings and errors")
    p_status = sub.add_parser("status", help="show the lab")
    p_status.add_argument("--json", action="store_true")
    p_exec = sub.add_parser("exec", help="run a command inside a node")
    p_exec.add_argument("node")
    p_exec.add_argument("cmd", nargs=argparse.REMAINDER)
    for name in ("shell", "kill", "stop", "start", "isolate", "heal", "add", "remove"):
        sub.add_parser(name).add_argument("node")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            lab.up(with_master=not args.no_master)
        elif args.command == "down":
            lab.down()
        elif args.command == "master":
            lab.start_master()
        elif args.command == "status":
            return _status(args.json)
        elif args.command == "info":
            return _info()
        elif args.command == "master-log":
            print("\n".join(master.log_problems()))
        elif args.command == "exec":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                parser.error("exec needs a command after --")
            proc = node.exec_(lab_node(args.node), cmd, timeout=None)
            sys.stdout.write(proc.stdout)
            sys.stderr.write(proc.stderr)
            return proc.returncode
        elif args.command == "shell":
            argv = node.nsenter_argv(lab_node(args.node)) + [f"TERM={os.environ.get('TERM', 'xterm')}",
                                                            "/bin/bash", "-l"]
            os.execvp(argv[0], argv)
        elif args.command == "kill":
            node.kill(lab_node(args.node))
        elif args.command == "stop":
            node.stop(lab_node(args.node))
        elif args.command == "start":
            node.start(lab_node(args.node))
        elif args.command == "isolate":
            net.set_link(lab_node(args.node), up=False)
        elif args.command == "heal":
            net.set_link(lab_node(args.node), up=True)
        elif args.command == "add":
            lab.add(args.node)
        elif args.command == "remove":
            lab.remove(args.node)
    except LabError as exc:
        print(f"pgha-lab {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def lab_node(name: str) -> node.Node:
    if name not in NODES:
        raise LabError(f"unknown node {name!r}; the lab has: {', '.join(NODES)}")
    return NODES[name]


if __name__ == "__main__":
    sys.exit(main())
