"""The machine configuration the `use` entry point changes, snapshotted and
put back, for bench/run.py and bench/profile.py.

The paths come from the use module's own planner (every file each client
family would get for the given facts, and the directories made for them),
plus its state file; dockerd's running mirrors are put back with a
SIGHUP through the use module's own dockerd helpers (use/dockerd.py).
"""

from __future__ import annotations

import json
import os


def watched_paths(facts, namespaces, home):
    """Every file and directory `use` may touch for these facts."""
    from ansible.module_utils.buildset_registry.use import entry
    from ansible.module_utils.buildset_registry.use.inputs import validate
    from ansible.module_utils.buildset_registry.use.state import new_state

    wanted = validate(facts, namespaces)
    found = {"docker": True, "containers": True, "containerd": True}
    # /etc/hosts only when `use` writes it (facts with addresses): other
    # people's tests keep their own lines there while they run.
    paths = [entry.STATE_DIR, entry.STATE_FILE]
    for target in entry.build_targets(wanted, found, home, None, new_state(), read=lambda path: (None, None)):
        paths += [d for d, _ in target.dirs] + [target.path]
    return list(dict.fromkeys(paths))


def _capture(path):
    if os.path.isdir(path):
        return ("dir", None, None)
    try:
        with open(path, "rb") as f:
            return ("file", f.read(), os.stat(path).st_mode & 0o7777)
    except FileNotFoundError:
        return (None, None, None)


def _dockerd():
    """The use module's own dockerd helpers (module_utils is on the path by now)."""
    from ansible.module_utils.buildset_registry.use import dockerd

    return dockerd


def running_mirrors():
    """The mirrors the running dockerd has (GET /info), or None."""
    dockerd = _dockerd()
    found = dockerd.find()
    return dockerd.running_mirrors(found.socket) if found else None


class Snapshot:
    """Bytes, modes and existence of paths, and dockerd's mirrors."""

    def __init__(self, paths):
        self.saved = {p: _capture(p) for p in paths}
        self.mirrors = running_mirrors()

    def differences(self):
        """What is not as it was: paths (bytes, mode or existence), and dockerd's mirrors."""
        out = [p for p, was in self.saved.items() if _capture(p) != was]
        if running_mirrors() != self.mirrors:
            out.append("dockerd's registry mirrors")
        return out

    def restore(self):
        for p, was in sorted(self.saved.items(), key=lambda item: len(item[0])):
            if was[0] == "dir":
                os.makedirs(p, exist_ok=True)
        for p, (kind, data, mode) in self.saved.items():
            if kind == "file" and _capture(p) != (kind, data, mode):
                if p == "/etc/hosts":  # may be a bind mount: rewrite, never replace
                    with open(p, "r+b") as f:
                        f.write(data)
                        f.truncate()
                else:
                    with open(p, "wb") as f:
                        f.write(data)
                os.chmod(p, mode)
        for p, was in self.saved.items():
            if was[0] is None and os.path.isfile(p):
                os.unlink(p)
        for p, was in sorted(self.saved.items(), key=lambda item: -len(item[0])):
            if was[0] is None and os.path.isdir(p):
                try:
                    os.rmdir(p)
                except OSError:  # someone else's files in it now
                    pass
        reload_dockerd(self.mirrors)


def reload_dockerd(mirrors):
    """Make dockerd run with mirrors again, leaving its daemon.json as it is
    (a key missing from the file leaves the running value unchanged, so the
    list goes in for the reload and the file is put back after)."""
    dockerd = _dockerd()
    found = dockerd.find()
    if mirrors is None or found is None or dockerd.same(dockerd.running_mirrors(found.socket), mirrors):
        return
    try:
        with open(found.config_file, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = None
    config = json.loads(data) if data else {}
    try:
        with open(found.config_file, "w") as f:
            json.dump(dict(config, **{"registry-mirrors": mirrors}), f)
        dockerd.reload(found, mirrors)
    finally:
        if data is None:
            os.unlink(found.config_file)
        else:
            with open(found.config_file, "wb") as f:
                f.write(data)
