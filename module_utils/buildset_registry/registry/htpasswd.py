# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""htpasswd (bcrypt) file and stored password of the buildset registry.

Plain functions (strings and bytes in, decisions and data out) so unit tests
call them without Ansible: look() reads what is on disk, plan() decides
from it what to write and why (a Plan), apply() writes it; ensure() is the
three in a row, run() the htpasswd module's whole job.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common.errors import Outcome, RegistryError
from ansible.module_utils.buildset_registry.common.layout import file_mode, layout, read_optional, set_mode, write_file

FILE_MODE = 0o600
MIN_COST, MAX_COST = 4, 31
# bcrypt uses the first 72 bytes only; Go's bcrypt refuses longer passwords.
MAX_PASSWORD_BYTES = 72

# $2y$ is what Apache's htpasswd -B writes and the registry docs show;
# golang.org/x/crypto/bcrypt (the registry) accepts 2a, 2b and 2y alike.
PREFIX = "$2y$"
_HASH = re.compile(r"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")


def _bcrypt():
    """bcrypt, imported where it is used: the modules check first that this
    Python has a version that works (common/libraries.py)."""
    import bcrypt

    return bcrypt


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
    bcrypt = _bcrypt()
    salt = bcrypt.gensalt(rounds=cost, prefix=b"2b")
    hashed = bcrypt.hashpw(password.encode("utf-8"), salt).decode("ascii")
    return PREFIX + hashed[4:]


def check_htpasswd(data, username, password, cost):
    """Whether the htpasswd bytes (None: missing) will do for username and
    password at cost: (the hash to keep or None, reasons to write it).

    A hash is kept when it is for username, of the wanted cost, and
    verifies the password (bcrypt.checkpw; hashes are salted so never
    compared); the file is rewritten unless that is its one entry, in
    canonical form.
    """
    if data is None:
        return None, ["htpasswd missing"]
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
        elif not _bcrypt().checkpw(password.encode("utf-8"), mine[0].encode("ascii")):
            reasons.append("hash does not verify the password")
        else:
            keep = mine[0]
    if not reasons and data != line(username, keep):
        reasons.append("htpasswd not in canonical form")
    return keep, reasons


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


@dataclass(frozen=True)
class Found:
    """The files ensure() reads: bytes (None: missing) and modes."""

    stored: bytes | None = None  # the password file; read for a generated password only
    stored_mode: int | None = None
    htpasswd: bytes | None = None
    htpasswd_mode: int | None = None


@dataclass(frozen=True)
class Plan:
    """What ensure() does to the password file and the htpasswd, and why."""

    password: str  # the password in effect; "" when check mode would generate one
    generated: bool  # the password is the stored one (or a new one to store)
    store: bool  # write the password file with a new password
    fix_stored_mode: bool
    keep_hash: str | None  # the hash in the htpasswd to keep (None: make one)
    write_htpasswd: bool
    fix_htpasswd_mode: bool
    reasons: tuple


def look(paths, generated):
    """What is on disk (Found); the password file only when generated."""
    stored = read_optional(paths["password"]) if generated else None
    return Found(
        stored=stored,
        stored_mode=file_mode(paths["password"]) if stored is not None else None,
        htpasswd=read_optional(paths["htpasswd"]),
        htpasswd_mode=file_mode(paths["htpasswd"]),
    )


def plan(found, username, password, cost, new_password):
    """Decide from found what to write; pure.

    password: the option; empty: the stored password, or new_password when
    none is stored that can be used (None in check mode: not made yet).
    """
    generated, store, fix_stored, reasons = not password, False, False, []
    if generated:
        password = parse_stored_password(found.stored)
        if password is None:
            reasons.append("password file missing" if found.stored is None else "password file empty or unusable")
            store, password = True, new_password
        elif found.stored_mode != FILE_MODE:
            fix_stored = True
            reasons.append("password file mode %04o, want %04o" % (found.stored_mode, FILE_MODE))
    if password is not None:
        keep, hreasons = check_htpasswd(found.htpasswd, username, password, cost)
    else:  # Check mode: the new password is not made yet, so neither is its hash.
        keep, hreasons = (
            None,
            ["htpasswd missing" if found.htpasswd is None else "hash does not verify the new password"],
        )
    reasons += hreasons
    fix_htpasswd = found.htpasswd is not None and not hreasons and found.htpasswd_mode != FILE_MODE
    if fix_htpasswd:
        reasons.append("htpasswd mode %04o, want %04o" % (found.htpasswd_mode, FILE_MODE))
    return Plan(
        password=password or "",
        generated=generated,
        store=store,
        fix_stored_mode=fix_stored,
        keep_hash=keep,
        write_htpasswd=bool(hreasons),
        fix_htpasswd_mode=fix_htpasswd,
        reasons=tuple(reasons),
    )


def ensure(params, check_mode=False):
    """Keep or write the htpasswd (and stored password) under params["root"].

    params: the part's options (root, username, password, bcrypt_cost),
    validated. Returns an Outcome whose data holds password ("" only in
    check mode when one would be generated), password_generated,
    htpasswd_path and username; before/after never show a hash or password.
    """
    username, cost = params["username"], params["bcrypt_cost"]
    paths = layout(params["root"])
    found = look(paths, not params["password"])
    todo = plan(found, username, params["password"], cost, None if check_mode else generate_password())
    outcome = Outcome(
        changed=bool(todo.reasons),
        reasons=list(todo.reasons),
        header=paths["htpasswd"],
        before=describe(found.htpasswd),
        after="htpasswd for user %s: %s\n" % (username, "hash updated" if todo.write_htpasswd else "hash kept"),
        data={
            "password": todo.password,
            "password_generated": todo.generated,
            "htpasswd_path": paths["htpasswd"],
            "username": username,
        },
    )
    if todo.generated:
        outcome.before += "password file: %s\n" % ("absent" if found.stored is None else "present")
        outcome.after += "password file: %s\n" % ("new password stored" if todo.store else "kept")
    if not check_mode:
        apply(todo, paths, username, cost)
    return outcome


def apply(todo, paths, username, cost):
    """Carry out todo. The password first: if the htpasswd write fails, the
    next run reuses it. A file that cannot be written or changed raises
    RegistryError naming it."""
    if todo.store:
        write_file(paths["password"], (todo.password + "\n").encode("utf-8"), FILE_MODE)
    elif todo.fix_stored_mode:
        set_mode(paths["password"], FILE_MODE)
    if todo.write_htpasswd:
        hashed = todo.keep_hash or make_hash(todo.password, cost)
        write_file(paths["htpasswd"], line(username, hashed), FILE_MODE)
    elif todo.fix_htpasswd_mode:
        set_mode(paths["htpasswd"], FILE_MODE)


def run(params, check_mode, result):
    """The htpasswd module's whole job: check, then ensure; fills result
    (the path and user first, so that a failure names them too)."""
    result.update(htpasswd_path=layout(params["root"])["htpasswd"], username=params["username"], reasons=[])
    validate(params)
    outcome = ensure(params, check_mode)
    result.update(outcome.report(), diff=outcome.diff())
