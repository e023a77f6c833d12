# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Structural edits of JSON files we share with their owner (daemon.json,
docker's config.json, containers' auth.json).

We set some keys and remember what each held before, so that we can take
back exactly those keys later and keep every other one. A file is parsed
and written again only when one of our keys has to change: a file that
already says what we want keeps its bytes.

Pure: bytes in, bytes out.
"""

from __future__ import annotations

import copy
import json

from ansible.module_utils.buildset_registry.common.errors import RegistryError

# Values never shown in a diff.
SECRET_KEYS = ("auth", "identitytoken", "password", "registrytoken", "Authorization")
MASK = "********"


def load(path, data):
    """The JSON object in data (None or empty: a missing file, {})."""
    if data is None or not data.strip():
        return {}
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise RegistryError(
            None, "%s is not valid JSON (%s); fix or remove it. Nothing was changed.", path, e
        ) from None
    if not isinstance(obj, dict):
        raise RegistryError(None, "%s does not hold a JSON object; fix or remove it. Nothing was changed.", path)
    return obj


def dump(obj, indent="\t"):
    return (json.dumps(obj, indent=indent) + "\n").encode("utf-8")


def _parent(obj, keypath, make=False, made=None):
    """The dict holding keypath's last key (made when make), or None."""
    for i, key in enumerate(keypath[:-1]):
        child = obj.get(key)
        if not isinstance(child, dict):
            if not make:
                return None
            child = obj[key] = {}
            if made is not None:
                made.append(list(keypath[: i + 1]))
        obj = child
    return obj


def get(obj, keypath):
    """{"value": v} when keypath is set in obj, else {}."""
    parent = _parent(obj, keypath)
    if parent is None or keypath[-1] not in parent:
        return {}
    return {"value": parent[keypath[-1]]}


def _put(obj, keypath, prev, made=None):
    """Set keypath to prev["value"], or delete it when prev is {}."""
    if "value" in prev:
        _parent(obj, keypath, make=True, made=made)[keypath[-1]] = prev["value"]
    else:
        parent = _parent(obj, keypath)
        if parent is not None:
            parent.pop(keypath[-1], None)


def apply(path, data, wanted, record):
    """Set each (keypath, value) of wanted in the JSON of data.

    record (updated in place) remembers, per key we set, what it held
    before we first set it ("keys") and the dicts we made ("made"); keys
    recorded earlier but no longer wanted get their old value back.
    Returns the new bytes (data itself when nothing changes) and reasons.
    """
    obj = load(path, data)
    new = copy.deepcopy(obj)
    reasons = []
    wanted_paths = [list(k) for k, _ in wanted]
    for keypath, prev in list(record.get("keys", [])):
        if keypath not in wanted_paths:
            _put(new, keypath, prev)
            record["keys"].remove([keypath, prev])
            reasons.append("%s no longer ours: put back" % "/".join(keypath))
    recorded = [k for k, _ in record.get("keys", [])]
    for keypath, value in wanted:
        keypath = list(keypath)
        if keypath not in recorded:
            record.setdefault("keys", []).append([keypath, get(new, keypath)])
        if get(new, keypath) != {"value": value}:
            _put(new, keypath, {"value": value}, made=record.setdefault("made", []))
            reasons.append("%s %s" % ("/".join(keypath), "set" if get(obj, keypath) else "added"))
    record["made"] = _prune(new, record.get("made", []), wanted_paths)
    if new == obj:
        return data, []
    return dump(new, record.get("indent", "\t")), reasons


def revert(path, data, record):
    """Take back the keys of record from the JSON of data, keeping the rest.

    Returns (new bytes, reasons); None when the file did not exist before
    us and nothing but what we made is left in it.
    """
    if data is None:
        return None, []
    obj = load(path, data)
    new = copy.deepcopy(obj)
    for keypath, prev in record.get("keys", []):
        _put(new, keypath, prev)
    _prune(new, record.get("made", []), [])
    if new == obj:
        return data, []
    if not new and record.get("original") is None:
        return None, ["only our keys were left: removed"]
    return dump(new, record.get("indent", "\t")), ["our keys taken out, the rest kept"]


def _prune(obj, made, keep):
    """Delete the dicts of made (keypaths) that are empty and hold no key
    of keep; return those of made that still stand."""
    standing = []
    for keypath in sorted(made, key=len, reverse=True):
        parent = _parent(obj, keypath)
        value = parent.get(keypath[-1]) if parent is not None else None
        if value == {} and not any(k[: len(keypath)] == keypath for k in keep):
            del parent[keypath[-1]]
        elif value is not None:
            standing.append(keypath)
    return standing


def masked(data):
    """data's JSON for a diff, every secret value masked; text when not JSON."""
    if data is None:
        return ""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "(not valid JSON, %d bytes)\n" % len(data)
    return json.dumps(_mask(obj), indent=2) + "\n"


def _mask(obj):
    if isinstance(obj, dict):
        return {k: (MASK if k in SECRET_KEYS and v else _mask(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mask(v) for v in obj]
    return obj
