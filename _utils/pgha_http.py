"""
HTTP plumbing shared by the patroni and etcd3 execution modules and the pgha runner.

One place decides how pgha talks to a service's HTTP API: timeouts, TLS verification,
client certificates, basic auth, and how failures read. Every failure becomes a
``CommandExecutionError`` that names the service and the URL and carries the service's
own response text, never a traceback.
"""

import logging
import re

from salt.exceptions import CommandExecutionError

try:
    import requests

    HAS_REQUESTS = True
except ImportError:  # pragma: no cover - requests ships with Salt
    HAS_REQUESTS = False

log = logging.getLogger(__name__)

__virtualname__ = "pgha_http"


def __virtual__():
    if not HAS_REQUESTS:
        return (False, "pgha_http needs the requests library")
    return __virtualname__


class _Unreachable(Exception):
    pass


def request(method, bases, path, service, *, json=None, params=None, timeout=5, tls=None,
            auth=None, headers=None, expect=(200,)):
    """
    Send one request to the first of *bases* that answers; return
    ``(base, status_code, body)``. Body is parsed JSON when the service sent JSON, else text.

    bases
        Base URLs (``https://host:port``) to try in order, or a single one. The next is
        tried only when one is unreachable: an HTTP answer, even an error, is the answer.
    service
        Human name for messages ("Patroni REST API", "etcd").
    tls
        ``{"ca": path, "cert": path, "key": path}`` or None.
    auth
        ``(username, password)`` for basic auth, or None.
    headers
        Extra request headers (etcd's gateway takes its auth token in Authorization).
    expect
        Status codes that count as success; anything else raises with the response text.
        ``None`` accepts every status (health endpoints answer 503 by design).
    """
    bases = [bases] if isinstance(bases, str) else list(bases)
    if not bases:
        raise CommandExecutionError(f"no {service} endpoints configured")
    errors = []
    for base in bases:
        try:
            status, body = _one(method, base, path, service, json, params, timeout, tls, auth,
                                headers)
        except _Unreachable as exc:
            errors.append(str(exc))
            continue
        if expect is not None and status not in expect:
            text = body if isinstance(body, str) else (body.get("message") or body.get("error") or body)
            raise CommandExecutionError(
                f"{service} {method} {base + path} returned HTTP {status}: {text}")
        return base, status, body
    raise CommandExecutionError("; ".join(errors))


def _one(method, base, path, service, json, params, timeout, tls, auth, headers):
    url = base + path
    tls = tls or {}
    verify = tls.get("ca") or True
    cert = (tls["cert"], tls["key"]) if tls.get("cert") and tls.get("key") else None
    try:
        resp = requests.request(method, url, json=json, params=params, timeout=timeout,
                                verify=verify, cert=cert, auth=auth, headers=headers)
    except requests.exceptions.SSLError as exc:
        raise CommandExecutionError(f"{service} at {base}: TLS handshake failed: {_reason(exc)}")
    except requests.exceptions.Timeout:
        raise _Unreachable(f"{service} at {base} did not answer {method} {path} within {timeout}s")
    except requests.exceptions.ConnectionError as exc:
        raise _Unreachable(f"{service} at {base} is unreachable: {_reason(exc)}")
    try:
        body = resp.json()
    except ValueError:
        body = resp.text.strip()
    return resp.status_code, body


def _reason(exc):
    """The human part of a requests/urllib3 error: 'Connection refused', 'No route to host'."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\"()]+)", text)
    if match:
        return match.group(1).strip()
    match = re.search(r"\[SSL: [^\]]+\] ([^'\"()]+)", text)
    if match:
        return match.group(1).strip()
    return text or exc.__class__.__name__
