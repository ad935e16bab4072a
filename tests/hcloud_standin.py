"""A local stand-in for the Hetzner Cloud API: the Load Balancer endpoints (plus the read-only
servers, networks and actions endpoints they refer to), for tests that drive the real `hcloud`
Python library against it.

It follows the documented API (https://docs.hetzner.cloud/reference/cloud): same URLs, bearer
token authentication, strict request validation, the `{"error": {"code", "message", "details"}}`
error shape with the documented codes, the same response objects and pagination meta, and
asynchronous actions that stay "running" for `action_delay` seconds so `wait_until_finished()`
really polls.  Health checks are real (TCP connects / HTTP GETs against the targets every
`interval * check_scale` seconds) and, with `forward=True`, every service listens on
`lb_address:listen_port` and hands each connection round-robin to a healthy target (sending a
PROXY v1 header when the service has `proxyprotocol`).

Simplifications: a change is applied when its request is accepted (its action only reports
progress); both algorithms balance round-robin; forwarding ignores the public interface switch;
certificates, metrics, rDNS and primary IPs are not modelled.  Delete returns an action, which
the hcloud library (2.27) requires.  `before(command, hook)` lets a test interleave a concurrent
change: commands are "create", "update" (PUT), "delete" and the action names ("add_service"...).
"""

from __future__ import annotations

import copy
import http.client
import ipaddress
import itertools
import json
import math
import socket
import ssl
import threading
import time
import traceback
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# name: (id, description, country, city, latitude, longitude, network_zone)
LOCATIONS = {
    "fsn1": (1, "Falkenstein DC Park 1", "DE", "Falkenstein", 50.47612, 12.370071, "eu-central"),
    "nbg1": (2, "Nuremberg DC Park 1", "DE", "Nuremberg", 49.452102, 11.076665, "eu-central"),
    "hel1": (3, "Helsinki DC Park 1", "FI", "Helsinki", 60.169855, 24.938379, "eu-central"),
    "ash": (4, "Ashburn, VA", "US", "Ashburn, VA", 39.045821, -77.487073, "us-east"),
    "hil": (5, "Hillsboro, OR", "US", "Hillsboro, OR", 45.54222, -122.95194, "us-west"),
    "sin": (6, "Singapore", "SG", "Singapore", 1.283333, 103.833333, "ap-southeast"),
}
# name: (id, max_connections, max_services, max_targets, max_assigned_certificates)
LB_TYPES = {"lb11": (1, 10000, 5, 25, 10), "lb21": (2, 20000, 15, 75, 25), "lb31": (3, 40000, 30, 150, 50)}
ACTION_COMMANDS = {"attach_to_network": "attach_load_balancer_to_network", "change_type": "change_load_balancer_type",
                   "detach_from_network": "detach_load_balancer_from_network"}
SVC_HTTP_DEFAULT = {"cookie_name": "HCLBSTICKY", "cookie_lifetime": 300, "certificates": [], "redirect_http": False,
                    "sticky_sessions": False, "timeout_idle": 60}
HC_HTTP_DEFAULT = {"domain": None, "path": "/", "response": "", "status_codes": ["2??", "3??"], "tls": False}


class ApiError(Exception):
    STATUS = {"unauthorized": 401, "json_error": 400, "invalid_input": 400, "not_found": 404, "server_error": 500,
              "method_not_allowed": 405, "uniqueness_error": 409, "source_port_already_used": 412, "protected": 423}

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.details = code, message, details or {}
        self.status = self.STATUS.get(code, 422)

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def _invalid(field: str, msg: str) -> ApiError:
    return ApiError("invalid_input", f"invalid input in field '{field}'",
                    {"fields": [{"name": field, "messages": [msg]}]})


@contextmanager
def _within(prefix: str):
    """Report invalid_input raised for a nested object (e.g. services[0]) under its full field name."""
    try:
        yield
    except ApiError as e:
        if e.code != "invalid_input":
            raise
        field = f"{prefix}.{e.details['fields'][0]['name']}"
        raise _invalid(field, e.details["fields"][0]["messages"][0]) from None


