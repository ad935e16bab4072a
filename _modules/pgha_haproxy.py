"""
The front of the cluster as one HAProxy node sees it: backend server states from the
local admin socket, and whether this node holds the VIP.
"""

import csv
import io
import ipaddress
import logging
import socket

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "pgha_haproxy"


def __virtual__():
    return __virtualname__


def _admin(command, path=None, timeout=3):
    path = path or __salt__["pgha.config"]()["haproxy"]["admin_socket"]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise CommandExecutionError(f"HAProxy admin socket {path}: {exc.strerror or exc}")
    return b"".join(chunks).decode()


def backends(socket_path=None):
    """
    Return every server of every proxy with its state (UP, DOWN, MAINT, ...), whether it
    is a backup, its last check result and its current sessions, from ``show stat`` on
    the admin socket (default: pgha:haproxy:admin_socket).

    CLI Example:

    .. code-block:: bash

        salt haproxy-01 pgha_haproxy.backends
    """
    text = _admin("show stat", socket_path)
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    servers = []
    for row in rows:
        if row.get("svname") in ("FRONTEND", "BACKEND", None):
            continue
        servers.append({
            "proxy": row["pxname"],
            "server": row["svname"],
            "status": row["status"],
            "backup": row.get("bck") == "1",
            "check": row.get("check_status", ""),
            "sessions": int(row.get("scur") or 0),
        })
    return servers


def holds_vip(vip=None):
    """
    Return True when this node carries the VIP (default: pgha:keepalived:vip).

    CLI Example:

    .. code-block:: bash

        salt 'haproxy-*' pgha_haproxy.holds_vip
    """
    vip = vip or __salt__["pgha.config"]()["keepalived"]["vip"]
    if not vip:
        raise CommandExecutionError("no VIP configured (pgha:keepalived:vip)")
    wanted = ipaddress.ip_address(vip)
    return any(ipaddress.ip_address(a) == wanted for a in __salt__["network.ip_addrs"]())
