# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What `use` changed, so that `absent` takes back exactly that.

Each file we touch is a Target: one we own whole ("file"), JSON we share
with its owner ("json", our keys only), TOML we share with its owner
("toml", our block of tables only), or /etc/hosts ("hosts", our lines
only). Its record in the state remembers the bytes and mode it had before
we first changed it, and a hash of what we last wrote. Taking back a file
nobody changed since puts its original bytes back; a file changed
meanwhile loses only our keys or lines.

Pure: bytes and records in, bytes, records and reasons out.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.use import hosts as hosts
from ansible.module_utils.buildset_registry.use import jsonfile as jsonedit
from ansible.module_utils.buildset_registry.use import tomlblock as tomlblock

VERSION = 1


@dataclass
class Target:
    """One file as `use` wants it."""

    path: str
    kind: str  # "file", "json", "toml" or "hosts"
    # file: the bytes; json: list of (keypath, value); toml: {table name: {key: value}}
    # under [registry."name"]; hosts: {name: address}
    content: object
    mode: int = 0o644  # of a file we make; a secret file is always this
    secret: bool = False  # holds credentials: mode forced, masked in diffs
    dirs: list = field(default_factory=list)  # [(dir, mode)], outermost first, made when missing
    owner: tuple = None  # (uid, gid) for files and dirs we make, None: the running user
    indent: str = "\t"  # json


def in_certs_d(etc, sub, name, content, **kwargs):
    """A file we own at ETC/certs.d/SUB/NAME (docker, containers-image and
    containerd all keep per-registry files there), with the directories to
    make for it."""
    certs_d = etc + "/certs.d"
    dirs = [(etc, 0o755), (certs_d, 0o755), ("%s/%s" % (certs_d, sub), 0o755)]
    return Target(path="%s/%s/%s" % (certs_d, sub, name), kind="file", content=content, dirs=dirs, **kwargs)


def toml_string(text):
    """A TOML basic string: a JSON string of printable text is one."""
    return json.dumps(text)


def sha(data):
    return None if data is None else hashlib.sha256(data).hexdigest()


def _b64(data):
    return None if data is None else base64.b64encode(data).decode()


def original(record):
    return None if record.get("original") is None else base64.b64decode(record["original"])


def new_state():
    return {"version": VERSION, "files": {}, "dirs": []}


def load_state(data, path):
    """The state in data (None: nothing recorded yet)."""
    if data is None:
        return new_state()
    try:
        state = json.loads(data.decode("utf-8"))
        if state.get("version") != VERSION or not isinstance(state.get("files"), dict):
            raise ValueError("unknown layout")
    except (UnicodeDecodeError, ValueError, AttributeError) as e:
        raise RegistryError(
            None,
            "%s cannot be read (%s): it records what `use` changed; restore it from a "
            "backup, or remove it and undo those changes by hand",
            path,
            e,
        ) from None
    state.setdefault("dirs", [])
    return state


def dump_state(state):
    return (json.dumps(state, indent=1, sort_keys=True) + "\n").encode()


def present(target, old, old_mode, record):
    """Plan target from the file's current bytes (None: missing) and mode.

    Returns (record, new bytes or None, new mode, reasons); record is new
    when None was given.
    """
    if record is None:
        record = {"kind": target.kind, "original": _b64(old), "mode": old_mode, "written": sha(old)}
        if target.kind == "json":
            record["indent"] = target.indent
    elif sha(old) != record.get("written"):
        # Changed by someone else since we wrote it: its original bytes
        # are no longer the way back, our keys or lines are.
        record["exact"] = False
    if target.kind == "file":
        new = target.content
        reasons = [] if old == new else ["missing"] if old is None else ["content differs"]
    elif target.kind == "json":
        new, reasons = jsonedit.apply(target.path, old, target.content, record)
    elif target.kind == "toml":
        new, reasons = tomlblock.apply(target.path, old, "registry", target.content, record)
    else:
        new, reasons = hosts.apply(old, target.content, record)
    mode = target.mode if old is None or target.secret else old_mode
    if new is not None and old is not None and mode != old_mode:
        reasons.append("mode %04o, want %04o" % (old_mode, mode))
    record["written"] = sha(new)
    return record, new, mode, reasons


def revert(path, record, cur, cur_mode):
    """Plan taking back what record says we did; returns (new bytes or
    None, mode, reasons)."""
    if record.get("exact", True) and sha(cur) == record.get("written"):
        before = original(record)
        if before == cur:
            return cur, cur_mode, []
        return before, record.get("mode"), ["put back as it was" if before is not None else "removed: we made it"]
    kind = record["kind"]
    if kind == "file":
        before = original(record)
        if before == cur:
            return cur, cur_mode, []
        return (
            before,
            record.get("mode") or cur_mode,
            ["changed since we wrote it; " + ("put back as it was" if before is not None else "removed: we made it")],
        )
    if kind == "json":
        new, reasons = jsonedit.revert(path, cur, record)
    elif kind == "toml":
        new, reasons = tomlblock.revert(cur, record)
    else:
        new, reasons = hosts.revert(cur, record)
    return new, cur_mode, reasons


def masked(kind, data, secret):
    """data as a diff may show it: secrets masked."""
    if data is None:
        return ""
    if kind == "json":
        return jsonedit.masked(data)
    if kind == "hosts":
        return hosts.masked(data)
    text = data.decode("utf-8", "replace")
    if secret:
        return "".join(
            (ln.split("=", 1)[0] + '= "%s"\n' % jsonedit.MASK) if "Authorization" in ln else ln
            for ln in text.splitlines(keepends=True)
        )
    return text
