"""The Hetzner Cloud load balancer front end (frontend: hetzner).

The modules run through Salt's own loaders and the real ``hcloud`` library, against
``HcloudStandin``, a local stand-in for the Hetzner Cloud API that validates every
request and health-checks the targets for real. The lab test then runs orch.deploy
with the front end switched to hetzner: the stand-in forwards 198.51.100.1:5432/5433
to the haproxy nodes like the cloud balancer would, and the rollout's end-to-end
check goes through it. A live test against the real API runs only with HCLOUD_TOKEN.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import threading
import uuid

import pytest
from conftest import CONNECT_PROBE, HAPROXY_NODES, SUPERUSER, orchestrate, pg_connect, pillar_override, probe_from, sql, wait_for
from hcloud_standin import HcloudStandin

from pgha_lab import master as lab_master
from pgha_lab.topology import HOST_ADDRESS, NODES, REPO_ROOT

TOKEN = "standin-token-" + uuid.uuid4().hex
LB = "lb-haproxy-test"
HEALTH_PORT = 18404
# Two fake haproxy servers on loopback addresses, each answering the health check.
SERVERS = [{"id": 101, "name": "haproxy-01", "public_ipv4": "127.0.0.11", "private": {7: "10.0.0.11"}},
           {"id": 102, "name": "haproxy-02", "public_ipv4": "127.0.0.12", "private": {7: "10.0.0.12"}},
           {"id": 103, "name": "haproxy-03", "public_ipv4": "127.0.0.13", "private": {}}]
NETWORKS = [{"id": 7, "name": "pgha-net", "ip_range": "10.0.0.0/16"}]
PRIVATE_TARGETS = [{"server": "haproxy-01", "use_private_ip": True},
                   {"server": "haproxy-02", "use_private_ip": True}]
MUTATING = ("POST", "PUT", "DELETE")
# The lab run's figures (orch.deploy with the balancer step), for the README.
TIMINGS = REPO_ROOT / "bench" / "out" / "hetzner.json"


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def health_endpoint(address: str):
    server = http.server.ThreadingHTTPServer((address, HEALTH_PORT), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def spec(**changes) -> dict:
    """present()'s arguments as orch.deploy passes them; *changes* replace keys."""
    check = {"protocol": "http", "port": HEALTH_PORT, "interval": 3, "timeout": 2, "retries": 1,
             "http": {"path": "/health", "status_codes": ["200"]}}
    args = {
        "name": LB, "load_balancer_type": "lb11", "location": "fsn1", "network_zone": None,
        "algorithm": "round_robin", "labels": {"managed-by": "pgha"}, "network": None,
        "ip": None, "public_interface": True,
        "services": [{"protocol": "tcp", "listen_port": port, "destination_port": port,
                      "proxyprotocol": False, "health_check": dict(check)}
                     for port in (5432, 5433)],
        "targets": [{"server": "haproxy-01", "use_private_ip": False},
                    {"server": "haproxy-02", "use_private_ip": False}],
    }
    args.update(changes)
    return args


@pytest.fixture(scope="module")
def standin():
    api = HcloudStandin(token=TOKEN, servers=SERVERS, networks=NETWORKS, check_scale=0.3).start()
    with health_endpoint("127.0.0.11"), health_endpoint("127.0.0.12"):
        yield api
    api.stop()


@pytest.fixture(scope="module")
def loaders(standin, tmp_path_factory):
    root = tmp_path_factory.mktemp("hcloud-minion")
    pillar = root / "pillar"
    pillar.mkdir()
    (pillar / "top.sls").write_text("base:\n  '*':\n    - pgha\n")
    (pillar / "pgha.sls").write_text(
        f"pgha:\n  hetzner:\n    token: {TOKEN}\n    api_endpoint: {standin.url}\n")
    return local_loaders(root, [str(pillar)])


