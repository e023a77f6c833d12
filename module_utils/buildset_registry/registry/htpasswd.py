# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""htpasswd (bcrypt) file and stored password of the buildset registry.

Plain functions (strings and bytes in, decisions and data out) so unit tests
call them without Ansible. library/buildset_registry_htpasswd.py wires them up.
"""

from __future__ import annotations

import os
import re
import secrets

import bcrypt

from ansible.module_utils.buildset_registry.common.errors import Outcome, RegistryError
from ansible.module_utils.buildset_registry.common.layout import layout, read_optional, write_file

FILE_MODE = 0o600
MIN_COST, MAX_COST = 4, 31
# bcrypt uses the first 72 bytes only; Go's bcrypt refuses longer passwords.
MAX_PASSWORD_BYTES = 72

# $2y$ is what Apache's htpasswd -B writes and the registry docs show;
# golang.org/x/crypto/bcrypt (the registry) accepts 2a, 2b and 2y alike.
PREFIX = "$2y$"
_HASH = re.compile(r"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")


def validate(params):
    """Reject inputs the registry's htpasswd parser or bcrypt cannot take."""
    username, password, cost = params["username"], params["password"], params["bcrypt_cost"]
    if not username:
        raise RegistryError("username", "{username}: is empty; set it to the name clients log in with (default zuul)")
    # The registry trims each line and skips those starting with '#'.
    problems = [
        what
        for what, bad in (
            ("a colon", ":" in username),
            ("a line break", "\n" in username or "\r" in username),
            ("a leading '#'", username.startswith("#")),
            ("surrounding spaces", username != username.strip()),
        )
        if bad
    ]
    if problems:
        raise RegistryError(
            "username",
            "{username}: %r holds %s, which an htpasswd file cannot take; use a name without them, for example zuul",
            username,
            " and ".join(problems),
        )
    if "\n" in password or "\r" in password or "\0" in password:
        raise RegistryError(
            "password",
            "{password}: contains a line break or NUL character, which clients and bcrypt "
            "cannot take; choose another password or leave it empty to generate one",
        )
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise RegistryError(
            "password",
            "{password}: is longer than %d bytes, which bcrypt cannot use; choose a shorter "
            "one or leave it empty to generate one",
            MAX_PASSWORD_BYTES,
        )
    if not MIN_COST <= cost <= MAX_COST:
        raise RegistryError(
            "bcrypt_cost",
            "{bcrypt_cost}: %d is outside bcrypt's range %d-%d; the registry checks the "
            "hash on every request, so keep it low (default 4)",
            cost,
            MIN_COST,
            MAX_COST,
        )


def generate_password():
    """A new password: 24 random bytes (192 bits), URL-safe text."""
    return secrets.token_urlsafe(24)


