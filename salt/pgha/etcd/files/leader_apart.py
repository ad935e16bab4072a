#!/usr/bin/python3
"""Move etcd's Raft leadership off this node while its Patroni is the primary (pgha).

Run as root by pgha-etcd-leader-apart.service, which pgha-etcd-leader-apart.path starts
when Patroni's on_role_change callback touches the trigger file. What the trigger says
is not trusted: the script asks the local Patroni and etcd itself and acts only when
this node holds both leaderships. When one node holds both, losing it costs an etcd
election first, and the new etcd leader restarts every lease at its full TTL: the
Patroni failover then waits a whole extra lease.

The move is a normal Raft transfer and never touches Patroni's leader key. It is made
only to a voting member that answers, agrees on who leads, and reports no error; with
no etcd leader (no quorum) it waits, up to the timeout, and then gives up.

    leader_apart.py /etc/pgha/etcd-leader-apart.json

With --stale-peers (run by pgha-etcd-peer-watch.timer), it repairs instead a peer
status etcd left wrong after a partition heals: a pipeline message queued during the
partition can fail (dial i/o timeout) just after the stream to that peer came back, and
marks the peer inactive. Nothing marks it active again while the stream lives (the
status is only raised when a stream connects, and two followers send each other
nothing), so this member refuses every member add ("unhealthy cluster") indefinitely
although its TCP streams to the peer are up. The repair closes the peer's inbound
stream connections (ss -K), which the peer re-opens within a second: what a network
blip does, and never a restart. It acts only on a peer that is inactive in this
member's /metrics at two readings `confirm` seconds apart while established TCP
connections from it are open and its peer port accepts a connection.

    leader_apart.py /etc/pgha/etcd-leader-apart.json --stale-peers
"""

import ipaddress
import json
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

PRIMARY_ROLES = ("primary", "master")


LEADS_ELSEWHERE = "etcd's leader is another member"


def why_not_leading(own_id, leader_id):
    """None when this member leads etcd; else why there is nothing to hand over."""
    if not leader_id or str(leader_id) == "0":
        return "etcd has no leader"
    if str(leader_id) != str(own_id):
        return LEADS_ELSEWHERE
    return None


def choose_target(own_id, leader_id, members, views):
    """(member id to hand leadership to, None) or (None, why not).

    *members*: etcd's member list ({ID, name, isLearner}); *views*: {member id: that
    member's /v3/maintenance/status answer, or an error string}."""
    why = why_not_leading(own_id, leader_id)
    if why:
        return None, why
    candidates = []
    for member in members:
        mid = str(member.get("ID", ""))
        if mid == str(own_id) or member.get("isLearner"):
            continue
        view = views.get(mid)
        if not isinstance(view, dict):
            continue
        if str(view.get("leader", "")) != str(own_id) or view.get("errors"):
            continue
        candidates.append((int(view.get("raftAppliedIndex", 0)), member.get("name", ""), mid))
    if not candidates:
        return None, "no healthy voting member to take etcd leadership"
    return max(candidates)[2], None


ACTIVE_PEERS = re.compile(r'^etcd_network_active_peers\{[^}]*Remote="([0-9a-f]+)"[^}]*\}\s+(\S+)', re.M)


def inactive_peers(own_id, members, metrics_text):
    """{member id: (name, peer host, peer port)} for each voting peer that this member's
    /metrics does not report active. A peer absent from the metrics (never connected)
    counts as inactive too."""
    active = {remote: float(value) >= 1 for remote, value in ACTIVE_PEERS.findall(metrics_text)}
    out = {}
    for member in members:
        mid = str(member.get("ID", ""))
        if mid == str(own_id) or member.get("isLearner") or not member.get("peerURLs"):
            continue
        if not active.get(format(int(mid), "x")):
            url = urllib.parse.urlsplit(member["peerURLs"][0])
            out[mid] = (member.get("name") or mid, _address(url.hostname), url.port)
    return out


def stale(first, second, established_from, reachable):
    """The peers inactive at both readings (*first*, *second*: inactive_peers answers)
    although TCP connections from their address are established and *reachable*(host,
    port) is true: etcd's status is wrong, the transport is up."""
    return {mid: peer for mid, peer in second.items()
            if mid in first and peer[1] in established_from and reachable(peer[1], peer[2])}