def local_loaders(root, pillar_roots: list[str]):
    """Salt's loaders for a masterless minion with this checkout's formula and modules."""
    import salt.config
    from saltfactories.utils.functional import Loaders
    opts = salt.config.minion_config(None)
    opts.update({
        "id": root.name, "file_client": "local", "cachedir": str(root / "cache"),
        "pki_dir": str(root / "pki"), "extension_modules": str(root / "extmods"),
        "file_roots": {"base": [str(REPO_ROOT / "salt")]},
        "pillar_roots": {"base": pillar_roots},
        "module_dirs": [str(REPO_ROOT / "_modules")], "states_dirs": [str(REPO_ROOT / "_states")],
        "utils_dirs": [str(REPO_ROOT / "_utils")],
    })
    return Loaders(opts)


@pytest.fixture
def calls(standin):
    """The mutating API requests a test makes (POST/PUT/DELETE), as (method, path)."""
    mark = len(standin.requests)

    def made():
        return [(method, path.split("?")[0]) for method, path, _ in standin.requests[mark:]
                if method in MUTATING]
    return made


def present(loaders, test=False, **changes):
    return loaders.states.hcloud_lb.present(test=test, **spec(**changes))


# ---- create, converge, report -------------------------------------------------------------

def test_present_creates_the_load_balancer_in_one_call(loaders, standin, calls):
    ret = present(loaders)
    assert ret.result is True, ret.comment
    assert ret.changes["load_balancer"]["old"] is None
    assert calls() == [("POST", "/v1/load_balancers")]
    lb = standin.load_balancer(LB)
    assert lb["load_balancer_type"]["name"] == "lb11" and lb["location"]["name"] == "fsn1"
    assert lb["labels"] == {"managed-by": "pgha"}
    assert sorted(s["listen_port"] for s in lb["services"]) == [5432, 5433]
    assert {s["health_check"]["http"]["path"] for s in lb["services"]} == {"/health"}
    assert sorted(t["server"]["id"] for t in lb["targets"]) == [101, 102]


def test_targets_become_healthy_and_the_state_waits_for_it(loaders):
    ret = loaders.states.hcloud_lb.targets_healthy(name=LB, timeout=30, interval=0.5)
    assert ret.result is True, ret.comment
    status = loaders.modules.hcloud_lb.lb_status(LB)
    assert status["healthy"] and set(status["targets"]) == {"haproxy-01", "haproxy-02"}
    assert status["targets"]["haproxy-01"] == {"5432": "healthy", "5433": "healthy"}


def test_rerun_with_nothing_different_changes_nothing(loaders, calls):
    ret = present(loaders)
    assert ret.result is True and ret.changes == {}, ret.comment
    assert "as described" in ret.comment
    assert calls() == []


def test_test_mode_predicts_the_changes_and_makes_none(loaders, standin, calls):
    before = standin.load_balancer(LB)
    slower = spec()["services"]
    for service in slower:
        service["health_check"]["interval"] = 10
    ret = present(loaders, test=True, services=slower, algorithm="least_connections")
    assert ret.result is None, ret.comment
    assert ret.changes["algorithm"] == {"old": "round_robin", "new": "least_connections"}
    assert ret.changes["services"]["5432"]["old"]["health_check"]["interval"] == 3
    assert ret.changes["services"]["5432"]["new"]["health_check"]["interval"] == 10
    assert calls() == []
    after = standin.load_balancer(LB)
    assert after["services"] == before["services"] and after["algorithm"] == before["algorithm"]


def test_changing_a_health_check_updates_only_that_service(loaders, standin, calls):
    lb_before = standin.load_balancer(LB)
    services = spec()["services"]
    services[0]["health_check"]["retries"] = 3
    ret = present(loaders, services=services)
    assert ret.result is True, ret.comment
    assert list(ret.changes) == ["services"] and list(ret.changes["services"]) == ["5432"]
    assert calls() == [("POST", f"/v1/load_balancers/{lb_before['id']}/actions/update_service")]
    lb = standin.load_balancer(LB)
    assert lb["id"] == lb_before["id"]
    by_port = {s["listen_port"]: s for s in lb["services"]}
    assert by_port[5432]["health_check"]["retries"] == 3
    assert by_port[5433]["health_check"]["retries"] == 1


