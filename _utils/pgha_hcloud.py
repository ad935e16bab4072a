"""
Hetzner Cloud plumbing shared by the hcloud_lb execution and state modules.

One place builds the API client from the formula's ``pgha:hetzner`` settings, turns
every API failure into a ``CommandExecutionError`` carrying Hetzner's error code and
message, and describes a load balancer as plain data (the shape the ``hcloud_lb``
state takes as arguments, so the two compare key by key).

The token comes from ``pgha:hetzner:token`` or, when that is empty, from
``HCLOUD_TOKEN`` in the environment of the process running the module (the
salt-master, for orchestrations). It is only ever handed to the library: nothing here
returns, logs or raises it.
"""

import ipaddress
import logging
import os

from salt.exceptions import CommandExecutionError

try:
    import requests
    from hcloud import APIException, Client
    from hcloud.actions import ActionException, BoundAction
    from hcloud.load_balancer_types import LoadBalancerType
    from hcloud.load_balancers import (
        CreateLoadBalancerResponse,
        LoadBalancerAlgorithm,
        LoadBalancerHealthCheck,
        LoadBalancerHealthCheckHttp,
        LoadBalancerService,
        LoadBalancerTarget,
        LoadBalancerTargetIP,
        LoadBalancerTargetLabelSelector,
    )
    from hcloud.load_balancers.domain import DeleteLoadBalancerResponse
    from hcloud.locations import Location
    from hcloud.networks import Network
    from hcloud.servers import Server
    HAS_HCLOUD = True
except ImportError:
    HAS_HCLOUD = False

log = logging.getLogger(__name__)

__virtualname__ = "pgha_hcloud"

DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
# What an HTTP health check holds when the API leaves a field out.
HTTP_CHECK_DEFAULTS = {"domain": None, "path": "/", "response": "",
                       "status_codes": ["2??", "3??"], "tls": False}


def __virtual__():
    if not HAS_HCLOUD:
        return (False, "pgha_hcloud needs the hcloud library (pip install hcloud==2.27.0)")
    return __virtualname__


def endpoint(settings):
    """The API endpoint: ``pgha:hetzner:api_endpoint``, HCLOUD_ENDPOINT, or Hetzner's."""
    return settings.get("api_endpoint") or os.environ.get("HCLOUD_ENDPOINT") or DEFAULT_ENDPOINT


def client(settings):
    """An ``hcloud.Client`` for the project whose token *settings* (``pgha:hetzner``) name."""
    # Stray whitespace (a token pasted from a file) would make requests reject the header
    # with the token in its message.
    token = (settings.get("token") or os.environ.get("HCLOUD_TOKEN") or "").strip()
    if not token:
        raise CommandExecutionError(
            "no Hetzner Cloud API token: set pgha:hetzner:token in a pillar only the "
            "master sees, or HCLOUD_TOKEN in the salt-master's environment")
    # Actions (create, add_service, ...) finish in a second or two: poll often at first.
    hc = Client(token=token, api_endpoint=endpoint(settings), application_name="pgha",
                poll_interval=lambda retries: min(0.25 * retries, 2.0),
                poll_max_retries=240, timeout=(5, 30))
    hc.pgha_endpoint = endpoint(settings)  # for error messages; the token stays inside
    return hc


def call(hc, what, func, *args, **kwargs):
    """
    Run one API call (and wait for the action it starts, if any); any failure becomes
    a ``CommandExecutionError`` that names *what* was being done and Hetzner's error
    code and message. The library's own exception is not chained: its text can hold
    request headers, and so the token.
    """
    try:
        result = func(*args, **kwargs)
        responses = (CreateLoadBalancerResponse, DeleteLoadBalancerResponse)
        action = result.action if isinstance(result, responses) else result
        if isinstance(action, BoundAction):
            action.wait_until_finished()
        return result
    except APIException as exc:
        raise CommandExecutionError(f"Hetzner Cloud API: {exc.code}: {exc.message} (while "
                                    f"trying to {what})") from None
    except ActionException as exc:
        error = exc.action.error or {}
        raise CommandExecutionError(
            f"Hetzner Cloud API: action {exc.action.command} {exc.action.status}: "
            f"{error.get('code', '')}: {error.get('message', '')} (while trying to {what})") from None
    except requests.RequestException as exc:
        raise CommandExecutionError(f"cannot reach the Hetzner Cloud API at {hc.pgha_endpoint} "
                                    f"(while trying to {what}): {type(exc).__name__}") from None


# ---- plain-data descriptions -------------------------------------------------------------

def health_check_data(check):
    """A service's health check as plain data, HTTP fields filled in for http checks."""
    data = {key: check.get(key) for key in ("protocol", "port", "interval", "timeout",
                                            "retries")}
    if data["protocol"] != "tcp":
        http = dict(HTTP_CHECK_DEFAULTS)
        http.update({k: v for k, v in (check.get("http") or {}).items() if v is not None})
        # The API may answer "" where it was sent null (or the reverse): both mean unset.
        http["domain"] = http["domain"] or None
        http["response"] = http["response"] or ""
        data["http"] = http
    return data


