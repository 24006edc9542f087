"""The benchmark's TLS: a test CA and a server certificate for 127.0.0.1 and localhost, made
at the server's start, and the trust bundles clients are given (never verification off).

    ca, cert, key = make_certs(directory)       # PEM files: the CA, the server's chain, its key
    bundle = trust_bundle(ca, directory)        # the system store + the test CA, one PEM file

RSA 2048 for both, as S3's own certificates; the leaf is what a server presents (leaf then
CA). A CA of one certificate hides what a real trust store costs a client that loads it per
connection (about 20 ms of CPU for the system store here, 0.35 ms for one certificate), so
the benchmark gives clients the bundle by default (``bench/run.py --trust ca`` for the CA
alone).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from typing import Optional, Tuple

SYSTEM_STORES = ('/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt',
                 '/etc/ssl/cert.pem')


def make_certs(directory: str) -> Tuple[str, str, str]:
    """Write ca.pem, server.pem (leaf + CA) and server-key.pem into ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'knoxpy bench'),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = name('knoxpy bench test CA')
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (x509.CertificateBuilder().subject_name(name('localhost')).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName('localhost'), x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = tuple(os.path.join(directory, n) for n in ('ca.pem', 'server.pem', 'server-key.pem'))
    with open(paths[0], 'wb') as f:
        f.write(ca.public_bytes(pem))
    with open(paths[1], 'wb') as f:
        f.write(leaf.public_bytes(pem) + ca.public_bytes(pem))
    with open(paths[2], 'wb') as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return paths[0], paths[1], paths[2]


def system_store() -> Optional[str]:
    """The system's CA bundle (Debian's, Red Hat's, or certifi's), or None."""
    for path in SYSTEM_STORES:
        if os.path.isfile(path):
            return path
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())


def trust_bundle(ca: str, directory: str) -> str:
    """``directory``/bundle.pem: the system store followed by the test CA."""
    path = os.path.join(directory, 'bundle.pem')
    store = system_store()
    with open(path, 'wb') as out:
        if store is not None:
            with open(store, 'rb') as f:
                out.write(f.read().rstrip(b'\n') + b'\n')
        with open(ca, 'rb') as f:
            out.write(f.read())
    return path


def count_certs(path: str) -> int:
    with open(path, 'rb') as f:
        return f.read().count(b'-----BEGIN CERTIFICATE-----')