def test_adding_a_target_adds_only_that_target(loaders, standin, calls):
    services = spec()["services"]
    services[0]["health_check"]["retries"] = 3
    targets = spec()["targets"] + [{"server": "haproxy-03", "use_private_ip": False}]
    ret = present(loaders, services=services, targets=targets)
    assert ret.result is True, ret.comment
    assert ret.changes == {"targets": {"removed": [], "added": [
        {"server": "haproxy-03", "use_private_ip": False}]}}
    lb = standin.load_balancer(LB)
    assert calls() == [("POST", f"/v1/load_balancers/{lb['id']}/actions/add_target")]
    assert sorted(t["server"]["id"] for t in lb["targets"]) == [101, 102, 103]


def test_a_target_that_fails_its_check_is_named(loaders):
    # haproxy-03's address answers nothing: it must turn unhealthy, and the wait fails.
    ret = loaders.states.hcloud_lb.targets_healthy(name=LB, timeout=8, interval=0.5)
    assert ret.result is False
    assert "haproxy-03:5432 unhealthy" in ret.comment
    assert "haproxy-01" not in ret.comment


def test_removing_a_target_and_a_service(loaders, standin, calls):
    ret = present(loaders, services=spec()["services"][:1])
    assert ret.result is True, ret.comment
    lb = standin.load_balancer(LB)
    assert sorted(calls()) == [
        ("POST", f"/v1/load_balancers/{lb['id']}/actions/delete_service"),
        ("POST", f"/v1/load_balancers/{lb['id']}/actions/remove_target"),
        ("POST", f"/v1/load_balancers/{lb['id']}/actions/update_service")]
    assert [s["listen_port"] for s in lb["services"]] == [5432]
    assert sorted(t["server"]["id"] for t in lb["targets"]) == [101, 102]


# ---- private-only: Hetzner's order rules ------------------------------------------------

def actions_of(calls) -> list[str]:
    return [path.rsplit("/", 1)[-1] for _, path in calls]


def test_a_private_only_balancer_with_a_fixed_ip_is_built_in_the_order_hetzner_allows(
        loaders, standin, calls):
    # The public interface can go off only once the balancer is in the network and every
    # target uses its private IP (the stand-in refuses otherwise, as Hetzner does).
    private = spec(name="lb-private-test", network="pgha-net", ip="10.0.0.5",
                   public_interface=False, targets=PRIVATE_TARGETS)
    ret = loaders.states.hcloud_lb.present(**private)
    assert ret.result is True, ret.comment
    assert actions_of(calls()) == ["load_balancers", "attach_to_network", "add_target",
                                   "add_target", "disable_public_interface"]
    lb = standin.load_balancer("lb-private-test")
    assert lb["private_net"] == [{"network": 7, "ip": "10.0.0.5"}]
    assert lb["public_net"]["enabled"] is False
    again = loaders.states.hcloud_lb.present(**private)
    assert again.result is True and again.changes == {}, again.comment
    assert loaders.states.hcloud_lb.absent(name="lb-private-test").result is True


def test_a_public_balancer_is_moved_behind_a_network_target_by_target(loaders, standin, calls):
    public = spec(name="lb-move-test")
    assert loaders.states.hcloud_lb.present(**public).result is True
    mark = len(calls())
    ret = loaders.states.hcloud_lb.present(**dict(public, network="pgha-net",
                                                  public_interface=False,
                                                  targets=PRIVATE_TARGETS))
    assert ret.result is True, ret.comment
    assert actions_of(calls()[mark:]) == ["attach_to_network", "remove_target", "add_target",
                                          "remove_target", "add_target",
                                          "disable_public_interface"]
    assert ret.changes["public_interface"] == {"old": True, "new": False}
    lb = standin.load_balancer("lb-move-test")
    assert all(t["use_private_ip"] for t in lb["targets"]) and lb["public_net"]["enabled"] is False
    assert loaders.states.hcloud_lb.absent(name="lb-move-test").result is True


