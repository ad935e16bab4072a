"""
Hetzner Cloud load balancers, through the official ``hcloud`` library: read and report.
``hcloud_lb.present`` / ``absent`` (the state module) change them.

Settings come from the formula's ``pgha:hetzner`` pillar (token, endpoint, the load
balancer's description); see ``pgha_hcloud`` (``_utils/``) for how the token is found
and kept out of every output. API errors carry Hetzner's code and message, e.g.
``Hetzner Cloud API: source_port_already_used: The source port you are trying to add
is already in use``.
"""

import logging

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "hcloud_lb"


def __virtual__():
    if "pgha_hcloud.client" not in __utils__:
        return (False, "hcloud_lb needs the hcloud library (pip install hcloud==2.27.0) "
                       "and the pgha_hcloud utility (saltutil.sync_utils)")
    return __virtualname__


def _settings():
    return __salt__["pgha.config"](redact=False).get("hetzner") or {}


# ---- public functions -------------------------------------------------------------------

def lb_get(name):
    """
    Describe the load balancer *name*: type, location, algorithm, labels, network and
    IP, public interface, services with their health checks, targets, and each target's
    health per listen port. Returns None when there is no such load balancer.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd hcloud_lb.lb_get lb-haproxy
    """
    if not name:
        raise SaltInvocationError("lb_get: name the load balancer")
    hc = __utils__["pgha_hcloud.client"](_settings())
    lb = __utils__["pgha_hcloud.find"](hc, name)
    return __utils__["pgha_hcloud.describe"](hc, lb) if lb else None


def lb_list(label_selector=None):
    """
    Names of the project's load balancers, optionally only those matching a Hetzner
    label selector (``managed-by=pgha``).

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd hcloud_lb.lb_list label_selector=managed-by=pgha
    """
    hc = __utils__["pgha_hcloud.client"](_settings())
    found = __utils__["pgha_hcloud.call"](hc, "list load balancers", hc.load_balancers.get_all,
                                          label_selector=label_selector)
    return sorted(lb.name for lb in found)


def lb_status(name):
    """
    Health of every target of the load balancer *name*, per service:
    ``{"targets": {"haproxy-01": {"5432": "healthy", ...}, ...}, "healthy": bool,
    "unhealthy": ["haproxy-02:5433 unknown", ...]}``. A label-selector target counts
    as the servers it matched. ``healthy`` is true only when there is at least one
    target and every target passes every service's check.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd hcloud_lb.lb_status lb-haproxy
    """
    data = lb_get(name)
    if data is None:
        raise CommandExecutionError(f"no Hetzner Cloud load balancer named {name!r}")
    ports = [str(s["listen_port"]) for s in data["services"]]
    problems = [f"{target}:{port} {health.get(port, 'unknown')}"
                for target, health in sorted(data["health"].items()) for port in ports
                if health.get(port) != "healthy"]
    return {"name": name, "services": ports, "targets": data["health"],
            "healthy": bool(data["health"]) and bool(ports) and not problems,
            "unhealthy": problems}


def address(name=None):
    """
    The address clients reach the cluster at through the load balancer:
    ``pgha:hetzner:address`` if set, else the load balancer's private IP in its
    network, else its public IPv4.

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd hcloud_lb.address
    """
    hz = _settings()
    if hz.get("address"):
        return hz["address"]
    name = name or (hz.get("load_balancer") or {}).get("name")
    data = lb_get(name)
    if data is None:
        raise CommandExecutionError(f"no Hetzner Cloud load balancer named {name!r}")
    return data["ip"] or data["public_ipv4"]


def pgha_spec():
    """
    The arguments for ``hcloud_lb.present`` that the pillar describes (``pgha:hetzner``
    and ``pgha:haproxy``): a TCP service on the writer port, one on the reader port
    when ``reader_service`` is on, each checked against every HAProxy, and the targets
    (by default every haproxy node, as a server of that name).

    CLI Example:

    .. code-block:: bash

        salt-run salt.cmd hcloud_lb.pgha_spec
    """
    cfg = __salt__["pgha.config"](redact=False)
    lb = cfg["hetzner"]["load_balancer"]
    haproxy = cfg["haproxy"]
    private = bool(lb.get("network"))

    def service(port):
        check = dict(lb["health_check"])
        if check["protocol"] == "http":
            check.update(port=haproxy["health"]["port"],
                         http={"path": haproxy["health"]["path"], "status_codes": ["200"]})
        else:
            check["port"] = port
        return {"protocol": "tcp", "listen_port": port, "destination_port": port,
                "proxyprotocol": lb["proxy_protocol"], "health_check": check}

    ports = [haproxy["writer_port"]] + ([haproxy["reader_port"]] if lb["reader_service"] else [])
    targets = lb.get("targets") or [{"server": name} for name in cfg["haproxy_members"]]
    targets = [dict(t, use_private_ip=private) if "ip" not in t else dict(t) for t in targets]
    return {
        "name": lb["name"],
        "load_balancer_type": lb["type"],
        "location": lb.get("location"),
        "network_zone": lb.get("network_zone"),
        "algorithm": lb["algorithm"],
        "labels": lb.get("labels") or {},
        "network": lb.get("network"),
        "ip": lb.get("ip"),
        "public_interface": lb["public_interface"],
        "services": [service(port) for port in ports],
        "targets": targets,
    }
