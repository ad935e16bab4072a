"""The lab's certificates, supplied to the formula through pillar (pgha:tls).

A private CA and one certificate per node (its name, its address, localhost), made with
the `cryptography` library Salt already depends on. They live in STATE_DIR/tls on the
host and are reissued when missing or within RENEW_DAYS of expiry. The pillar file the
master reads, `lab_tls.sls`, hands each minion the CA and only its own key.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from . import labpillar
from .topology import HOST_ADDRESS, NODES, STATE_DIR

TLS_DIR = STATE_DIR / "tls"
CA_CERT = TLS_DIR / "ca.crt"
VALID_DAYS = 365
RENEW_DAYS = 30
# Bumped whenever what a certificate must contain changes: everything is reissued.
RECIPE = ("7: SKI/AKI, no CN; etcd's role name and the front addresses on the postgres nodes; "
          "haproxy nodes serve only; monitor nodes are clients; pgBackRest certificates with CN")


def _crypto():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _fresh(path: Path) -> bool:
    x509 = _crypto()[0]
    if not path.exists():
        return False
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    return left > datetime.timedelta(days=RENEW_DAYS)


def _has_ski(path: Path) -> bool:
    x509 = _crypto()[0]
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return False
    return True


def _write_key(path: Path, key) -> None:
    serialization = _crypto()[2]
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _ca():
    x509, hashes, serialization, ec, _, NameOID = _crypto()
    key_path = TLS_DIR / "ca.key"
    if _fresh(CA_CERT) and key_path.exists() and _has_ski(CA_CERT):
        return (x509.load_pem_x509_certificate(CA_CERT.read_bytes()),
                serialization.load_pem_private_key(key_path.read_bytes(), None))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pgha lab CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS * 5))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    CA_CERT.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    # Every node certificate was signed by the old CA: reissue them all.
    for old in TLS_DIR.glob("*-*.crt"):
        old.unlink()
    return cert, key


def _node_cert(name: str, address: str, ca_cert, ca_key, names=(), addresses=(),
               client=True, common_name=False, prefix="node") -> None:
    """A node's certificate: its name and address, localhost, plus extra *names* (etcd's
    role name) and *addresses* (the front addresses clients verify through). With
    *client* false it serves only (no clientAuth usage): etcd refuses it as a client.
    With *common_name* the subject's CN is the node's name: pgBackRest's TLS server
    admits clients by it (etcd's gateway refuses such a certificate, hence a second)."""
    x509, hashes, serialization, ec, EKU, NameOID = _crypto()
    cert_path = TLS_DIR / f"{prefix}-{name}.crt"
    if _fresh(cert_path):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(n) for n in (name, "localhost", *names)]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in (address, "127.0.0.1", *addresses)]
    cert = (x509.CertificateBuilder()
            # No CommonName: with client certificates and RBAC both on, etcd's HTTP gateway
            # refuses any client certificate that has one. The names are in the SANs.
            .subject_name(x509.Name(([x509.NameAttribute(NameOID.COMMON_NAME, name)] if common_name else [])
                                    + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pgha"),
                                       x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([EKU.SERVER_AUTH, EKU.CLIENT_AUTH] if client
                                                 else [EKU.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # Python 3.13's strict verification (the nodes' Patroni) wants both identifiers.
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(TLS_DIR / f"{prefix}-{name}.key", key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.strip().splitlines())


def ensure(pillar_dir: Path) -> Path:
    """Issue what is missing or near expiry; write `lab_tls.sls` into *pillar_dir*."""
    TLS_DIR.mkdir(parents=True, exist_ok=True)
    TLS_DIR.chmod(0o700)
    recipe = TLS_DIR / "recipe"
    if not recipe.exists() or recipe.read_text() != RECIPE:
        for old in TLS_DIR.iterdir():
            old.unlink()
        recipe.write_text(RECIPE)
    ca_cert, ca_key = _ca()
    cfg = labpillar.merged()
    # etcd admits peers only with its role name (pgha:etcd:cert_name): the postgres
    # nodes'. Its clients need the clientAuth usage: the postgres nodes (Patroni, pgha's
    # modules) and the host, whose tests and fault tooling talk to etcd directly. The
    # haproxy nodes' certificates only serve (stats over TLS), and etcd refuses them.
    etcd_name = [cfg["etcd"]["cert_name"]]
    # PostgreSQL's certificate must match the address clients connect to (sslmode
    # verify-full through HAProxy, which passes TLS through): the VIP, and the host,
    # where the tests' stand-in for the Hetzner balancer listens.
    fronts = [cfg["keepalived"]["vip"], HOST_ADDRESS]
    # The monitor nodes' certificates are clients too: Prometheus scrapes etcd and the
    # exporters, which admit only certificates from the lab CA.
    for n in NODES.values():
        postgres = "postgres" in n.roles
        _node_cert(n.name, n.address, ca_cert, ca_key, names=etcd_name if postgres else (),
                   addresses=fronts if postgres else (), client=postgres or "monitor" in n.roles)
    _node_cert("lab-host", HOST_ADDRESS, ca_cert, ca_key, names=etcd_name)
    # pgBackRest's certificates: the backup node and the postgres nodes, CN = node name.
    backup = [n for n in NODES.values() if "postgres" in n.roles or "backup" in n.roles]
    for n in backup:
        _node_cert(n.name, n.address, ca_cert, ca_key, common_name=True, prefix="pgbackrest")
    lines = ["# Written by pgha-lab (lab/pgha_lab/tls.py): the lab's certificates.",
             "# Each minion gets the CA and only its own certificate and key.",
             "{%- set node = grains.get('id', '') %}",
             "pgha:", "  tls:", "    enabled: true", "    ca_cert: |",
             _indent(CA_CERT.read_text(), 6).rstrip("\n")]
    for name in NODES:
        lines += [f"{{%- if node == '{name}' %}}", "    cert: |",
                  _indent((TLS_DIR / f"node-{name}.crt").read_text(), 6).rstrip("\n"),
                  "    key: |",
                  _indent((TLS_DIR / f"node-{name}.key").read_text(), 6).rstrip("\n"),
                  "{%- endif %}"]
    for n in backup:
        lines += [f"{{%- if node == '{n.name}' %}}", "  backup:", "    tls:", "      cert: |",
                  _indent((TLS_DIR / f"pgbackrest-{n.name}.crt").read_text(), 8).rstrip("\n"),
                  "      key: |",
                  _indent((TLS_DIR / f"pgbackrest-{n.name}.key").read_text(), 8).rstrip("\n"),
                  "{%- endif %}"]
    path = pillar_dir / "lab_tls.sls"
    pillar_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def client() -> dict:
    """Paths for a client on the host: CA bundle, certificate and key."""
    return {"ca": str(CA_CERT), "cert": str(TLS_DIR / "node-lab-host.crt"),
            "key": str(TLS_DIR / "node-lab-host.key")}