# ---- errors: named, and nothing half-done -------------------------------------------------

def test_a_source_port_conflict_surfaces_hetzners_code_and_message(loaders, standin, calls):
    # Someone else (a second operator, Terraform) takes port 5433 between our read and
    # our add_service: Hetzner refuses ours with 412 source_port_already_used.
    intruder = {"protocol": "tcp", "listen_port": 5433, "destination_port": 6000,
                "proxyprotocol": False}
    standin.before("add_service",
                   lambda api, lb, body: api.add_service_directly(LB, intruder))
    ret = present(loaders)
    assert ret.result is False
    assert "source_port_already_used" in ret.comment
    assert "The source port you are trying to add is already in use" in ret.comment
    assert ret.changes == {}
    by_port = {s["listen_port"]: s for s in standin.load_balancer(LB)["services"]}
    assert by_port[5433]["destination_port"] == 6000  # theirs, untouched


def test_the_intruders_service_is_converged_by_the_next_run(loaders, standin):
    ret = present(loaders)
    assert ret.result is True, ret.comment
    assert ret.changes["services"]["5433"]["old"]["destination_port"] == 6000
    by_port = {s["listen_port"]: s for s in standin.load_balancer(LB)["services"]}
    assert by_port[5433]["destination_port"] == 5433


def test_a_missing_server_is_named_before_anything_changes(loaders, calls):
    ret = present(loaders, targets=spec()["targets"] + [{"server": "haproxy-09"}])
    assert ret.result is False
    assert "'haproxy-09'" in ret.comment and "no such server" in ret.comment
    assert calls() == []


def test_a_load_balancer_is_never_moved_by_delete_and_create(loaders, calls):
    ret = present(loaders, location="hel1")
    assert ret.result is False and "cannot move" in ret.comment
    assert calls() == []


def test_a_rejected_token_is_reported_and_never_shown(loaders, standin, calls, caplog):
    caplog.set_level(logging.DEBUG)
    standin.token = "rotated-" + uuid.uuid4().hex  # the project's token changed
    try:
        ret = present(loaders)
        with pytest.raises(Exception) as raised:
            loaders.modules.hcloud_lb.lb_get(LB)
    finally:
        standin.token = TOKEN
    assert ret.result is False
    assert "unauthorized" in ret.comment and "unable to authenticate" in ret.comment
    assert "unauthorized" in str(raised.value)
    for text in (ret.comment, str(ret.changes), str(raised.value), caplog.text):
        assert TOKEN not in text
    assert calls() == []


def test_no_token_at_all_is_a_clear_error(loaders, monkeypatch):
    from salt.exceptions import CommandExecutionError
    monkeypatch.delenv("HCLOUD_TOKEN", raising=False)
    with pytest.raises(CommandExecutionError, match="no Hetzner Cloud API token"):
        loaders.utils["pgha_hcloud.client"]({"api_endpoint": "http://127.0.0.1:9/v1"})


def test_an_unreachable_api_is_named(loaders):
    from salt.exceptions import CommandExecutionError
    hc = loaders.utils["pgha_hcloud.client"]({"token": "x", "api_endpoint": "http://127.0.0.1:9/v1"})
    with pytest.raises(CommandExecutionError, match="cannot reach the Hetzner Cloud API at "
                                                    "http://127.0.0.1:9/v1"):
        loaders.utils["pgha_hcloud.find"](hc, LB)


# ---- absent -------------------------------------------------------------------------------