def _check(v, spec, name: str = "") -> None:
    """Validate v against spec or raise invalid_input naming the field.  A spec is a type or tuple of
    types (bool is never an int), a range of ints, a set of allowed strings, a one-item list (a list
    of those), a dict (an object: no unknown keys, keys ending in "!" are required) or a function
    f(value, name) that raises."""
    where = name or "body"
    if isinstance(spec, dict):
        if not isinstance(v, dict):
            raise _invalid(where, "must be an object")
        fields = {k.rstrip("!"): sub for k, sub in spec.items()}
        for k in [k for k in v if k not in fields] + [k[:-1] for k in spec if k.endswith("!") and k[:-1] not in v]:
            raise _invalid(f"{name}.{k}" if name else k, "unknown field" if k in v else "is required")
        for k, item in v.items():
            _check(item, fields[k], f"{name}.{k}" if name else k)
    elif isinstance(spec, list):
        if not isinstance(v, list):
            raise _invalid(where, "must be a list")
        for i, item in enumerate(v):
            _check(item, spec[0], f"{name}[{i}]")
    elif isinstance(spec, range):
        if type(v) is not int or v not in spec:
            raise _invalid(where, f"must be an integer between {spec.start} and {spec.stop - 1}")
    elif isinstance(spec, set):
        if not isinstance(v, str) or v not in spec:
            raise _invalid(where, f"must be one of: {', '.join(sorted(spec))}")
    elif isinstance(spec, (type, tuple)):
        if not isinstance(v, spec) or (isinstance(v, bool) and spec is not bool):
            raise _invalid(where, "has the wrong type")
    else:
        spec(v, where)


def _pred(ok, msg, base=str):
    def check(v, name):
        _check(v, base, name)
        if not ok(v):
            raise _invalid(name, msg)
    return check


def _labels(v, name):
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise _invalid(name, "must be an object with string values")


def _rejected(v, name):
    raise _invalid(name, "not supported by the stand-in")


def _is_ip(v):
    try:
        return bool(ipaddress.ip_address(v))
    except ValueError:
        return False


_PORT, _ID, _PROTO, _IP = range(1, 65536), range(1, 2**63), {"tcp", "http", "https"}, _pred(_is_ip, "must be an IP address")
_NAME_OR_ID, _ALGORITHM = (str, int), {"type!": {"round_robin", "least_connections"}}
_HEALTH = {"protocol": _PROTO, "port": _PORT, "interval": range(3, 61), "timeout": range(1, 61), "retries": range(0, 6),
           "http": {"domain": (str, type(None)), "response": str, "tls": bool,
                    "path": _pred(lambda p: p.startswith("/"), "must start with /"),
                    "status_codes": [_pred(lambda c: len(c) == 3 and c[0] in "12345" and all(x.isdigit() or x == "?" for x in c[1:]),
                                           "must look like 200 or 2??")]}}
_SERVICE = {"protocol": _PROTO, "listen_port!": _PORT, "destination_port": _PORT, "proxyprotocol": bool,
            "health_check": _HEALTH,
            "http": {"cookie_name": str, "cookie_lifetime": range(1, 2**31), "certificates": [_ID],
                     "redirect_http": bool, "sticky_sessions": bool, "timeout_idle": range(30, 301)}}
_SERVICE_ADD = {**{k: v for k, v in _SERVICE.items() if k != "protocol"}, "protocol!": _PROTO}
_TARGET_REMOVE = {"type!": {"server", "label_selector", "ip"}, "server": {"id!": _ID}, "ip": {"ip!": _IP},
                  "label_selector": {"selector!": _pred(bool, "must not be empty")}}
_TARGET_ADD = {**_TARGET_REMOVE, "use_private_ip": bool}
_CREATE = {"name!": _pred(bool, "must not be empty"), "load_balancer_type!": _NAME_OR_ID, "location": _NAME_OR_ID,
           "network_zone": {v[6] for v in LOCATIONS.values()}, "algorithm": _ALGORITHM, "labels": _labels,
           "services": [_SERVICE_ADD], "targets": [_TARGET_ADD], "public_interface": bool, "network": _ID,
           "public_net": _rejected}