def service_data(service):
    """A service (``hcloud`` domain object or dict) as plain data."""
    if not isinstance(service, dict):
        check = service.health_check
        service = {
            "protocol": service.protocol,
            "listen_port": service.listen_port,
            "destination_port": service.destination_port,
            "proxyprotocol": service.proxyprotocol,
            "health_check": {
                "protocol": check.protocol, "port": check.port, "interval": check.interval,
                "timeout": check.timeout, "retries": check.retries,
                "http": None if check.http is None else {
                    key: getattr(check.http, key) for key in HTTP_CHECK_DEFAULTS},
            },
        }
    return {
        "protocol": service.get("protocol", "tcp"),
        "listen_port": service["listen_port"],
        "destination_port": service.get("destination_port", service["listen_port"]),
        "proxyprotocol": bool(service.get("proxyprotocol", False)),
        "health_check": health_check_data(service.get("health_check") or {}),
    }


def target_data(target, server_names):
    if target.type == "server":
        data = {"server": server_names.get(target.server.id, target.server.id)}
    elif target.type == "label_selector":
        data = {"label_selector": target.label_selector.selector}
    else:
        data = {"ip": str(ipaddress.ip_address(target.ip.ip))}  # one spelling per address
    if target.type != "ip":
        data["use_private_ip"] = bool(target.use_private_ip)
    return data


def health(target, server_names):
    """{listen_port: status} of one target; a label selector's servers each count."""
    nested = (target.targets or []) if target.type == "label_selector" else [target]
    health = {}
    for each in nested:
        label = (server_names.get(each.server.id, each.server.id) if each.type == "server"
                 else each.ip.ip)
        health[str(label)] = {str(status.listen_port): status.status
                              for status in (each.health_status or [])}
    return health


def server_names(hc, lb):
    ids = set()
    for target in lb.targets or []:
        for each in [target] + list(target.targets or []):
            if each.type == "server":
                ids.add(each.server.id)
    return {sid: call(hc, f"read server {sid}", hc.servers.get_by_id, sid).name for sid in ids}


def describe(hc, lb):
    """A bound load balancer as plain data (what ``lb_get`` returns)."""
    names = server_names(hc, lb)
    private = lb.private_net or []
    return {
        "id": lb.id,
        "name": lb.name,
        "type": lb.load_balancer_type.name,
        "location": lb.location.name,
        "network_zone": lb.location.network_zone,
        "algorithm": lb.algorithm.type,
        "labels": dict(lb.labels or {}),
        "public_interface": bool(lb.public_net.enabled),
        "public_ipv4": lb.public_net.ipv4.ip if lb.public_net.ipv4 else None,
        "network": private[0].network.id if private else None,
        "ip": private[0].ip if private else None,
        "services": sorted((service_data(s) for s in lb.services or []),
                           key=lambda s: s["listen_port"]),
        "targets": [target_data(t, names) for t in lb.targets or []],
        # For removing a server target by the name shown above.
        "server_ids": {name: sid for sid, name in names.items()},
        "health": {key: value for t in lb.targets or [] for key, value in health(t, names).items()},
    }


def find(hc, name):
    """The bound load balancer called *name*, or None."""
    return call(hc, f"read load balancer {name}", hc.load_balancers.get_by_name, name)


# ---- plain data to the library's domain objects --------------------------------------

def to_service(data):
    """A ``LoadBalancerService`` from plain data (as ``service_data`` returns it)."""
    check = data["health_check"]
    http = check.get("http")
    return LoadBalancerService(
        protocol=data["protocol"], listen_port=data["listen_port"],
        destination_port=data["destination_port"], proxyprotocol=data["proxyprotocol"],
        health_check=LoadBalancerHealthCheck(
            protocol=check["protocol"], port=check["port"], interval=check["interval"],
            timeout=check["timeout"], retries=check["retries"],
            http=LoadBalancerHealthCheckHttp(**http) if http else None))


def to_target(data, server_id=None):
    """A ``LoadBalancerTarget`` from plain data; a server target needs its *server_id*."""
    if "server" in data:
        return LoadBalancerTarget(type="server", server=Server(id=server_id),
                                  use_private_ip=data.get("use_private_ip", False))
    if "label_selector" in data:
        return LoadBalancerTarget(
            type="label_selector", use_private_ip=data.get("use_private_ip", False),
            label_selector=LoadBalancerTargetLabelSelector(selector=data["label_selector"]))
    return LoadBalancerTarget(type="ip", ip=LoadBalancerTargetIP(ip=data["ip"]))


def create(hc, name, spec, services, targets, network_id):
    """Create the load balancer in one call; returns the bound load balancer."""
    response = call(
        hc, f"create load balancer {name}", hc.load_balancers.create,
        name=name, load_balancer_type=LoadBalancerType(name=spec["type"]),
        algorithm=LoadBalancerAlgorithm(type=spec["algorithm"]), labels=spec["labels"],
        location=Location(name=spec["location"]) if spec["location"] else None,
        network_zone=spec["network_zone"] if not spec["location"] else None,
        public_interface=spec["public_interface"],
        network=Network(id=network_id) if network_id else None,
        services=services, targets=targets)
    return response.load_balancer


def lb_type(name):
    return LoadBalancerType(name=name)


def algorithm(name):
    return LoadBalancerAlgorithm(type=name)


def network(network_id):
    return Network(id=network_id)