def test_absent_deletes_it_and_then_has_nothing_to_do(loaders, standin, calls):
    lb = standin.load_balancer(LB)
    ret = loaders.states.hcloud_lb.absent(name=LB, test=True)
    assert ret.result is None and ret.changes["load_balancer"]["new"] is None
    assert standin.load_balancer(LB) is not None
    ret = loaders.states.hcloud_lb.absent(name=LB)
    assert ret.result is True and ret.changes["load_balancer"]["old"]["id"] == lb["id"]
    assert standin.load_balancer(LB) is None
    assert calls() == [("DELETE", f"/v1/load_balancers/{lb['id']}")]
    again = loaders.states.hcloud_lb.absent(name=LB)
    assert again.result is True and again.changes == {} and "already absent" in again.comment
    assert loaders.modules.hcloud_lb.lb_list() == []


# ---- the lab: orch.deploy with frontend: hetzner ------------------------------------------

# An address on the bridge that no pillar network admits.
OUTSIDER = "198.51.100.250"
# Connects to HAProxy's writer port and sends a PROXY header that claims an admitted
# source; prints "closed" when HAProxy cuts the connection off.
PROXY_FORGER = ("import socket, sys\n"
                "try:\n"
                "    s = socket.create_connection((sys.argv[1], 5432), timeout=5)\n"
                "    s.sendall(f'PROXY TCP4 {sys.argv[2]} {sys.argv[1]} 40000 5432\\r\\n'.encode()"
                " + bytes.fromhex('0000000804d2162f'))\n"
                "    print('closed' if s.recv(1) == b'' else 'answered')\n"
                "except (ConnectionResetError, BrokenPipeError):\n"
                "    print('closed')\n"
                "except OSError as exc:\n"
                "    print(type(exc).__name__, exc)\n")

# The lab bridge plays the balancer's private network; the stand-in balancer sits at the
# host's address in it, the way Hetzner's sits at a private IP in a cloud network.
LAB_NETWORK = {"id": 70, "name": "pgha-lab-net", "ip_range": "198.51.100.0/24"}
LB_PRIVATE_IP = "198.51.100.5"


@pytest.fixture
def lab_standin(cluster):
    """The stand-in on the lab bridge, forwarding like the cloud balancer (with the
    PROXY protocol when the service asks for it): servers named after the haproxy
    minions, with their lab addresses as their private IPs."""
    servers = [{"id": 200 + i, "name": name, "public_ipv4": None,
                "private": {LAB_NETWORK["id"]: NODES[name].address}}
               for i, name in enumerate(HAPROXY_NODES)]
    api = HcloudStandin(token=TOKEN, servers=servers, networks=[LAB_NETWORK],
                        lb_address=HOST_ADDRESS, forward=True).start()
    yield api
    api.stop()