class Client:
    def __init__(self, cfg):
        self.cfg = cfg
        self.ctx = None
        tls = cfg.get("tls")
        if tls:
            self.ctx = ssl.create_default_context(cafile=tls["ca"])
            self.ctx.load_cert_chain(tls["cert"], tls["key"])
        self.token = None

    def _call(self, url, payload=None, timeout=2.0, method=None, token=True):
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.token and token:
            headers["Authorization"] = self.token
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ctx) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            raise RuntimeError(f"{url} answered HTTP {exc.code}: {body}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RuntimeError(f"{url}: {getattr(exc, 'reason', exc)}") from None

    def login(self):
        auth = self.cfg.get("auth")
        if not auth:
            return
        try:
            self.token = self._call(self.cfg["etcd_url"] + "/v3/auth/authenticate", auth)["token"]
        except RuntimeError as exc:
            if "authentication is not enabled" not in str(exc):
                raise

    def etcd(self, path, payload=None, url=None, timeout=2.0):
        # The token is the local member's (etcd's simple tokens are not shared): other
        # members are only asked for their status, which needs none.
        return self._call((url or self.cfg["etcd_url"]) + path, payload or {}, timeout=timeout,
                          token=url is None)

    def metrics(self):
        req = urllib.request.Request(self.cfg["etcd_url"] + "/metrics")
        try:
            with urllib.request.urlopen(req, timeout=3.0, context=self.ctx) as resp:
                return resp.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            raise RuntimeError(f"{self.cfg['etcd_url']}/metrics: {getattr(exc, 'reason', exc)}") from None

    def patroni_role(self):
        return self._call(self.cfg["patroni_url"] + "/patroni", timeout=2.0, method="GET").get("role")


def log(msg):
    print(msg, flush=True)


def run(cfg, sleep=time.sleep, clock=time.monotonic):
    client = Client(cfg)
    deadline = clock() + float(cfg["timeout"])
    # Patroni calls back right after the promotion; give its REST API a moment to agree.
    why = "no answer"
    while True:
        try:
            role = client.patroni_role()
        except RuntimeError as exc:
            role, why = None, str(exc)
        if role in PRIMARY_ROLES:
            break
        if clock() > deadline:
            log(f"nothing to do: Patroni on {cfg['name']} is {role or why}, not the primary")
            return 0
        sleep(0.2)
    client.login()
    while True:
        try:
            own = client.etcd("/v3/maintenance/status")
            members = client.etcd("/v3/cluster/member/list").get("members", [])
            own_id, leader_id = own["header"]["member_id"], own.get("leader")
            # Before asking the other members: nothing to do if another one leads.
            if why_not_leading(own_id, leader_id) == LEADS_ELSEWHERE:
                log(f"etcd's leader is already apart from {cfg['name']}, the Patroni primary")
                return 0
            views = {}
            for member in members:
                mid = str(member.get("ID", ""))
                if mid == str(own_id) or not member.get("clientURLs"):
                    continue
                try:
                    views[mid] = client.etcd("/v3/maintenance/status", url=member["clientURLs"][0], timeout=1.0)
                except RuntimeError as exc:
                    views[mid] = str(exc)
            target, why = choose_target(own_id, leader_id, members, views)
        except (RuntimeError, KeyError) as exc:
            target, why = None, f"etcd does not answer: {exc}"
        if target is not None:
            break
        if clock() > deadline:
            log(f"etcd leadership left on {cfg['name']}, the Patroni primary: {why}")
            return 1
        sleep(0.3)
    names = {str(m.get("ID")): m.get("name") for m in members}
    client.etcd("/v3/maintenance/transfer-leadership", {"targetID": target}, timeout=5.0)
    while clock() <= deadline:
        if str(client.etcd("/v3/maintenance/status").get("leader")) == target:
            log(f"moved etcd leadership from {cfg['name']} (the Patroni primary) to {names.get(target, target)}")
            return 0
        sleep(0.1)
    log(f"etcd leadership did not reach {names.get(target, target)} within {cfg['timeout']}s")
    return 1


def _address(text):
    """An address as ss prints it ([v6] or v4, v4-mapped v6 made v4), or as a URL holds it."""
    addr = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    return str(getattr(addr, "ipv4_mapped", None) or addr)


def established_sources(port):
    """Remote addresses with an established TCP connection to local *port*."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return {_address(line.split()[-1].rsplit(":", 1)[0]) for line in out.splitlines() if line.strip()}


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def repair_stale_peers(cfg, sleep=time.sleep):
    # No login: status, member list and /metrics need no token, and every authenticate
    # costs etcd a bcrypt hash and a Raft write, four times a minute on each member.
    client = Client(cfg)
    own_id = client.etcd("/v3/maintenance/status")["header"]["member_id"]
    members = client.etcd("/v3/cluster/member/list").get("members", [])
    first = inactive_peers(own_id, members, client.metrics())
    if not first:
        return 0
    sleep(float(cfg["confirm"]))
    second = inactive_peers(own_id, members, client.metrics())
    port = int(cfg["peer_port"])
    established = established_sources(port)
    for name, host, _ in sorted(stale(first, second, established, port_open).values()):
        # The peer's stream readers are connected to our peer port; closing them makes
        # it dial again, and the new stream marks it active.
        dst = f"[{host}]" if ":" in host else host
        closed = subprocess.run(["ss", "-K", "-Htn", "state", "established", f"( sport = :{port} and dst {dst} )"],
                                capture_output=True, text=True, check=True).stdout.strip()
        if closed:
            log(f"etcd on {cfg['name']} called {name} inactive although its streams were up: "
                f"closed them so that {name} reconnects")
        else:
            log(f"etcd on {cfg['name']} calls {name} inactive although its streams are up, and ss -K "
                "closed nothing (a kernel without INET_DIAG_DESTROY?): restart etcd on one of the two")
    return 0


def main(argv):
    if len(argv) < 2 or argv[2:] not in ([], ["--stale-peers"]):
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        cfg = json.load(fh)
    if argv[2:]:
        # A best-effort repair: whatever keeps it from checking now (etcd down or
        # electing, a failing ss) is logged, and the unit never fails, which would leave
        # the node "degraded". etcd's own health checks report etcd being down.
        try:
            return repair_stale_peers(cfg)
        except subprocess.CalledProcessError as exc:
            log(f"etcd peer status not repaired: {exc.cmd} failed: {exc.stderr}")
        except Exception as exc:  # noqa: BLE001
            log(f"etcd peer status not checked: {type(exc).__name__}: {exc}")
        return 0
    try:
        return run(cfg)
    except RuntimeError as exc:
        log(f"etcd leadership not moved: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
