"""TLS for the gateway port: a self-signed certificate created once, its SHA-256 fingerprint,
and server options (TLS 1.3 minimum, as the reference gateway).

The generated certificate is its own trust anchor (CA:TRUE), so a client may trust it with
``NODE_EXTRA_CA_CERTS`` or pin its fingerprint.  Its subject alternative names cover
localhost, the loopback addresses, the host name and the bind address.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import ssl

from openclaw_tw.config.settings import atomic_write

CERT_FILE = "gateway/tls/gateway-cert.pem"
KEY_FILE = "gateway/tls/gateway-key.pem"
VALID_DAYS = 3650


@attrs.frozen
class TlsMaterial:
    cert_pem: bytes
    key_pem: bytes
    fingerprint: str  # 64 lowercase hex chars, SHA-256 over the DER leaf certificate


def fingerprint_of(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """``AA:BB:…``, ``sha256:…`` or any case → 64 lowercase hex chars."""
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = value[7:]
    value = value.replace(":", "").replace(" ", "")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("a SHA-256 fingerprint is 64 hex characters")
    return value


def _san_names(extra_hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    hosts = ["localhost", socket.gethostname(), "127.0.0.1", "::1", *extra_hosts]
    if any(h in ("0.0.0.0", "::") for h in extra_hosts):
        from openclaw_tw.daemon.netaddrs import local_addresses  # ifaddr: only here

        hosts.extend(local_addresses())
    for host in hosts:
        if not host or host in seen or host in ("0.0.0.0", "::"):
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def generate(extra_hosts: list[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openclaw-gateway")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san_names(extra_hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def load_or_create(state_dir: Path, cert_path: Path | None = None,
                   key_path: Path | None = None, extra_hosts: list[str] | None = None
                   ) -> TlsMaterial:
    """Configured files if given; else the auto-generated pair in the state dir."""
    cert_file = cert_path or state_dir / CERT_FILE
    key_file = key_path or state_dir / KEY_FILE
    if cert_file.exists() and key_file.exists():
        cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
    elif cert_path or key_path:
        raise FileNotFoundError(f"TLS certificate or key missing: {cert_file}, {key_file}")
    else:
        cert_pem, key_pem = generate(extra_hosts or [])
        atomic_write(key_file, key_pem)
        atomic_write(cert_file, cert_pem, mode=0o644)
    return TlsMaterial(cert_pem, key_pem, fingerprint_of(cert_pem))


def server_options(material: TlsMaterial) -> ssl.CertificateOptions:
    cert = ssl.PrivateCertificate.loadPEM(material.cert_pem + material.key_pem)
    return ssl.CertificateOptions(
        privateKey=cert.privateKey.original,
        certificate=cert.original,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_3,
    )