def test_orch_deploy_puts_the_cloud_balancer_in_front_and_writes_go_through_it(
        lab_standin, salt_cli, salt_run_cli):
    """The defaults: a private balancer (no public interface) that passes each client's
    address to HAProxy in a PROXY header. HAProxy then admits only the balancer, and
    checks the client's own address against the admitted networks."""
    override = {"pgha": {"frontend": "hetzner", "hetzner": {
        "token": TOKEN, "api_endpoint": lab_standin.url,
        # The stand-in listens, and connects to HAProxy, from the host's address; its
        # balancer's private IP in the network is only a value the API reports.
        "address": HOST_ADDRESS, "proxy_sources": [f"{HOST_ADDRESS}/32"],
        "load_balancer": {"name": LB, "network": LAB_NETWORK["name"], "ip": LB_PRIVATE_IP,
                          "health_check": {"interval": 3}}}}}
    try:
        with pillar_override(salt_cli, override):
            try:
                result = orchestrate(salt_run_cli, "orch.deploy", timeout=300)
                assert result.retcode == 0 and not result.failed, result.comments() or result.raw
                frontend = result.by_id("pgha-orch-deploy-frontend")
                assert frontend["result"] is True and "created" in frontend["comment"]
                healthy = result.by_id("pgha-orch-deploy-frontend-healthy")
                assert healthy["result"] is True, healthy["comment"]
                timings = {"orch.deploy seconds": round(result.seconds, 1),
                           "hcloud_lb.present (create) seconds": round(frontend["duration"] / 1000, 2),
                           "targets healthy after seconds": round(healthy["duration"] / 1000, 2)}
                TIMINGS.parent.mkdir(parents=True, exist_ok=True)
                TIMINGS.write_text(json.dumps(timings, indent=2) + "\n")
                print(timings)
                lb = lab_standin.load_balancer(LB)
                assert sorted(t["server"]["id"] for t in lb["targets"]) == [200, 201]
                # A write through the balancer's address lands on the primary; a read on 5433
                # comes from a replica.
                marker = uuid.uuid4().hex
                with pg_connect(HOST_ADDRESS) as conn:
                    conn.execute("CREATE TABLE IF NOT EXISTS hetzner_front (marker text)")
                    conn.execute("INSERT INTO hetzner_front VALUES (%s)", (marker,))
                    assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
                wait_for(lambda: sql("SELECT count(*) FROM hetzner_front WHERE marker = %s", marker,
                                     host=HOST_ADDRESS, port=5433)[0][0] == 1, 30,
                         "the row to be readable through the balancer's reader service")
                assert sql("SELECT pg_is_in_recovery()", host=HOST_ADDRESS, port=5433)[0][0] is True
                # HAProxy filters on the client's own address (from the PROXY header): a client
                # outside the admitted networks is refused though the balancer is admitted.
                out = probe_from(OUTSIDER, CONNECT_PROBE, SUPERUSER["password"], HOST_ADDRESS)
                assert "CONNECTED" not in out and out.strip(), out
                # And only the balancer may send a PROXY header: one forged by anyone else,
                # claiming an admitted address, is cut off before HAProxy reads it.
                forged = probe_from(OUTSIDER, PROXY_FORGER, NODES[HAPROXY_NODES[0]].address, HOST_ADDRESS)
                assert forged.strip() == "closed", forged
                # The token is in no output and in nothing the master logged.
                assert TOKEN not in str(result.raw)
                assert TOKEN not in (lab_master.MASTER_ROOT / "master.log").read_text(errors="replace")
            finally:
                lab_standin.stop()
    finally:
        # Back to the VIP, once the override is gone (also when the test failed): HAProxy
        # takes clients directly again, the beacons watch keepalived.
        ret = salt_cli.run("state.sls", "pgha.haproxy,pgha.beacons", "queue=True",
                           minion_tgt=",".join(HAPROXY_NODES), tgt_type="list", _timeout=300)
        assert ret.returncode == 0, ret.stdout + ret.stderr


# ---- the real API -------------------------------------------------------------------------

@pytest.mark.skipif(not os.environ.get("HCLOUD_TOKEN"),
                    reason="HCLOUD_TOKEN is not set: the live Hetzner Cloud test needs a "
                           "project token (it creates and deletes a load balancer)")
def test_live_hetzner_cloud_create_check_delete(tmp_path_factory):
    # No pillar: the token comes from HCLOUD_TOKEN, the endpoint is Hetzner's.
    live = local_loaders(tmp_path_factory.mktemp("hcloud-live"), [])
    name = f"pgha-test-{uuid.uuid4().hex[:8]}"
    # A label selector that matches nothing: no server of the project is touched.
    args = spec(name=name, targets=[{"label_selector": f"pgha-test={name}"}])
    try:
        ret = live.states.hcloud_lb.present(**args)
        assert ret.result is True, ret.comment
        again = live.states.hcloud_lb.present(**args)
        assert again.result is True and again.changes == {}, again.comment
        got = live.modules.hcloud_lb.lb_get(name)
        assert [s["listen_port"] for s in got["services"]] == [5432, 5433]
    finally:
        gone = live.states.hcloud_lb.absent(name=name)
        assert gone.result is True, gone.comment
    assert live.modules.hcloud_lb.lb_get(name) is None
