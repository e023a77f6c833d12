# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The `use` entry point in one run: check the input, plan every file each
client family needs, write only what differs, remember what each file held
before (STATE_FILE) so that `absent` takes back exactly what we added, and
make a running dockerd reload its mirrors.

Nothing is written before every file is planned: bad input, a daemon.json
that is not JSON or a dockerd that could not take our mirrors fail first.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common.errors import Outcome, RegistryError
from ansible.module_utils.buildset_registry.common.namespaces import DOCKER_IO
from ansible.module_utils.buildset_registry.use import buildkit as buildkit
from ansible.module_utils.buildset_registry.use import containerd as containerd
from ansible.module_utils.buildset_registry.use import containers_image as containers
from ansible.module_utils.buildset_registry.use import docker as docker
from ansible.module_utils.buildset_registry.use import dockerd as dockerd
from ansible.module_utils.buildset_registry.use import jsonfile as jsonedit
from ansible.module_utils.buildset_registry.use import node as node
from ansible.module_utils.buildset_registry.use import state as records
from ansible.module_utils.buildset_registry.use.inputs import basic_auth, validate
from ansible.module_utils.buildset_registry.use.node import read

STATE_DIR = "/var/lib/buildset-registry"
STATE_FILE = STATE_DIR + "/use-state.json"
HOSTS = "/etc/hosts"


@dataclass
class Change:
    path: str
    record: dict  # the file's record: new one (present) or the one taken back
    old: bytes
    old_mode: int
    new: bytes
    mode: int
    reasons: list
    target: records.Target = None  # None: taking back

    @property
    def changed(self):
        return self.new != self.old or (self.new is not None and self.mode != self.old_mode)

    def outcome(self):
        kind, secret = self.record["kind"], self.record.get("secret", False)
        if not self.changed:
            action = "unchanged"
        elif self.new is None:
            action = "removed"
        elif self.old is None:
            action = "created"
        else:
            action = "restored" if self.target is None and self.new == records.original(self.record) else "updated"
        return Outcome(
            changed=self.changed,
            reasons=self.reasons,
            header=self.path,
            before=records.masked(kind, self.old, secret),
            after=records.masked(kind, self.new, secret),
            data={"path": self.path, "action": action},
        )


def build_targets(wanted, found, home, owner, state, read=read):
    """Every file the found client families need, as Targets."""
    targets = []
    if found["docker"]:
        targets += docker.targets(wanted, home, owner)
    if found["containers"]:
        hub = None
        if found["docker"] and DOCKER_IO in wanted.namespaces:
            config, auth = docker.config_path(home), containers.auth_path(home)
            config_record, auth_record = state["files"].get(config), state["files"].get(auth) or {}
            before = records.original(config_record) if config_record else read(config)[0]
            ours = [k[-1] for k, _ in auth_record.get("keys", [])]
            hub = containers.hub_entry(before, read(auth)[0], ours)
        targets += containers.targets(wanted, home, owner, hub)
    if found["containerd"]:
        targets += containerd.targets(wanted)
    if found.get("buildkit"):
        targets += buildkit.targets(wanted)
    if wanted.addresses:
        targets.append(records.Target(path=HOSTS, kind="hosts", content=wanted.addresses))
    return targets


def plan(targets, state, read=read):
    """Changes bringing every target about and taking back every recorded
    file no target names any more."""
    changes = []
    for target in targets:
        old, old_mode = read(target.path)
        record = copy.deepcopy(state["files"].get(target.path))
        record, new, mode, reasons = records.present(target, old, old_mode, record)
        record["secret"] = target.secret
        changes.append(Change(target.path, record, old, old_mode, new, mode, reasons, target))
    named = {t.path for t in targets}
    for path, record in state["files"].items():
        if path not in named:
            cur, cur_mode = read(path)
            new, mode, reasons = records.revert(path, record, cur, cur_mode)
            changes.append(Change(path, record, cur, cur_mode, new, mode, reasons))
    return changes


def _reload(engine, expected, result):
    ok, seen = dockerd.reload(engine, expected)
    result["dockerd"].update(reloaded=True, mirrors=seen, confirmed=ok)
    if not ok:
        why = "its API did not answer" if seen is None else "it runs with mirrors %s, not %s" % (seen, expected)
        result["warnings"].append("dockerd (pid %d) got SIGHUP but %s; see its log" % (engine.pid, why))


def _write_daemon_json(change, engine, result, files):
    """Write daemon.json; when our mirrors leave it, clear dockerd's first:
    a key missing from the file leaves the running value as it was."""
    ours = any(k == [docker.MIRRORS_KEY] for k, _ in change.record.get("keys", []))
    if engine and ours and docker.mirrors_in(change.new) is None and dockerd.running_mirrors(engine.socket) != []:
        interim = jsonedit.load(docker.DAEMON_JSON, change.new)
        interim[docker.MIRRORS_KEY] = []
        files.write(change.path, jsonedit.dump(interim, "  "), change.mode or 0o644)
        _reload(engine, [], result)
    files.write(change.path, change.new, change.mode)


def _save(state, files):
    files.make_dirs([(STATE_DIR, 0o700)], None)
    files.write(STATE_FILE, records.dump_state(state), 0o600)


