"""A real HTTP server on 127.0.0.1 that answers as Patroni's REST API and etcd's JSON
gateway would, from what a test puts in it: pgha's modules then run unchanged (their own
requests, URLs, auth and error handling), and the test reads what they sent."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def merge_patch(target: dict, patch: dict) -> dict:
    """Patroni's PATCH /config: a recursive merge, where null removes a key."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


class FakeServices:
    """Patroni (/config) and etcd (/v3/auth/authenticate, /v3/kv/range) on one port.

    config
        Patroni's dynamic configuration.
    kv
        etcd's keys (str -> str).
    conflicts
        How many PATCH /config answer 409 before one is applied (a concurrent writer);
        *on_conflict* is applied to the configuration each time, as that writer's change.
    """

    def __init__(self):
        self.config: dict = {}
        self.kv: dict[str, str] = {}
        self.conflicts = 0
        self.on_conflict: dict = {}
        self.requests: list[tuple[str, str, object]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()

    def sent(self, method: str, path: str) -> list:
        return [body for m, p, body in self.requests if (m, p) == (method, path)]

    def _answer(self, method, path, body):
        if (method, path) == ("GET", "/config"):
            return 200, self.config
        if (method, path) == ("PATCH", "/config"):
            if self.conflicts:
                self.conflicts -= 1
                self.config = merge_patch(self.config, self.on_conflict)
                return 409, "Conflict"
            self.config = merge_patch(self.config, body)
            return 200, self.config
        if (method, path) == ("POST", "/v3/auth/authenticate"):
            return 200, {"token": "fake-token"}
        if (method, path) == ("POST", "/v3/kv/range"):
            key = base64.b64decode(body["key"]).decode()
            if key not in self.kv:
                return 200, {"header": {}, "count": "0"}
            value = base64.b64encode(self.kv[key].encode()).decode()
            return 200, {"header": {}, "kvs": [{"key": body["key"], "value": value}], "count": "1"}
        return 404, {"error": f"no fake for {method} {path}"}

    def _handler(self):
        services = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                services.requests.append((self.command, self.path, body))
                status, answer = services._answer(self.command, self.path, body)
                data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

        return Handler
