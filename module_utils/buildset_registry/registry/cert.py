# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Self-signed certificate of the buildset registry: when to make it.

Plain functions (bytes and strings in, decisions and data out) so unit tests
call them without Ansible: plan() decides from the key and certificate on
disk what to make and why (a Plan), apply() makes it (with crypto.py);
ensure() reads, plans and applies, run() is the cert module's whole job.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common.errors import Outcome
from ansible.module_utils.buildset_registry.common.layout import file_mode, layout, read_optional, set_mode, write_file

# The names and options, and a re-run's check without cryptography, live in
# cert_check; they are this module's too.
from ansible.module_utils.buildset_registry.registry.cert_check import (  # noqa: F401
    CERT_MODE,
    KEY_MODE,
    classify_name,
    diff_text,
    requested_sans,
    validate,
)
from ansible.module_utils.buildset_registry.registry.crypto import (
    cert_pem,
    describe,
    key_pem,
    load_cert,
    load_key,
    make_cert,
    make_key,
    not_after,
    public_der,
    san_strings,
)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


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
    if public_der(cert.public_key()) != public_der(key.public_key()):
        reasons.append("certificate does not match the key")
    have = set(san_strings(cert))
    reasons += ["subjectAltName lacks %s" % san for san in sans if san not in have]
    expires = not_after(cert)
    if expires <= now:
        reasons.append("expired (%s)" % expires.isoformat())
    elif expires - now < datetime.timedelta(days=renew_days):
        reasons.append("expires within %d days (%s)" % (renew_days, expires.isoformat()))
    return reasons


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
    todo = plan(key, cert, file_mode(paths["key"]), sans, params["renew_days"], now)
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
            set_mode(paths["key"], KEY_MODE)
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
        cert=cert_pem(cert),
        sans=info["sans"],
        not_after=info["not_after"],
        fingerprint=info["fingerprint"],
    )
    return outcome


def run(params, check_mode, result):
    """The cert module's whole job: check, then ensure; fills result (the
    paths first, so that a failure names them too)."""
    paths = layout(params["root"])
    result.update(cert_path=paths["cert"], key_path=paths["key"], reasons=[])
    validate(params)
    outcome = ensure(params, check_mode)
    result.update(outcome.report(), diff=outcome.diff())
