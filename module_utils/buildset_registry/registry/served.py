# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Which files each running container loaded at its start: pure.

A container reads the files it serves (the front: certificate and key)
only when it starts, and labels cannot change on a live container, so the
hash of those files is kept per container ID in layout()["served_state"]
(0600): when it differs, the container is restarted (a start binds the
files anew, so even a file replaced by rename is seen).
"""

from __future__ import annotations

import hashlib
import json


def files_digest(contents):
    """Hash of the served files; contents maps name -> bytes or None (missing)."""
    outer = hashlib.sha256()
    for name in sorted(contents):
        data = contents[name]
        inner = b"missing" if data is None else hashlib.sha256(data).hexdigest().encode()
        outer.update(name.encode() + b"=" + inner + b"\n")
    return outer.hexdigest()


def files_changed(served, name, container_id, digest):
    """True unless the state file says this very container loaded these files."""
    entry = served.get(name) or {}
    return entry.get("id") != container_id or entry.get("files") != digest


def parse_served_state(text):
    """The served-state file's text (or None) -> {container name: {"id", "files"}}."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    containers = data.get("containers") if isinstance(data, dict) else None
    return containers if isinstance(containers, dict) else {}


def render_served_state(served):
    return json.dumps({"containers": served}, indent=2, sort_keys=True) + "\n"
