"""Certificates the tests make with the ``cryptography`` package: a CA, server certificates for
127.0.0.1 signed by it, and a client certificate (for mutual TLS). Written as PEM files."""
from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_server_cert: Path  # a second server certificate (same key): the SIGHUP reload test
    other_ca: Path           # a CA that signed none of the above


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer: x509.Name, issuer_key, *, ca=False, usage=None, ip=False,
          serial=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(serial or x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert=None, key=None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


def make_pki(directory: Path) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("otelgravel test CA", ca_key, _name("otelgravel test CA"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("127.0.0.1", server_key, ca.subject, ca_key,
                   usage=ExtendedKeyUsageOID.SERVER_AUTH, ip=True)
    other = _cert("127.0.0.1", server_key, ca.subject, ca_key,
                  usage=ExtendedKeyUsageOID.SERVER_AUTH, ip=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert("function-client", client_key, ca.subject, ca_key,
                   usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    other_ca_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _cert("another CA", other_ca_key, _name("another CA"), other_ca_key, ca=True)
    return Pki(_write(directory / "ca.pem", ca), _write(directory / "server.pem", server),
               _write(directory / "server.key", key=server_key),
               _write(directory / "client.pem", client),
               _write(directory / "client.key", key=client_key),
               _write(directory / "server-2.pem", other), _write(directory / "other-ca.pem", other_ca))