_ACTIONS = {
    "add_service": _SERVICE_ADD, "update_service": _SERVICE, "delete_service": {"listen_port!": _PORT},
    "add_target": _TARGET_ADD, "remove_target": _TARGET_REMOVE, "change_algorithm": _ALGORITHM,
    "change_type": {"load_balancer_type!": _NAME_OR_ID}, "detach_from_network": {"network!": _ID},
    "attach_to_network": {"network!": _ID, "ip": _IP, "ip_range": str}, "change_protection": {"delete": bool},
    "enable_public_interface": {}, "disable_public_interface": {},
}


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _selector_matches(selector: str, labels: dict) -> bool:
    """Label selector subset: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-joined (all must hold)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("==" if "==" in term else "=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term not in labels:
            return False
    return True


def _ident(t: dict) -> tuple:
    kind = t["type"]
    return (kind, {"server": lambda: t["server"]["id"], "ip": lambda: t["ip"]["ip"],
                   "label_selector": lambda: t["label_selector"]["selector"]}[kind]())


def _probe(addr: str, hc: dict, timeout: float) -> bool:
    """One health check of addr as Hetzner's LB does it: TCP connect, or HTTP(S) GET + status/body match."""
    try:
        if hc["protocol"] == "tcp":
            socket.create_connection((addr, hc["port"]), timeout=timeout).close()
            return True
        h = hc["http"]
        if hc["protocol"] == "https" or h["tls"]:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            conn = http.client.HTTPSConnection(addr, hc["port"], timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(addr, hc["port"], timeout=timeout)
        try:
            conn.request("GET", h["path"], headers={"Host": h["domain"] or addr, "User-Agent": "hcloud-standin-check"})
            resp = conn.getresponse()
            body = resp.read(65536).decode("utf-8", "replace")
        finally:
            conn.close()
        code = str(resp.status)
        return (any(all(p in ("?", c) for p, c in zip(pat, code)) for pat in (h["status_codes"] or ["2??", "3??"]))
                and (not h["response"] or h["response"] in body))
    except (OSError, http.client.HTTPException):
        return False


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Listener:
    """One forwarding service: accepts on (lb_address, listen_port), splices to a healthy target."""

    def __init__(self, standin: HcloudStandin, lb_id: int, port: int):
        self.standin, self.key, self.stopped = standin, (lb_id, port), False
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET6 if ":" in standin.lb_address else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((standin.lb_address, port))
            self.sock.listen(64)
        except OSError:
            self.sock.close()
            raise
        self.thread = threading.Thread(target=self._accept, daemon=True, name=f"lb-{lb_id}:{port}")
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.sock.accept()
            except OSError:
                break
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, s: socket.socket, add: bool):
        with self.conns_lock:
            (self.conns.add if add else self.conns.discard)(s)

    def _serve(self, client: socket.socket):
        self._track(client, True)
        upstream = None
        try:
            target = None if self.stopped else self.standin._pick(*self.key)
            if target is None:
                return
            upstream = socket.create_connection(target[:2], timeout=3)
            upstream.settimeout(None)
            self._track(upstream, True)
            if target[2]:
                (sip, sport, *_), (dip, dport, *_) = client.getpeername(), client.getsockname()
                fam = "TCP6" if ":" in sip else "TCP4"
                upstream.sendall(f"PROXY {fam} {sip} {dip} {sport} {dport}\r\n".encode())
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join()
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    self._track(s, False)
                    s.close()

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        except OSError:
            pass
        self.thread.join(2)
        self.sock.close()
        with self.conns_lock:
            conns = list(self.conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HcloudStandin:
    def __init__(self, token: str, servers: list[dict] = (), networks: list[dict] = (),
                 lb_address: str = "127.0.0.1", forward: bool = False, action_delay: float = 0.2,
                 check_scale: float = 1.0):
        self.token, self.lb_address, self.forward = token, lb_address, forward
        self.action_delay, self.check_scale = action_delay, check_scale
        self.servers = {int(s["id"]): {"id": int(s["id"]), "name": s["name"], "public_ipv4": s.get("public_ipv4"),
                                       "private": {int(k): v for k, v in (s.get("private") or {}).items()},
                                       "labels": dict(s.get("labels") or {})} for s in servers}
        self.networks = {int(n["id"]): dict(n, id=int(n["id"])) for n in networks}
        self.url: str | None = None
        self.requests: list[tuple[str, str, dict | None]] = []
        self.errors: list[str] = []  # tracebacks of unexpected exceptions (answered 500), listener bind failures
        self._lock = threading.RLock()
        self._lbs: dict[int, dict] = {}
        self._actions: dict[int, tuple[dict, float]] = {}
        self._health: dict[tuple, dict] = {}  # (lb_id, listen_port, resolved target key) -> check state
        self._hooks: dict[str, list] = {}
        self._rr: dict[tuple, int] = {}
        self._listeners: dict[tuple, _Listener] = {}
        self._lb_ids, self._action_ids = itertools.count(1), itertools.count(1)
        self._created = _now()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle and test helpers ------------------------------------------------------------
    def start(self) -> HcloudStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = standin._dispatch(self.command, self.path, self.headers.get("Authorization"), raw)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        for target in (self._httpd.serve_forever, self._check_loop):
            self._threads.append(threading.Thread(target=target, daemon=True, name="hcloud-standin"))
            self._threads[-1].start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self._lock:
            self._sync_listeners()  # wants none once stopping
        for t in self._threads:
            t.join(2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def load_balancer(self, name: str) -> dict | None:
        with self._lock:
            lb = next((lb for lb in self._lbs.values() if lb["name"] == name), None)
            return None if lb is None else self._render(lb)

    def before(self, command: str, hook) -> None:
        """One-shot: hook(standin, lb_dict_or_None, body) runs just before the next `command` request."""
        with self._lock:
            self._hooks.setdefault(command, []).append(hook)

    def add_service_directly(self, lb_name: str, service_payload: dict) -> None:
        with self._lock:
            lb = next((lb for lb in self._lbs.values() if lb["name"] == lb_name), None)
            if lb is None:
                raise KeyError(f"no load balancer named {lb_name!r}")
            self._add_service(lb, copy.deepcopy(service_payload))
            self._changed()

    # --- HTTP dispatch -------------------------------------------------------------------------
    def _dispatch(self, method: str, path: str, auth: str | None, raw: bytes) -> tuple[int, dict | None]:
        body, bad_json = None, False
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            bad_json = True
        with self._lock:
            self.requests.append((method, path, body))
        try:
            if auth != f"Bearer {self.token}":
                raise ApiError("unauthorized", "unable to authenticate")
            if bad_json:
                raise ApiError("json_error", "request body is not valid JSON")
            if body is not None and not isinstance(body, dict):
                raise ApiError("json_error", "request body must be a JSON object")
            with self._lock:
                return self._route(method, path, body)
        except ApiError as e:
            return e.status, e.body()
        except Exception:  # a bug here, or a failing test hook: answer like the API would
            self.errors.append(traceback.format_exc())
            return 500, ApiError("server_error", "internal error in the stand-in").body()

    def _route(self, method, path, body):
        url = urlsplit(path)
        segs, query = [s for s in url.path.split("/") if s], parse_qs(url.query, keep_blank_values=True)
        if segs[:1] != ["v1"]:
            raise ApiError("not_found", "not found")

        def allow(*methods):
            if method not in methods:
                raise ApiError("method_not_allowed", f"method {method} not allowed here")

        def ident(s):
            if not s.isdigit():
                raise _invalid("id", "must be an integer")
            return int(s)

        by_name = {"name": lambda i, v: i["name"] == v[-1],
                   "label_selector": lambda i, v: _selector_matches(v[-1], i.get("labels") or {})}
        match segs[1:]:
            case ["load_balancers"]:
                allow("GET", "POST")
                if method == "POST":
                    return self._create(body)
                return self._page("load_balancers", [self._render(lb) for lb in self._sorted(self._lbs)], query, by_name)
            case ["load_balancers", "actions", aid] | ["actions", aid]:
                allow("GET")
                return 200, {"action": self._render_action(ident(aid))}
            case ["load_balancers", lid]:
                allow("GET", "PUT", "DELETE")
                return {"GET": self._get, "PUT": self._update, "DELETE": self._delete}[method](ident(lid), body)
            case ["load_balancers", lid, "actions"]:
                allow("GET")
                lb = self._lb(ident(lid))
                acts = [self._render_action(a) for a in sorted(self._actions)
                        if {"id": lb["id"], "type": "load_balancer"} in self._actions[a][0]["resources"]]
                return self._page("actions", acts, query, {"status": lambda i, v: i["status"] in v})
            case ["load_balancers", lid, "actions", cmd]:
                if cmd.isdigit():
                    allow("GET")
                    self._lb(ident(lid))
                    return 200, {"action": self._render_action(int(cmd))}
                allow("POST")
                return self._lb_action(ident(lid), cmd, body)
            case ["servers"]:
                allow("GET")
                items = [self._server_json(s) for s in self._sorted(self.servers)]
                return self._page("servers", items, query, {**by_name, "status": lambda i, v: i["status"] in v})
            case ["servers", sid]:
                allow("GET")
                s = self.servers.get(ident(sid)) or self._missing("server", sid)
                return 200, {"server": self._server_json(s)}
            case ["networks"]:
                allow("GET")
                return self._page("networks", [self._network_json(n) for n in self._sorted(self.networks)], query, by_name)
            case ["networks", nid]:
                allow("GET")
                n = self.networks.get(ident(nid)) or self._missing("network", nid)
                return 200, {"network": self._network_json(n)}
        raise ApiError("not_found", f"no such endpoint: {url.path}")

    @staticmethod
    def _sorted(d: dict) -> list:
        return [d[k] for k in sorted(d)]

    @staticmethod
    def _missing(what, ident):
        raise ApiError("not_found", f"{what} with ID {ident} not found")

    @staticmethod
    def _page(key, items, query, filters):
        for k in query:
            if k not in filters and k not in ("page", "per_page", "sort"):
                raise _invalid(k, "unknown query parameter")
        for k, pred in filters.items():
            if k in query:
                items = [i for i in items if pred(i, query[k])]

        def number(k, default, hi):
            v = query.get(k, [str(default)])[-1]
            if not v.isdigit() or not 1 <= int(v) <= hi:
                raise _invalid(k, f"must be an integer between 1 and {hi}")
            return int(v)

        page, per_page = number("page", 1, 10**9), number("per_page", 25, 50)
        last = max(1, math.ceil(len(items) / per_page))
        return 200, {key: items[(page - 1) * per_page:page * per_page], "meta": {"pagination": {
            "page": page, "per_page": per_page, "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None, "last_page": last, "total_entries": len(items)}}}

    # --- load balancer endpoints ---------------------------------------------------------------
    def _lb(self, lb_id: int) -> dict:
        return self._lbs.get(lb_id) or self._missing("load_balancer", lb_id)

    def _get(self, lb_id, _body):
        return 200, {"load_balancer": self._render(self._lb(lb_id))}

    def _run_hook(self, command, lb, body):
        if self._hooks.get(command):
            self._hooks[command].pop(0)(self, lb, body)

    def _create(self, body):
        self._run_hook("create", None, body)
        body = {} if body is None else body
        _check(body, _CREATE)
        if any(lb["name"] == body["name"] for lb in self._lbs.values()):
            raise ApiError("uniqueness_error", "name is already used", {"fields": [{"name": "name"}]})
        lb_type = self._lb_type(body["load_balancer_type"], "load_balancer_type")
        if "location" in body and "network_zone" in body:
            raise _invalid("network_zone", "location and network_zone are mutually exclusive")
        if "network_zone" in body:
            loc = next(n for n, v in LOCATIONS.items() if v[6] == body["network_zone"])
        else:
            loc = body.get("location", "fsn1")
        lb_id, dns = next(self._lb_ids), f"static.{self.lb_address}.clients.your-server.de"
        lb = {"id": lb_id, "name": body["name"], "created": _now(), "labels": dict(body.get("labels", {})),
              "public_net": {"enabled": body.get("public_interface", True),
                             "ipv4": {"ip": self.lb_address, "dns_ptr": dns, "blocked": False},
                             "ipv6": {"ip": "2001:db8::1", "dns_ptr": dns, "blocked": False}},
              "private_net": [], "location": self._location(loc), "load_balancer_type": lb_type,
              "protection": {"delete": False}, "targets": [], "services": [],
              "algorithm": {"type": body.get("algorithm", {}).get("type", "round_robin")},
              "outgoing_traffic": 0, "ingoing_traffic": 0, "included_traffic": 21990232555520}
        lb["public_net"]["enabled"] = True  # until the targets are in (checked below)
        if "network" in body:
            self._attach(lb, {"network": body["network"]})
        for i, service in enumerate(body.get("services", [])):
            with _within(f"services[{i}]"):
                self._add_service(lb, service)
        for i, target in enumerate(body.get("targets", [])):
            with _within(f"targets[{i}]"):
                self._add_target(lb, target)
        if not body.get("public_interface", True):
            self._check_private_only(lb)
            lb["public_net"]["enabled"] = False
        self._lbs[lb_id] = lb
        self._changed()
        return 201, {"load_balancer": self._render(lb), "action": self._action("create_load_balancer", lb_id)}

    def _update(self, lb_id, body):
        self._run_hook("update", self._lbs.get(lb_id), body)
        lb, body = self._lb(lb_id), {} if body is None else body
        _check(body, {"name": _pred(bool, "must not be empty"), "labels": _labels})
        if any(o["name"] == body.get("name") and o is not lb for o in self._lbs.values()):
            raise ApiError("uniqueness_error", "name is already used", {"fields": [{"name": "name"}]})
        lb.update(copy.deepcopy(body))
        return 200, {"load_balancer": self._render(lb)}

    def _delete(self, lb_id, body):
        self._run_hook("delete", self._lbs.get(lb_id), body)
        if self._lb(lb_id)["protection"]["delete"]:
            raise ApiError("protected", "load balancer is delete protected")
        del self._lbs[lb_id]
        self._changed()
        return 200, {"action": self._action("delete_load_balancer", lb_id)}

    def _lb_action(self, lb_id, cmd, body):
        if cmd not in _ACTIONS:
            raise ApiError("not_found", f"unknown action {cmd!r}")
        self._run_hook(cmd, self._lbs.get(lb_id), body)
        lb, body = self._lb(lb_id), {} if body is None else body
        _check(body, _ACTIONS[cmd])
        extra = []
        if cmd == "add_service":
            self._add_service(lb, body)
        elif cmd == "update_service":
            self._update_service(lb, body)
        elif cmd == "delete_service":
            self._service_index(lb, body["listen_port"])
            lb["services"] = [s for s in lb["services"] if s["listen_port"] != body["listen_port"]]
        elif cmd == "add_target":
            self._add_target(lb, body)
        elif cmd == "remove_target":
            self._target_shape(body)
            if not any(_ident(t) == _ident(body) for t in lb["targets"]):
                raise ApiError("not_found", "target not found")
            lb["targets"] = [t for t in lb["targets"] if _ident(t) != _ident(body)]
        elif cmd == "change_algorithm":
            lb["algorithm"] = {"type": body["type"]}
        elif cmd == "change_type":
            lb["load_balancer_type"] = self._lb_type(body["load_balancer_type"], "load_balancer_type")
        elif cmd == "attach_to_network":
            self._attach(lb, body)
            extra = [{"id": body["network"], "type": "network"}]
        elif cmd == "detach_from_network":
            self.networks.get(body["network"]) or self._missing("network", body["network"])
            if not any(p["network"] == body["network"] for p in lb["private_net"]):
                raise ApiError("load_balancer_not_attached_to_network", "The Load Balancer is not attached to this network")
            lb["private_net"] = [p for p in lb["private_net"] if p["network"] != body["network"]]
            extra = [{"id": body["network"], "type": "network"}]
        elif cmd == "change_protection":
            lb["protection"]["delete"] = body.get("delete", lb["protection"]["delete"])
        else:
            if cmd == "disable_public_interface":
                self._check_private_only(lb)
            lb["public_net"]["enabled"] = cmd == "enable_public_interface"
        self._changed()
        return 201, {"action": self._action(ACTION_COMMANDS.get(cmd, cmd), lb_id, extra)}

    @staticmethod
    def _lb_type(v, field):
        for name, (tid, conns, services, targets, certs) in LB_TYPES.items():
            if v in (name, tid) and not isinstance(v, bool):
                return {"id": tid, "name": name, "description": name.upper(), "max_connections": conns,
                        "max_services": services, "max_targets": targets, "max_assigned_certificates": certs,
                        "deprecated": None, "prices": []}
        raise _invalid(field, f"unknown load balancer type {v!r}")

    @staticmethod
    def _location(v):
        for name, (lid, desc, country, city, lat, lon, zone) in LOCATIONS.items():
            if v in (name, lid) and not isinstance(v, bool):
                return {"id": lid, "name": name, "description": desc, "country": country, "city": city,
                        "latitude": lat, "longitude": lon, "network_zone": zone}
        raise _invalid("location", f"unknown location {v!r}")

    # --- services, targets, networks -----------------------------------------------------------
    def _service_index(self, lb, port):
        for i, s in enumerate(lb["services"]):
            if s["listen_port"] == port:
                return i
        raise ApiError("not_found", f"service with listen port {port} not found")

    @staticmethod
    def _merge_service(svc, p):
        """Apply payload p onto stored service svc (in place) and check the result is consistent."""
        svc.update({k: p[k] for k in ("protocol", "destination_port", "proxyprotocol") if k in p})
        HcloudStandin._merge_http(svc, p, SVC_HTTP_DEFAULT, "http", "protocol")
        hc, hp = svc["health_check"], p.get("health_check", {})
        hc.update({k: v for k, v in hp.items() if k != "http"})
        HcloudStandin._merge_http(hc, hp, HC_HTTP_DEFAULT, "health_check.http", "health check protocol")

    @staticmethod
    def _merge_http(obj, payload, default, field, what):
        """obj's `http` part: none for tcp (the payload may not give one), else payload over stored."""
        if obj["protocol"] == "tcp":
            if "http" in payload:
                raise _invalid(field, f"only allowed for {what} http or https")
            obj.pop("http", None)
        else:
            obj["http"] = {**copy.deepcopy(obj.get("http") or default), **copy.deepcopy(payload.get("http", {}))}

    def _add_service(self, lb, p):
        _check(p, _SERVICE_ADD)
        if any(s["listen_port"] == p["listen_port"] for s in lb["services"]):
            raise ApiError("source_port_already_used", "The source port you are trying to add is already in use")
        if p["protocol"] == "tcp" and "destination_port" not in p:
            raise _invalid("destination_port", "is required for protocol tcp")
        dest = p.get("destination_port", 80)
        svc = {"protocol": p["protocol"], "listen_port": p["listen_port"], "destination_port": dest, "proxyprotocol": False,
               "health_check": {"protocol": "tcp", "port": dest, "interval": 15, "timeout": 10, "retries": 3}}
        self._merge_service(svc, p)
        lb["services"].append(svc)

    def _update_service(self, lb, p):
        i = self._service_index(lb, p["listen_port"])
        old = lb["services"][i]
        svc = copy.deepcopy(old)
        self._merge_service(svc, p)
        lb["services"][i] = svc
        if svc["health_check"] != old["health_check"]:  # checks restart from "unknown"
            for key in [k for k in self._health if k[:2] == (lb["id"], svc["listen_port"])]:
                del self._health[key]

    @staticmethod
    def _target_shape(p):
        for k in ("server", "label_selector", "ip"):
            if k == p["type"] and k not in p:
                raise _invalid(k, f"is required for target type {p['type']}")
            if k != p["type"] and k in p:
                raise _invalid(k, f"not allowed for target type {p['type']}")
        if p["type"] == "ip" and "use_private_ip" in p:
            raise _invalid("use_private_ip", "not allowed for target type ip")

    def _add_target(self, lb, p):
        _check(p, _TARGET_ADD)
        self._target_shape(p)
        kind, private = p["type"], p.get("use_private_ip", False)
        server = None
        if kind == "server":
            server = self.servers.get(p["server"]["id"]) or self._missing("server", p["server"]["id"])
        if kind == "ip" and any(p["ip"]["ip"] in (s["public_ipv4"], *s["private"].values()) for s in self.servers.values()):
            raise ApiError("cloud_resource_ip_not_allowed", "The IP you are trying to add as a target belongs to a Hetzner Cloud resource")
        if private and not lb["private_net"]:
            raise ApiError("load_balancer_not_attached_to_network", "The Load Balancer is not attached to a network")
        if private and server and lb["private_net"][0]["network"] not in server["private"]:
            raise ApiError("server_not_attached_to_network", "The server you are trying to add as a target is not "
                           "attached to the same network as the Load Balancer")
        if not private and not lb["public_net"]["enabled"]:
            raise ApiError("load_balancer_public_interface_disabled",
                           "The Load Balancer's public network interface is disabled")
        if any(_ident(t) == _ident(p) for t in lb["targets"]):
            raise ApiError("target_already_defined", "The Load Balancer target you are trying to define is already defined")
        target = {"type": kind, kind: dict(p[kind])}
        if kind != "ip":
            target["use_private_ip"] = private
        lb["targets"].append(target)

    @staticmethod
    def _check_private_only(lb):
        """A balancer without a public interface needs a network, and private targets only."""
        if not lb["private_net"]:
            raise ApiError("load_balancer_not_attached_to_network", "The Load Balancer is not attached to a network")
        if any(not t.get("use_private_ip") for t in lb["targets"]):
            raise ApiError("targets_without_use_private_ip",
                           "The Load Balancer has targets that use the public IP instead of the private IP")

    def _attach(self, lb, p):
        net = self.networks.get(p["network"]) or self._missing("network", p["network"])
        if lb["private_net"]:
            raise ApiError("load_balancer_already_attached", "The Load Balancer is already attached to a network")
        rng = pool = ipaddress.ip_network(net["ip_range"])
        if "ip_range" in p:
            try:
                pool = ipaddress.ip_network(p["ip_range"])
                if not pool.subnet_of(rng):
                    raise ValueError
            except (ValueError, TypeError):
                raise _invalid("ip_range", "must be a subnet of the network's ip_range") from None
        used = {s["private"][net["id"]] for s in self.servers.values() if net["id"] in s["private"]}
        used |= {pn["ip"] for o in self._lbs.values() for pn in o["private_net"] if pn["network"] == net["id"]}
        if "ip" in p:
            ip = ipaddress.ip_address(p["ip"])
            if (ip not in pool or p["ip"] in used
                    or ip in (rng.network_address, rng.network_address + 1, rng.broadcast_address)):
                raise ApiError("ip_not_available", "The requested IP is not available")
        else:
            ip = next((h for h in itertools.islice(pool.hosts(), 1, None) if str(h) not in used), None)
            if ip is None:
                raise ApiError("ip_not_available", "no free IP left in the network")
        lb["private_net"] = [{"network": net["id"], "ip": str(ip)}]

    # --- rendering -------------------------------------------------------------------------------
    def _selected(self, target) -> list[int]:
        sel = target["label_selector"]["selector"]
        return [sid for sid in sorted(self.servers) if _selector_matches(sel, self.servers[sid]["labels"])]

    def _resolved(self, lb) -> dict[tuple, str | None]:
        """Every concrete target of lb: resolved key -> address the LB sends health checks and traffic to."""
        out, net = {}, lb["private_net"][0]["network"] if lb["private_net"] else None
        for t in lb["targets"]:
            if t["type"] == "ip":
                out[("ip", t["ip"]["ip"])] = t["ip"]["ip"]
                continue
            for sid in [t["server"]["id"]] if t["type"] == "server" else self._selected(t):
                s, private = self.servers[sid], t["use_private_ip"]
                out[("server", sid, private)] = s["private"].get(net) if private else s["public_ipv4"]
        return out

    def _status(self, lb, rkey) -> list[dict]:
        return [{"listen_port": s["listen_port"],
                 "status": self._health.get((lb["id"], s["listen_port"], rkey), {}).get("status", "unknown")}
                for s in lb["services"]]

    def _render(self, lb) -> dict:
        out = copy.deepcopy(lb)
        for t in out["targets"]:
            if t["type"] == "label_selector":
                private = t["use_private_ip"]
                t["targets"] = [{"type": "server", "server": {"id": sid}, "use_private_ip": private,
                                 "health_status": self._status(lb, ("server", sid, private))} for sid in self._selected(t)]
            else:
                rkey = ("ip", t["ip"]["ip"]) if t["type"] == "ip" else ("server", t["server"]["id"], t["use_private_ip"])
                t["health_status"] = self._status(lb, rkey)
        return out

    def _action(self, command, lb_id, extra=()) -> dict:
        aid = next(self._action_ids)
        self._actions[aid] = ({"id": aid, "command": command, "status": "running", "progress": 0, "started": _now(),
                               "finished": None, "error": None,
                               "resources": [{"id": lb_id, "type": "load_balancer"}, *extra]},
                              time.monotonic() + self.action_delay)
        return self._render_action(aid)

    def _render_action(self, aid) -> dict:
        if aid not in self._actions:
            self._missing("action", aid)
        action, done_at = self._actions[aid]
        if action["status"] == "running" and time.monotonic() >= done_at:
            action.update(status="success", progress=100, finished=_now())
        return copy.deepcopy(action)

    def _server_json(self, s) -> dict:
        ip, sid = s["public_ipv4"], s["id"]
        ipv4 = None if ip is None else {"id": 100000 + sid, "ip": ip, "blocked": False,
                                        "dns_ptr": f"static.{ip}.clients.your-server.de"}
        return {"id": sid, "name": s["name"], "status": "running", "labels": dict(s["labels"]), "created": self._created,
                "public_net": {"ipv4": ipv4, "ipv6": None, "floating_ips": [], "firewalls": []},
                "private_net": [{"network": nid, "ip": pip, "alias_ips": [],
                                 "mac_address": f"86:00:00:{sid >> 8 & 255:02x}:{sid & 255:02x}:{nid & 255:02x}"}
                                for nid, pip in s["private"].items()],
                "load_balancers": [lb["id"] for lb in self._sorted(self._lbs)
                                   if any(k[0] == "server" and k[1] == sid for k in self._resolved(lb))],
                "protection": {"delete": False, "rebuild": False}}

    def _network_json(self, n) -> dict:
        return {"id": n["id"], "name": n["name"], "ip_range": n["ip_range"], "subnets": [], "routes": [],
                "servers": [sid for sid in sorted(self.servers) if n["id"] in self.servers[sid]["private"]],
                "load_balancers": [lb["id"] for lb in self._sorted(self._lbs)
                                   if any(p["network"] == n["id"] for p in lb["private_net"])],
                "labels": dict(n.get("labels") or {}), "protection": {"delete": False},
                "expose_routes_to_vswitch": False, "created": self._created}

    # --- health checks and forwarding ------------------------------------------------------------
    def _changed(self):
        """After any change: drop check state of vanished (service, target) pairs; sync listeners."""
        live = {(lb["id"], s["listen_port"], rkey) for lb in self._lbs.values()
                for s in lb["services"] for rkey in self._resolved(lb)}
        for key in [k for k in self._health if k not in live]:
            del self._health[key]
        self._sync_listeners()

    def _sync_listeners(self):
        want = set() if not self.forward or self._stop.is_set() else {
            (lb["id"], s["listen_port"]) for lb in self._lbs.values() for s in lb["services"]}
        for key in set(self._listeners) - want:
            self._listeners.pop(key).stop()
        for key in want - set(self._listeners):
            try:
                self._listeners[key] = _Listener(self, *key)
            except OSError as e:
                self.errors.append(f"cannot listen on {self.lb_address}:{key[1]} for load balancer {key[0]}: {e}")

    def _pick(self, lb_id, port):
        """Round-robin choice of a healthy target: (address, destination_port, proxyprotocol), or None."""
        with self._lock:
            lb = self._lbs.get(lb_id)
            svc = next((s for s in lb["services"] if s["listen_port"] == port), None) if lb else None
            if svc is None:
                return None
            healthy = [addr for rkey, addr in self._resolved(lb).items() if addr is not None
                       and self._health.get((lb_id, port, rkey), {}).get("status") == "healthy"]
            if not healthy:
                return None
            self._rr[(lb_id, port)] = n = self._rr.get((lb_id, port), -1) + 1
            return healthy[n % len(healthy)], svc["destination_port"], svc["proxyprotocol"]

    def _check_loop(self):
        while not self._stop.wait(0.05):
            now, jobs = time.monotonic(), []
            with self._lock:
                for lb in self._lbs.values():
                    targets = self._resolved(lb)
                    for svc in lb["services"]:
                        hc = svc["health_check"]
                        for rkey, addr in targets.items():
                            rec = self._health.setdefault((lb["id"], svc["listen_port"], rkey),
                                                          {"status": "unknown", "fails": 0, "due": now, "busy": False})
                            if not rec["busy"] and now >= rec["due"]:
                                rec.update(busy=True, due=now + hc["interval"] * self.check_scale)
                                jobs.append(((lb["id"], svc["listen_port"], rkey), rec, addr, copy.deepcopy(hc)))
            for job in jobs:
                threading.Thread(target=self._run_check, args=job, daemon=True).start()

    def _run_check(self, key, rec, addr, hc):
        ok = addr is not None and _probe(addr, hc, min(3.0, max(0.05, hc["timeout"] * self.check_scale)))
        with self._lock:
            rec["busy"] = False
            if self._health.get(key) is not rec:  # target removed or health check changed meanwhile
                return
            if ok:
                rec.update(status="healthy", fails=0)
            else:
                rec["fails"] += 1
                if rec["fails"] >= max(1, hc["retries"]):
                    rec["status"] = "unhealthy"