def parse_stored_password(data):
    """Return the password in the stored file's bytes, or None if unusable."""
    if data is None:
        return None
    try:
        text = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    if not text or "\n" in text or "\r" in text or "\0" in text:
        return None
    if len(text.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return None
    return text


def parse_htpasswd(data):
    """Return (entries, error): entries a list of (user, hash), error a reason or None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], "htpasswd is not UTF-8 text"
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        user, sep, hashed = line.partition(":")
        if not sep or not user or not _HASH.match(hashed):
            return entries, "htpasswd line %d does not parse as user:bcrypt-hash" % number
        entries.append((user, hashed))
    return entries, None


def hash_cost(hashed):
    return int(_HASH.match(hashed).group(1))


def make_hash(password, cost):
    salt = bcrypt.gensalt(rounds=cost, prefix=b"2b")
    hashed = bcrypt.hashpw(password.encode("utf-8"), salt).decode("ascii")
    return PREFIX + hashed[4:]


def plan(data, username, password, cost):
    """Decide the htpasswd content from the current bytes (or None: missing).

    Returns (hash to write, reasons). The current hash is kept when the file
    holds exactly one entry, for username, of the wanted cost, that verifies
    the password (bcrypt.checkpw; hashes are salted so never compared).
    """
    if data is None:
        return make_hash(password, cost), ["htpasswd missing"]
    entries, error = parse_htpasswd(data)
    reasons = [error] if error else []
    if not error and len(entries) != 1:
        reasons.append("htpasswd has %d entries, want 1" % len(entries))
    mine = [h for u, h in entries if u == username]
    if not error and entries and not mine:
        reasons.append("htpasswd has no entry for %s" % username)
    keep = None
    if mine:
        cost_now = hash_cost(mine[0])
        if cost_now != cost:
            reasons.append("bcrypt cost %d, want %d" % (cost_now, cost))
        elif not bcrypt.checkpw(password.encode("utf-8"), mine[0].encode("ascii")):
            reasons.append("hash does not verify the password")
        else:
            keep = mine[0]
    if not reasons and data != line(username, keep):
        reasons.append("htpasswd not in canonical form")
    return keep or make_hash(password, cost), reasons


def line(username, hashed):
    return ("%s:%s\n" % (username, hashed)).encode("utf-8")


def describe(data):
    """One line about an htpasswd file's content, without hashes."""
    if data is None:
        return "htpasswd: absent\n"
    entries, error = parse_htpasswd(data)
    if error:
        return "htpasswd: garbled (%s)\n" % error
    return (
        "htpasswd: %s\n" % ", ".join("user %s, bcrypt cost %d" % (u, hash_cost(h)) for u, h in entries)
        if entries
        else "htpasswd: empty\n"
    )


def _mode(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return None


def ensure(params, check_mode=False):
    """Keep or write the htpasswd (and stored password) under params["root"].

    params: the part's options (root, username, password, bcrypt_cost),
    validated. Returns an Outcome whose data holds password ("" only in
    check mode when one would be generated), password_generated,
    htpasswd_path and username; before/after never show a hash or password.
    """
    username, password, cost = params["username"], params["password"], params["bcrypt_cost"]
    paths = layout(params["root"])
    hpath, ppath = paths["htpasswd"], paths["password"]
    reasons = []
    store = stored = None
    generated = not password
    if generated:
        stored = read_optional(ppath)
        password = parse_stored_password(stored)
        if password is None:
            reasons.append("password file missing" if stored is None else "password file empty or unusable")
            store = generate_password()
            password = store
        elif _mode(ppath) != FILE_MODE:
            reasons.append("password file mode %04o, want %04o" % (_mode(ppath), FILE_MODE))

    old = read_optional(hpath)
    if check_mode and store is not None:
        # The password that would be generated is not known yet.
        hashed = None
        hreasons = ["htpasswd missing"] if old is None else ["hash does not verify the new password"]
    else:
        hashed, hreasons = plan(old, username, password, cost)
    reasons += hreasons
    if old is not None and not hreasons and _mode(hpath) != FILE_MODE:
        reasons.append("htpasswd mode %04o, want %04o" % (_mode(hpath), FILE_MODE))

    outcome = Outcome(
        changed=bool(reasons),
        reasons=reasons,
        header=hpath,
        before=describe(old),
        after="htpasswd for user %s: %s\n" % (username, "hash updated" if hreasons else "hash kept"),
        data={
            "password": "" if check_mode and store is not None else password,
            "password_generated": generated,
            "htpasswd_path": hpath,
            "username": username,
        },
    )
    if generated:
        outcome.before += "password file: %s\n" % ("absent" if stored is None else "present")
        outcome.after += "password file: %s\n" % ("new password stored" if store else "kept")
    if check_mode or not reasons:
        return outcome

    # Password first: if the htpasswd write fails, the next run reuses it.
    if store is not None:
        write_file(ppath, (store + "\n").encode("utf-8"), FILE_MODE)
    elif generated and _mode(ppath) != FILE_MODE:
        os.chmod(ppath, FILE_MODE)
    if hreasons:
        write_file(hpath, line(username, hashed), FILE_MODE)
    elif _mode(hpath) != FILE_MODE:
        os.chmod(hpath, FILE_MODE)
    return outcome