def _forget(files):
    """Nothing is recorded any more: the state file and its directory go."""
    files.write(STATE_FILE, None, None)
    files.remove_dirs({"dirs": [STATE_DIR]}, keep=set())


def apply(changes, state, engine, result, files=node):
    """Write the changes, having recorded first what it takes to take them back.

    files: this machine (node), or a stand-in with node's read, write,
    isdir, make_dirs and remove_dirs; plan() reads through its read.
    """
    keep = list(dict.fromkeys(d for c in changes if c.target is not None for d, _ in c.target.dirs))
    made = [d for d in keep if not files.isdir(d)]
    state["dirs"] += [d for d in made if d not in state["dirs"]]
    state["files"].update({c.path: c.record for c in changes if c.target is not None})
    if any(c.changed for c in changes) or made:
        _save(state, files)
    for change in changes:
        if change.target is not None:
            files.make_dirs(change.target.dirs, change.target.owner)
        if change.path == docker.DAEMON_JSON and change.changed:
            _write_daemon_json(change, engine, result, files)
        elif change.changed:
            owner = change.target and change.target.owner
            files.write(change.path, change.new, change.mode, owner, change.path == HOSTS)
        if change.target is None:
            del state["files"][change.path]
    files.remove_dirs(state, set(keep))
    if not state["files"]:
        _forget(files)
    elif any(c.changed for c in changes):
        _save(state, files)


def secrets(params):
    """The password in params' registry, and the forms it is written in."""
    registry = params.get("registry")
    if not isinstance(registry, dict) or not registry.get("password"):
        return []
    password = str(registry["password"])
    username = registry.get("username", "")
    return [password, "%s:%s" % (username, password), basic_auth(username, password)]


def _home(home, present):
    """The home whose credentials to set (empty: the connecting user's) and,
    when present, its owner, who gets the files and directories made there."""
    home = home or node.default_home()
    if not present:
        return home, None
    if not os.path.isdir(home):
        raise RegistryError(
            "home",
            "{home}: %s is not a directory; give the home of the user whose docker and containers credentials to set",
            home,
        )
    st = os.stat(home)
    return home, (st.st_uid, st.st_gid)


def _our_dockerd(engine, want, result):
    """engine, when it is a dockerd that reads our daemon.json; None when it
    reads another file (a warning says so).

    Raises RegistryError, before anything changes, for a dockerd started with
    --registry-mirror that would find mirrors in the file too.
    """
    if engine and engine.mirror_flag and want:
        raise RegistryError(
            None,
            "dockerd (pid %d) was started with --registry-mirror: with registry-mirrors in "
            "%s as well it would refuse to start again. Remove the flag from its command line "
            "(or let it read its mirrors from the file) and run again. Nothing was changed.",
            engine.pid,
            docker.DAEMON_JSON,
        )
    if engine and engine.config_file != docker.DAEMON_JSON:
        result["warnings"].append(
            "dockerd (pid %d) reads %s, not %s: its mirrors were left as they were"
            % (engine.pid, engine.config_file, docker.DAEMON_JSON)
        )
        return None
    return engine


def _report(changes, result):
    """Each planned file in result, its diff (masked) when it changes."""
    outcomes = [c.outcome() for c in changes]
    result["files"] = [o.report() for o in outcomes]
    result["diff"] = [o.diff() for o in outcomes if o.changed]
    result["changed"] = any(o.changed for o in outcomes)


def _needs_reload(engine, daemon, want, result):
    """Whether engine must reload its mirrors: daemon.json changes, or it
    runs with others than want."""
    running = dockerd.running_mirrors(engine.socket) if engine and want else None
    reload = engine is not None and (daemon.changed or bool(want) and not dockerd.same(running, want))
    if daemon and daemon.changed and engine is None:
        result["dockerd"]["message"] = "no running dockerd reads %s: it takes the file when it starts" % (
            docker.DAEMON_JSON
        )
    return reload


def run(params, check_mode, result):
    """Bring the node to params["state"], filling result (the module's) as
    it goes.

    Raises RegistryError, before changing anything when the input or a
    file is bad.
    """
    present = params["state"] == "present"
    wanted = validate(params["registry"], params["namespaces"]) if present else None
    home, owner = _home(params.get("home"), present)
    state = records.load_state(read(STATE_FILE)[0], STATE_FILE)
    found = node.families()
    changes = plan(build_targets(wanted, found, home, owner, state) if present else [], state)
    daemon = next((c for c in changes if c.path == docker.DAEMON_JSON), None)
    want = docker.mirror_urls(wanted.mirrors) if daemon and daemon.target else None
    engine = dockerd.find() if daemon else None
    result.update(
        changed=False,
        state=params["state"],
        home=home,
        clients=found,
        state_file=STATE_FILE,
        dockerd={"pid": engine.pid if engine else None, "reloaded": False, "mirrors": None},
        warnings=[],
    )
    engine = _our_dockerd(engine, want, result)
    _report(changes, result)
    reload = _needs_reload(engine, daemon, want, result)
    if check_mode:
        result["dockerd"]["reloaded"] = reload
        result["changed"] |= reload
        return
    apply(changes, state, engine, result)
    if reload:
        _reload(engine, want or docker.mirrors_in(daemon.new), result)
        result["changed"] = True
