# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The key and certificate as cryptography makes and reads them: PEM
bytes in and out, the names a certificate holds, and what of it is safe
to show. cert.py decides when to make them; cert_check.py tells, with the
standard library alone, that a re-run needs nothing.
"""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _general_name(san):
    kind, value = san.split(":", 1)
    if kind == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    return x509.DNSName(value)


def san_strings(cert):
    """The subjectAltNames of cert as IP:... and DNS:... strings."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    out = []
    for gn in ext.value:
        if isinstance(gn, x509.IPAddress):
            out.append("IP:%s" % gn.value.compressed)
        elif isinstance(gn, x509.DNSName):
            out.append("DNS:%s" % gn.value.lower())
    return out


def public_der(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def load_key(pem):
    """Return the private key in pem (bytes), or None when it does not parse."""
    if not pem:
        return None
    try:
        # An encrypted key (TypeError) is as useless to the registry as garbage.
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def load_cert(pem):
    """Return the certificate in pem (bytes), or None when it does not parse."""
    if not pem:
        return None
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None


def not_after(cert):
    """When cert expires, as an aware UTC datetime. not_valid_after_utc is
    cryptography 42's; before it, not_valid_after is a naive UTC one (and
    from 42 on it warns that it is deprecated)."""
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return value


def describe(cert):
    """Facts about a certificate, safe to show: no key material."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "sans": san_strings(cert),
        "not_after": not_after(cert).isoformat(),
        "fingerprint": cert.fingerprint(hashes.SHA256()).hex(),
    }


def make_key():
    """A new EC P-256 private key: small, fast, accepted by every client."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_cert(key, host, sans, valid_days, now):
    """A self-signed certificate that is also its own CA; returns PEM bytes.

    basicConstraints CA:TRUE and keyCertSign let docker, skopeo and curl take
    the certificate itself as the CA file.
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Some slack for clocks a little behind this node's.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([_general_name(s) for s in sans]),
            critical=False,
        )
    )
    # Ed25519/Ed448 keys (a user's own key, kept) sign without a separate hash.
    algo = None if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()
    return builder.sign(key, algo).public_bytes(serialization.Encoding.PEM)


def cert_pem(cert):
    """The PEM text of a loaded certificate."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
