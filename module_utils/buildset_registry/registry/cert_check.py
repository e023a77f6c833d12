# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The certificate's names and options, and a re-run's check of the key and
certificate on disk: pure, or the standard library's ssl only.

registry/cert.py makes and replaces them with cryptography, whose import
costs more than a re-run's whole work. kept() tells, with the rules of
cert.plan(), that the key and certificate on disk need nothing: the key is
0600, opens and matches the certificate (a TLS handshake in memory, the
certificate trusted as its own CA as clients trust it), the certificate
holds every wanted name and expires after renew_days. Anything else, or
anything it cannot tell, it leaves to cert.ensure(), which says why and
acts.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import ssl

from ansible.module_utils.buildset_registry.common.errors import Outcome, RegistryError
from ansible.module_utils.buildset_registry.common.layout import file_mode, layout

# Always in the certificate: clients on the registry's own node use these.
LOCAL_NAMES = ("127.0.0.1", "::1", "localhost")

KEY_MODE = 0o600
CERT_MODE = 0o644

_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# A subject whose RFC 4514 text is "CN=" and the value as it is (no escaping).
_PLAIN_CN = re.compile(r"^[A-Za-z0-9.:_*-]{1,64}$")
_HANDSHAKE_STEPS = 8


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


def _handshake(cert_path, key_path):
    """(the client's view of the peer's certificate, its DER) after a TLS
    handshake in memory between a server holding key and certificate and a
    client trusting the certificate; None when it fails."""
    try:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # An encrypted key fails here instead of asking for a passphrase.
        server.load_cert_chain(cert_path, key_path, password=lambda: b"")
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.load_verify_locations(cafile=cert_path)
        bios = [ssl.MemoryBIO() for _ in range(4)]
        ends = (
            (client.wrap_bio(bios[0], bios[1]), bios[1], bios[2]),
            (server.wrap_bio(bios[2], bios[3], server_side=True), bios[3], bios[0]),
        )
        for _ in range(_HANDSHAKE_STEPS):
            done = True
            for end, out, peer in ends:
                try:
                    end.do_handshake()
                except ssl.SSLWantReadError:
                    done = False
                if out.pending:
                    peer.write(out.read())
            if done:
                break
        else:
            return None
        return ends[0][0].getpeercert(), ends[0][0].getpeercert(binary_form=True)
    except (ssl.SSLError, OSError, ValueError):
        return None


def served_certificate(cert_path, key_path):
    """What a client sees of the certificate when a server holds this key
    and certificate, in cert.describe()'s terms plus its PEM text; None
    when the handshake fails (a key that does not open or match, a
    certificate that is not valid now) or the certificate's subject is not
    one plain common name."""
    seen, der = _handshake(cert_path, key_path) or (None, None)
    if not seen or not der:
        return None
    subject = seen.get("subject") or ()
    if len(subject) != 1 or len(subject[0]) != 1 or subject[0][0][0] != "commonName":
        return None
    if not _PLAIN_CN.match(subject[0][0][1]):
        return None
    sans = []
    for kind, value in seen.get("subjectAltName") or ():
        if kind == "DNS":
            sans.append("DNS:%s" % value.lower())
        elif kind == "IP Address":
            sans.append("IP:%s" % ipaddress.ip_address(value.strip()).compressed)
    not_after = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(seen["notAfter"]), datetime.timezone.utc)
    return {
        "subject": "CN=%s" % subject[0][0][1],
        "sans": sans,
        "not_after": not_after.isoformat(),
        "fingerprint": hashlib.sha256(der).hexdigest(),
        "cert": ssl.DER_cert_to_PEM_cert(der),
    }


def kept(params):
    """The certificate part's Outcome when the key and certificate on disk
    need nothing (cert.plan() would give no reason), else None.

    params: the part's options (root, host, extra_names, renew_days), validated.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = requested_sans(params["host"], params["extra_names"])
    paths = layout(params["root"])
    if file_mode(paths["key"]) != KEY_MODE:
        return None
    info = served_certificate(paths["cert"], paths["key"])
    if info is None or any(san not in info["sans"] for san in sans):
        return None
    not_after = datetime.datetime.fromisoformat(info["not_after"])
    if not_after - now < datetime.timedelta(days=params["renew_days"]) or not_after <= now:
        return None
    text = diff_text(info)
    data = {"cert_path": paths["cert"], "key_path": paths["key"]}
    data.update((k, info[k]) for k in ("cert", "sans", "not_after", "fingerprint"))
    return Outcome(changed=False, reasons=[], header=paths["cert"], before=text, after=text, data=data)
