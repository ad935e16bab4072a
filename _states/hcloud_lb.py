"""
Hetzner Cloud load balancers as Salt states.

``present`` reads the load balancer first, works out what differs, and changes only
that, through Hetzner's update actions (change_type, change_algorithm,
add/update/delete_service, add/remove_target, attach_to_network, enable/disable
public interface), never by deleting and re-creating it. With ``test=True`` it
reports the same changes and makes none. Names that must exist before anything is
changed (servers, the network) are looked up first, so a missing one changes nothing.

orch.deploy applies it from the master with the arguments ``hcloud_lb.pgha_spec``
derives from the pillar:

.. code-block:: yaml

    lb-haproxy:
      hcloud_lb.present:
        - load_balancer_type: lb11
        - location: fsn1
        - services:
          - listen_port: 5432
            health_check: {protocol: http, port: 8404, interval: 5, timeout: 3,
                           retries: 2, http: {path: /health, status_codes: ["200"]}}
        - targets:
          - server: haproxy-01
          - server: haproxy-02
"""

import ipaddress
import logging
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "hcloud_lb"

# A target is exactly one of these (see ``present``).
TARGET_KINDS = ("server", "label_selector", "ip")


def __virtual__():
    if "hcloud_lb.lb_get" not in __salt__:
        return (False, "hcloud_lb state: the hcloud_lb execution module is not available "
                       "(it needs the hcloud library)")
    return __virtualname__


def _hc():
    settings = __salt__["pgha.config"](redact=False).get("hetzner") or {}
    return __utils__["pgha_hcloud.client"](settings)


def _target_key(target):
    kind = next(k for k in TARGET_KINDS if k in target)
    return kind, str(target[kind])


def _desired(load_balancer_type, location, network_zone, algorithm, labels, public_interface,
             services, targets):
    if bool(location) == bool(network_zone):
        raise SaltInvocationError("give exactly one of location or network_zone")
    normalised = [__utils__["pgha_hcloud.service_data"](s) for s in services or []]
    ports = [s["listen_port"] for s in normalised]
    if len(set(ports)) != len(ports):
        raise SaltInvocationError(f"services: listen ports repeat: {ports}")
    wanted_targets = []
    for target in targets or []:
        kinds = [k for k in TARGET_KINDS if target.get(k)]
        if len(kinds) != 1 or set(target) - {kinds[0], "use_private_ip"}:
            raise SaltInvocationError(f"target {target!r}: give exactly one of server, "
                                      "label_selector or ip (plus use_private_ip)")
        data = {kinds[0]: target[kinds[0]]}
        if kinds[0] == "ip":
            try:
                data["ip"] = str(ipaddress.ip_address(target["ip"]))
            except ValueError:
                raise SaltInvocationError(f"target {target!r}: not an IP address") from None
        else:
            data["use_private_ip"] = bool(target.get("use_private_ip", False))
        wanted_targets.append(data)
    return {
        "type": load_balancer_type,
        "location": location,
        "network_zone": network_zone,
        "algorithm": algorithm,
        "labels": {str(k): str(v) for k, v in (labels or {}).items()},
        "public_interface": bool(public_interface),
        "services": sorted(normalised, key=lambda s: s["listen_port"]),
        "targets": wanted_targets,
    }


def _resolve(hc, network, targets):
    """IDs of the network and of every server target; fails before any change."""
    call = __utils__["pgha_hcloud.call"]
    network_id = None
    if network:
        if str(network).isdigit():
            found = call(hc, f"read network {network}", hc.networks.get_by_id, int(network))
        else:
            found = call(hc, f"read network {network}", hc.networks.get_by_name, network)
        if not found:
            raise CommandExecutionError(f"no Hetzner Cloud network named {network!r}")
        network_id = found.id
    server_ids = {}
    for target in targets:
        if "server" in target:
            name = target["server"]
            found = call(hc, f"read server {name}", hc.servers.get_by_name, name)
            if not found:
                raise CommandExecutionError(
                    f"target server {name!r}: no such server in this Hetzner Cloud project "
                    "(targets default to the haproxy minion ids; list them in "
                    "pgha:hetzner:load_balancer:targets otherwise)")
            server_ids[name] = found.id
    return network_id, server_ids


