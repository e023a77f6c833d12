# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Our tables in a TOML file we share with its owner (buildkitd.toml): one
block between BEGIN and END lines at the end of the file, written by us;
every byte outside it is the owner's.

TOML lets a table be defined once. When the owner's part already defines
one of ours (``[registry."docker.io"]`` with mirrors of its own), that
table's lines move into our block, merged (our values first in a list,
the owner's other keys kept), and the record keeps them so that taking the
block back puts them back. A table we cannot move whole (defined with
dotted keys or inline) is refused, naming the file, before anything
changes.

Pure: bytes in, bytes out. Reading is tomllib's (Python 3.11), else the
vendored tomli when there is one; without either, the owner's part is not
checked, and a table of ours it defines already is refused.
"""

from __future__ import annotations

import json
import re

from ansible.module_utils.buildset_registry.common.errors import RegistryError

try:
    import tomllib as _toml
except ImportError:  # Python < 3.11 on the node
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

BEGIN = "# BEGIN run-buildset-registry (tasks_from: use); buildset_registry_state: absent takes this block back"
END = "# END run-buildset-registry"
_HEADER = re.compile(r"""^\s*\[\s*([A-Za-z0-9_-]+)\s*\.\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*\]\s*(?:#.*)?$""")
_ANY_HEADER = re.compile(r"^\s*\[")


def _key(text):
    return text if re.match(r"^[A-Za-z0-9_-]+$", text) else json.dumps(text)


def value(v):
    """TOML for a value tomllib can give (dates and times left out)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string of text is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join("%s = %s" % (_key(k), value(x)) for k, x in v.items()) + "}"
    raise ValueError("a %s value" % type(v).__name__)


def _decode(path, data):
    try:
        return (data or b"").decode("utf-8")
    except UnicodeDecodeError as e:
        raise RegistryError(None, "%s is not UTF-8 text (%s); fix or remove it. Nothing was changed.",
                            path, e) from None  # fmt: skip


def _parse(path, text, what="it"):
    if _toml is None:
        return None
    try:
        return _toml.loads(text)
    except ValueError as e:  # tomllib.TOMLDecodeError is a ValueError
        raise RegistryError(None, "%s is not valid TOML (%s in %s); fix or remove it. Nothing was changed.",
                            path, e, what) from None  # fmt: skip


def split(text):
    """(the owner's text, our block's text or None)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == BEGIN), None)
    if start is None:
        return text, None
    end = next((i for i in range(start, len(lines)) if lines[i].rstrip() == END), len(lines) - 1)
    return "".join(lines[:start] + lines[end + 1 :]), "".join(lines[start : end + 1])


def _sections(text, top, name):
    """(start, end) line indexes of each [top."name"] section in text."""
    lines = text.splitlines(keepends=True)
    found = []
    for i, ln in enumerate(lines):
        m = _HEADER.match(ln)
        if m and m.group(1) == top and (m.group(3) if m.group(2) is None else json.loads('"%s"' % m.group(2))) == name:
            end = next((j for j in range(i + 1, len(lines)) if _ANY_HEADER.match(lines[j])), len(lines))
            found.append((i, end))
    return lines, found


def _sub_table(v):
    return isinstance(v, dict) or (isinstance(v, list) and all(isinstance(x, dict) for x in v))


def _defined(doc, top, name):
    return doc is not None and isinstance(doc.get(top), dict) and name in doc[top]


def _cut(path, text, top, name):
    """text without its [top."name"] table, and the table's lines."""
    lines, found = _sections(text, top, name)
    if len(found) == 1:
        i, j = found[0]
        rest = "".join(lines[:i] + lines[j:])
        doc = _parse(path, rest, "what remains without [%s.%s]" % (top, json.dumps(name)))
        left = doc[top][name] if _defined(doc, top, name) else {}
        # Only its own sub-tables may stay behind ([[top."name".keypair]]).
        if all(_sub_table(v) for v in left.values()):
            return rest, "".join(lines[i:j])
    raise RegistryError(
        None,
        "%s defines %s.%s in a way that cannot take our values: write it as one [%s.%s] table, or "
        "remove it, and run again. Nothing was changed.",
        path,
        top,
        json.dumps(name),
        top,
        json.dumps(name),
    )


def _merge(theirs, ours):
    """ours first; a list of theirs keeps its other items after ours."""
    out = dict(theirs)
    for key, want in ours.items():
        have = theirs.get(key)
        both = isinstance(want, list) and isinstance(have, list)
        out[key] = want + [x for x in have if x not in want] if both else want
    return out


def _table_of(moved_text, top, name):
    return (_toml.loads(moved_text).get(top) or {}).get(name, {})


def _with_newline(text, record):
    if text and not text.endswith("\n"):
        record["newline_added"] = True
        return text + "\n"
    return text


def apply(path, data, top, tables, record):
    """The file with our tables (name -> {key: value}) under [top."name"];
    returns (bytes, reasons). record (updated in place) keeps what moved
    into our block ("moved": name -> text) and a final line break added
    to the owner's text ("newline_added")."""
    text = _decode(path, data)
    own, block = split(text)
    doc = _parse(path, own)
    moved = record.setdefault("moved", {})
    back = [moved.pop(name) for name in list(moved) if name not in tables]
    own += "".join(back)
    for name in tables:
        if doc is None and _sections(own, top, name)[1]:
            raise RegistryError(
                None,
                "%s defines [%s.%s] already: merging our values into it needs Python 3.11 (tomllib) or tomli "
                "on the node. Nothing was changed.",
                path,
                top,
                json.dumps(name),
            )
        if _defined(doc, top, name):
            own, lines = _cut(path, own, top, name)
            moved[name] = moved.get(name, "") + lines
    own = _with_newline(own, record) if own else own
    out = [BEGIN + "\n"]
    for name, ours in tables.items():
        merged = _merge(_table_of(moved[name], top, name), ours) if name in moved else ours
        out.append("[%s.%s]\n" % (top, json.dumps(name)))
        out.extend("  %s = %s\n" % (_key(k), value(v)) for k, v in merged.items())
    out.append(END + "\n")
    new = own + "".join(out)
    check = _parse(path, new, "what we would write")
    if check is not None and not all(_defined(check, top, name) for name in tables):
        raise RegistryError(None, "%s: our tables would not hold; fix the file. Nothing was changed.", path)
    if new.encode() == data:
        return data, []
    names = ", ".join("[%s.%s]" % (top, json.dumps(n)) for n in tables)
    reasons = ["%s %s" % (names, "added" if block is None else "set")]
    if moved:
        reasons.append("the file's own %s merged into ours" % ", ".join(sorted(moved)))
    return new.encode(), reasons


def revert(data, record):
    """The file without our block, the tables that moved into it back;
    returns (bytes or None, reasons)."""
    if data is None:
        return None, []
    text = data.decode("utf-8", "replace")
    own, block = split(text)
    moved = list((record.get("moved") or {}).values())
    if block is None and not moved:
        return data, []
    if record.get("newline_added") and not moved and own.endswith("\n"):
        own = own[:-1]
    own += "".join(moved)
    if not own and record.get("original") is None:
        return None, ["only our block was left: removed"]
    return own.encode(), ["our block taken out, the rest kept"]
