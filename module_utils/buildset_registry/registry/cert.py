# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Self-signed certificate of the buildset registry: names, decision, making.

Plain functions (bytes and strings in, decisions and data out) so unit tests
call them without Ansible: plan() decides from the key and certificate on
disk what to make and why (a Plan), apply() makes it; ensure() reads,
plans and applies, run() is the cert module's whole job.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible.module_utils.buildset_registry.common.errors import Outcome, RegistryError
from ansible.module_utils.buildset_registry.common.layout import layout, read_optional, write_file

# Always in the certificate: clients on the registry's own node use these.
LOCAL_NAMES = ("127.0.0.1", "::1", "localhost")

KEY_MODE = 0o600
CERT_MODE = 0o644

_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def classify_name(name):
    """Return ("IP", compressed address) or ("DNS", lowercased name), or None."""
    if not isinstance(name, str) or not name:
        return None
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        addr = None
    if addr is not None:
        # A zone index (fe80::1%eth0) cannot go into a certificate.
        if getattr(addr, "scope_id", None):
            return None
        return ("IP", addr.compressed)
    if len(name) > 253:
        return None
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    # An all-numeric last label is a mistyped address (10.0.0.256), not a name.
    if labels[-1].isdigit():
        return None
    return ("DNS", name.lower())


def requested_sans(host, extra_names=()):
    """Validate the names and return the wanted SANs as "DNS:x"/"IP:y", deduped.

    Raises RegistryError naming the option that holds a bad name.
    """
    sans = []
    named = [(host, "host")]
    named += [(n, "extra_names") for n in extra_names or ()]
    named += [(n, None) for n in LOCAL_NAMES]
    for name, option in named:
        kind = classify_name(name)
        if kind is None:
            raise RegistryError(
                option,
                "{%s}: %%r is not a valid DNS name or IP address; use an IPv4 or "
                "IPv6 address (no brackets or zone) or a DNS name of labels "
                "1-63 characters long made of letters, digits and '-' (not at "
                "either end of a label), 253 characters at most" % option,
                name,
            )
        san = "%s:%s" % kind
        if san not in sans:
            sans.append(san)
    return sans


def _general_name(san):
    kind, value = san.split(":", 1)
    if kind == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    return x509.DNSName(value)


def _san_strings(cert):
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