def _plan(current, want, network_id, ip):
    """(change key, old, new) for every difference, in the order they can be applied.

    Hetzner refuses to switch the public interface off while the balancer has no network
    or a target does not use its private IP: switching on comes first, off comes last.
    """
    steps = []
    where = current["location"] if want["location"] else current["network_zone"]
    if where != (want["location"] or want["network_zone"]):
        raise CommandExecutionError(
            f"load balancer {current['name']} is in {where}; the pillar wants "
            f"{want['location'] or want['network_zone']}. A load balancer cannot move: "
            "remove it (hcloud_lb.absent) to re-create it there")
    public = ("public_interface", current["public_interface"], want["public_interface"])
    if want["public_interface"] and not current["public_interface"]:
        steps.append(public)
    for key in ("type", "algorithm", "labels"):
        if current[key] != want[key]:
            steps.append((key, current[key], want[key]))
    if network_id:
        if current["network"] not in (None, network_id):
            raise CommandExecutionError(
                f"load balancer {current['name']} is attached to network {current['network']}; "
                f"the pillar wants network {network_id}. A load balancer has one network: "
                "detach it first (hcloud load-balancer detach-from-network)")
        if current["network"] is None:
            steps.append(("network", {"network": None, "ip": None},
                          {"network": network_id, "ip": ip}))
        elif ip and current["ip"] != ip:
            raise CommandExecutionError(
                f"load balancer {current['name']} has IP {current['ip']} in network "
                f"{network_id}; the pillar wants {ip}. Changing it means detaching: do that "
                "by hand, on purpose")
    have = {s["listen_port"]: s for s in current["services"]}
    wanted = {s["listen_port"]: s for s in want["services"]}
    # Deleted first, so a port freed here can be taken by an added service.
    for port in sorted(set(have) - set(wanted)):
        steps.append(("service", have[port], None))
    for port in sorted(set(have) & set(wanted)):
        if have[port] != wanted[port]:
            steps.append(("service", have[port], wanted[port]))
    for port in sorted(set(wanted) - set(have)):
        steps.append(("service", None, wanted[port]))
    # Target by target (a changed one is removed and re-added at once), so the others
    # keep serving while one changes.
    have_targets = {_target_key(t): t for t in current["targets"]}
    want_targets = {_target_key(t): t for t in want["targets"]}
    for key in list(have_targets) + [k for k in want_targets if k not in have_targets]:
        old, new = have_targets.get(key), want_targets.get(key)
        if old != new:
            steps += [step for step in (("target", old, None), ("target", None, new))
                      if step[1] or step[2]]
    if current["public_interface"] and not want["public_interface"]:
        steps.append(public)
    return steps


def _apply(hc, lb, step, server_ids):
    key, old, new = step
    util = __utils__
    call = util["pgha_hcloud.call"]
    if key == "type":
        call(hc, f"change the type to {new}", lb.change_type, util["pgha_hcloud.lb_type"](new))
    elif key == "algorithm":
        call(hc, f"change the algorithm to {new}", lb.change_algorithm,
             util["pgha_hcloud.algorithm"](new))
    elif key == "labels":
        call(hc, "update the labels", lb.update, labels=new)
    elif key == "public_interface":
        call(hc, "switch the public interface " + ("on" if new else "off"),
             lb.enable_public_interface if new else lb.disable_public_interface)
    elif key == "network":
        call(hc, f"attach to network {new['network']}", lb.attach_to_network,
             util["pgha_hcloud.network"](new["network"]), ip=new["ip"])
    elif key == "service" and new is None:
        call(hc, f"delete the service on port {old['listen_port']}", lb.delete_service,
             util["pgha_hcloud.to_service"](old))
    elif key == "service":
        verb, func = ("update", lb.update_service) if old else ("add", lb.add_service)
        call(hc, f"{verb} the service on port {new['listen_port']}", func,
             util["pgha_hcloud.to_service"](new))
    elif key == "target":
        target = new or old
        verb, func = ("add", lb.add_target) if new else ("remove", lb.remove_target)
        server_id = server_ids.get(target.get("server")) if "server" in target else None
        call(hc, f"{verb} target {dict(target)}", func,
             util["pgha_hcloud.to_target"](target, server_id))


def _record(changes, step):
    key, old, new = step
    if key == "service":
        port = str((new or old)["listen_port"])
        changes.setdefault("services", {})[port] = {"old": old, "new": new}
    elif key == "target":
        entry = changes.setdefault("targets", {"removed": [], "added": []})
        entry["added" if new else "removed"].append(new or old)
    else:
        changes[key] = {"old": old, "new": new}


def present(name, load_balancer_type="lb11", location=None, network_zone=None,
            algorithm="round_robin", labels=None, network=None, ip=None,
            public_interface=True, services=None, targets=None):
    """
    The load balancer *name* exists as described.

    load_balancer_type
        lb11, lb21, lb31 (changed in place with change_type).
    location / network_zone
        Exactly one. Fixed once created: a different one is an error, not a re-create.
    algorithm
        round_robin or least_connections.
    labels
        The complete set of labels.
    network / ip
        A private network (name or ID) to attach to, and the IP to take in it.
    public_interface
        Whether the load balancer answers on its public IPs.
    services
        The complete list of services, each ``{listen_port, destination_port, protocol:
        tcp, proxyprotocol, health_check: {protocol: tcp|http, port, interval, timeout,
        retries, http: {path, status_codes, domain, response, tls}}}``. Services on other
        ports are deleted.
    targets
        The complete list of targets, each one of ``{server: NAME}``,
        ``{label_selector: "k=v"}`` or ``{ip: ADDRESS}``, with ``use_private_ip`` for the
        first two. Other targets are removed.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        want = _desired(load_balancer_type, location, network_zone, algorithm, labels,
                        public_interface, services, targets)
        hc = _hc()
        network_id, server_ids = _resolve(hc, network, want["targets"])
        lb = __utils__["pgha_hcloud.find"](hc, name)
        if lb is None:
            return _create(ret, hc, name, want, network_id, ip, server_ids)
        current = __utils__["pgha_hcloud.describe"](hc, lb)
        steps = _plan(current, want, network_id, ip)
        # Targets to remove are known by the IDs the balancer holds.
        server_ids = dict(current["server_ids"], **server_ids)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret.update(result=False, comment=f"load balancer {name}: {exc}")
        return ret
    if not steps:
        ret["comment"] = f"load balancer {name} is as described"
        return ret
    for step in steps:
        _record(ret["changes"], step)
    if __opts__["test"]:
        ret.update(result=None, comment=f"load balancer {name}: {len(steps)} change(s) would "
                                        "be made")
        return ret
    done = {}
    for step in steps:
        try:
            _apply(hc, lb, step, server_ids)
        except CommandExecutionError as exc:
            ret.update(result=False, changes=done,
                       comment=f"load balancer {name}: {exc}; the changes listed were made "
                               "before it, nothing after it")
            return ret
        _record(done, step)
    ret["comment"] = f"load balancer {name} updated ({len(steps)} change(s))"
    return ret


def _create(ret, hc, name, want, network_id, ip, server_ids):
    new = dict(want, network=network_id, ip=ip)
    ret["changes"] = {"load_balancer": {"old": None, "new": new}}
    if __opts__["test"]:
        ret.update(result=None, comment=f"load balancer {name} would be created")
        return ret
    util = __utils__
    # A fixed private IP is only given when attaching: create without the network (and
    # with the public interface on, which Hetzner requires until there is one), then
    # attach, add the private-IP targets, and only then switch the public interface off.
    later = [t for t in want["targets"] if ip and t.get("use_private_ip")]
    first = [t for t in want["targets"] if t not in later]
    lb = util["pgha_hcloud.create"](
        hc, name, dict(want, public_interface=want["public_interface"] or bool(ip)),
        [util["pgha_hcloud.to_service"](s) for s in want["services"]],
        [util["pgha_hcloud.to_target"](t, server_ids.get(t.get("server"))) for t in first],
        None if ip else network_id)
    steps = ([("network", None, {"network": network_id, "ip": ip})] if ip else []) + \
        [("target", None, t) for t in later] + \
        ([("public_interface", True, False)] if ip and not want["public_interface"] else [])
    for step in steps:
        try:
            _apply(hc, lb, step, server_ids)
        except CommandExecutionError as exc:
            ret.update(result=False, comment=f"load balancer {name} was created, then: {exc}. "
                                             "Re-run to finish it")
            return ret
    ret["comment"] = f"load balancer {name} created"
    return ret


def absent(name):
    """
    No load balancer called *name* exists. Deleting one also drops its services and
    targets; the servers behind it are untouched.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        hc = _hc()
        lb = __utils__["pgha_hcloud.find"](hc, name)
        if lb is None:
            ret["comment"] = f"load balancer {name} is already absent"
            return ret
        ret["changes"] = {"load_balancer": {"old": __utils__["pgha_hcloud.describe"](hc, lb),
                                            "new": None}}
        if __opts__["test"]:
            ret.update(result=None, comment=f"load balancer {name} would be deleted")
            return ret
        __utils__["pgha_hcloud.call"](hc, f"delete load balancer {name}", lb.delete)
    except CommandExecutionError as exc:
        ret.update(result=False, changes={}, comment=f"load balancer {name}: {exc}")
        return ret
    ret["comment"] = f"load balancer {name} deleted"
    return ret


def targets_healthy(name, timeout=180, interval=2):
    """
    Every target of the load balancer *name* passes every service's health check.
    Waits up to *timeout* seconds; changes nothing. Fails naming the targets and ports
    still unhealthy.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = __salt__["hcloud_lb.lb_status"](name)
        except CommandExecutionError as exc:
            status = {"healthy": False, "unhealthy": [str(exc)], "targets": {}}
        if status["healthy"]:
            ret["comment"] = (f"load balancer {name}: all {len(status['targets'])} targets "
                              f"healthy on ports {', '.join(status['services'])}")
            return ret
        if __opts__["test"] or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    ret["result"] = None if __opts__["test"] else False
    ret["comment"] = (f"load balancer {name}: not every target is healthy"
                      f"{'' if __opts__['test'] else f' after {timeout} s'}: "
                      f"{'; '.join(status['unhealthy']) or 'no targets'}")
    return ret