def _public_der(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


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


def describe(cert):
    """Facts about a certificate, safe to show: no key material."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "sans": _san_strings(cert),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "fingerprint": cert.fingerprint(hashes.SHA256()).hex(),
    }


@dataclass(frozen=True)
class Plan:
    """What ensure() does to the key and certificate, and why."""

    new_key: bool
    new_cert: bool
    fix_key_mode: bool
    reasons: tuple

    @property
    def changed(self):
        return self.new_cert or self.fix_key_mode


def plan(key_pem, cert_pem, key_mode, sans, renew_days, now):
    """Decide from what is on disk: the key's and the certificate's bytes
    (None: missing) and the key's mode.

    Nothing is regenerated because time passed, only when the certificate
    is missing, unparsable, does not match the key, lacks a requested name
    or expires within renew_days; a key that does not parse is replaced.
    """
    key = load_key(key_pem)
    if key is None:
        reasons = ["private key missing" if not key_pem else "private key unparsable"]
        if not cert_pem:
            reasons.append("certificate missing")
        return Plan(new_key=True, new_cert=True, fix_key_mode=False, reasons=tuple(reasons))
    reasons = _cert_reasons(key, cert_pem, sans, renew_days, now)
    new_cert = bool(reasons)
    if key_mode != KEY_MODE:
        reasons.append("private key mode %04o, want %04o" % (key_mode, KEY_MODE))
    return Plan(new_key=False, new_cert=new_cert, fix_key_mode=key_mode != KEY_MODE, reasons=tuple(reasons))


def _cert_reasons(key, cert_pem, sans, renew_days, now):
    """Why the certificate in cert_pem will not do for key and sans ([]: it will)."""
    cert = load_cert(cert_pem)
    if cert is None:
        return ["certificate missing" if not cert_pem else "certificate unparsable"]
    reasons = []
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        reasons.append("certificate does not match the key")
    have = set(_san_strings(cert))
    reasons += ["subjectAltName lacks %s" % san for san in sans if san not in have]
    not_after = cert.not_valid_after_utc
    if not_after <= now:
        reasons.append("expired (%s)" % not_after.isoformat())
    elif not_after - now < datetime.timedelta(days=renew_days):
        reasons.append("expires within %d days (%s)" % (renew_days, not_after.isoformat()))
    return reasons


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


def diff_text(info):
    """Diff side for a certificate description (or None: absent)."""
    if info is None:
        return ""
    return "subject: %s\nsubjectAltName: %s\nnot_after: %s\nsha256: %s\n" % (
        info["subject"],
        ", ".join(info["sans"]),
        info["not_after"],
        info["fingerprint"],
    )


def check_days(valid_days, renew_days):
    if valid_days < 1:
        raise RegistryError(
            "valid_days",
            "{valid_days}: %d is not a positive number of days; set it to 1 or more (default 365)",
            valid_days,
        )
    if renew_days < 0 or renew_days >= valid_days:
        raise RegistryError(
            "renew_days",
            "{renew_days}: %d must be 0 or more and less than {valid_days} (%d), or every run "
            "would make a new certificate; lower it or raise the validity",
            renew_days,
            valid_days,
        )


def validate(params):
    """Check the certificate's options; pure."""
    requested_sans(params["host"], params["extra_names"])
    check_days(params["valid_days"], params["renew_days"])


def ensure(params, check_mode=False, now=None):
    """Keep or (re)make the key and certificate under params["root"].

    params: the part's options (root, host, extra_names, valid_days,
    renew_days), validated. Returns an Outcome whose data holds cert (PEM
    text, empty when check mode would make a new one), cert_path,
    key_path, sans, not_after and fingerprint; before/after describe the
    certificate, never the key.
    """
    now = now or _now()
    sans = requested_sans(params["host"], params["extra_names"])
    paths = layout(params["root"])
    key, cert = read_optional(paths["key"]), read_optional(paths["cert"])
    todo = plan(key, cert, _mode(paths["key"]), sans, params["renew_days"], now)
    current = load_cert(cert)
    outcome = Outcome(
        changed=todo.changed,
        reasons=list(todo.reasons),
        header=paths["cert"],
        before=diff_text(describe(current) if current is not None else None),
        data={"cert_path": paths["cert"], "key_path": paths["key"]},
    )
    if check_mode and todo.new_cert:
        return _preview(outcome, params["host"], sans, params["valid_days"], now)
    if not check_mode:
        current = apply(todo, params, key, sans, now) or current
    return _finish(outcome, current)


def apply(todo, params, old_key, sans, now):
    """Carry out todo; return the new certificate (None: the one on disk stays).

    A file that cannot be written or changed raises RegistryError naming it.
    """
    paths = layout(params["root"])
    if todo.new_key:
        key = make_key()
        write_file(paths["key"], key_pem(key), KEY_MODE)
    else:
        key = load_key(old_key)
        if todo.fix_key_mode:
            _set_mode(paths["key"], KEY_MODE)
    if not todo.new_cert:
        return None
    pem = make_cert(key, params["host"], sans, params["valid_days"], now)
    write_file(paths["cert"], pem, CERT_MODE)
    return load_cert(pem)


def _preview(outcome, host, sans, valid_days, now):
    """The outcome of check mode when a new certificate would be made."""
    outcome.data.update(cert="", sans=sans, not_after="", fingerprint="")
    outcome.after = diff_text(
        {
            "subject": "CN=%s" % host[:64],
            "sans": sans,
            "not_after": "about %s" % (now + datetime.timedelta(days=valid_days)).isoformat(),
            "fingerprint": "(new certificate)",
        }
    )
    return outcome


def _finish(outcome, cert):
    info = describe(cert)
    outcome.after = diff_text(info)
    outcome.data.update(
        cert=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        sans=info["sans"],
        not_after=info["not_after"],
        fingerprint=info["fingerprint"],
    )
    return outcome


def _mode(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except (FileNotFoundError, NotADirectoryError):
        return None


def _set_mode(path, mode):
    try:
        os.chmod(path, mode)
    except OSError as e:
        raise RegistryError(
            "root",
            "{root}: cannot change the mode of %s to %04o (%s); run as the user that owns it, "
            "or set {root} to a directory this user owns",
            path,
            mode,
            e.strerror or e,
        ) from e


def run(params, check_mode, result):
    """The cert module's whole job: check, then ensure; fills result (the
    paths first, so that a failure names them too)."""
    paths = layout(params["root"])
    result.update(cert_path=paths["cert"], key_path=paths["key"], reasons=[])
    validate(params)
    outcome = ensure(params, check_mode)
    result.update(outcome.report(), diff=outcome.diff())
