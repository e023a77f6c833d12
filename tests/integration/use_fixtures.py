"""Fixtures for the use entry point's integration tests: a registry of
their own (separate storage, its own stand-in upstream), the machine's
configuration snapshotted and put back after each test, and a guard that
keeps every fallback to Docker Hub or quay.io on loopback.

Everything started here uses ports 18500-18999 and names use_*.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROLE_DIR, SCRIPTS, Registry, ansible_playbook, docker, listened

HOME = Path(os.path.expanduser("~"))
DAEMON_JSON = Path("/etc/docker/daemon.json")
HOSTS = Path("/etc/hosts")
STATE_FILE = Path("/var/lib/buildset-registry/use-state.json")
NAMESPACES = ["docker.io", "quay.io"]
# Names a client falls back to when no mirror has an image: kept on
# loopback (port 443, where nothing listens), never sent to the resolver.
GUARDED = [
    "registry-1.docker.io",
    "index.docker.io",
    "auth.docker.io",
    "docker.io",
    "production.cloudflare.docker.com",
    "quay.io",
    "cdn.quay.io",
]
GUARD_LINE = b"127.0.0.1 %s  # use-test-guard\n" % " ".join(GUARDED).encode()
CTR = ["ctr", "--address", "/run/docker/containerd/containerd.sock", "--namespace", "use_test"]
_PORTS = list(range(18500, 18998, 2))
random.shuffle(_PORTS)


def free_pair():
    """The first of two free ports in 18500-18999."""
    while _PORTS:
        port = _PORTS.pop()
        if not listened(port) and not listened(port + 1):
            return port
    raise AssertionError("no free pair of ports left in 18500-18999")


def write_in_place(path, data):
    """/etc/hosts may be a bind mount: never replace it, rewrite it."""
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()


# --- the machine's configuration ------------------------------------------------


def watched_paths(facts_list, namespaces=NAMESPACES):
    """Every file and directory the use entry point may touch for these facts."""
    paths = [
        DAEMON_JSON,
        HOSTS,
        STATE_FILE,
        STATE_FILE.parent,
        HOME / ".docker",
        HOME / ".docker" / "config.json",
        HOME / ".config",
        HOME / ".config" / "containers",
        HOME / ".config" / "containers" / "auth.json",
        Path("/etc/containers/registries.conf.d/90-buildset-registry.conf"),
    ]
    for family in ("docker", "containers", "containerd"):
        certs_d = Path("/etc/%s/certs.d" % family)
        paths.append(certs_d)
        for facts in facts_list:
            for endpoint in {
                "%s:%s" % (facts["host"], facts["port"]),
                "%s:%s" % (facts["push_host"], facts["push_port"]),
            }:
                paths += [certs_d / endpoint, certs_d / endpoint / "ca.crt", certs_d / endpoint / "hosts.toml"]
    for ns in namespaces:
        paths += [Path("/etc/containerd/certs.d") / ns, Path("/etc/containerd/certs.d") / ns / "hosts.toml"]
    return list(dict.fromkeys(paths))


def _capture(path):
    if path.is_dir():
        return ("dir", None, None)
    if path.exists():
        return ("file", path.read_bytes(), path.stat().st_mode & 0o7777)
    return (None, None, None)


class Snapshot:
    """Bytes, modes and existence of paths, and dockerd's mirrors."""

    def __init__(self, paths):
        self.saved = {p: _capture(p) for p in paths}
        self.mirrors = running_mirrors()
        assert self.mirrors is not None, "docker info failed: dockerd's mirrors can be neither saved nor put back"

    def differences(self):
        """Paths that are not as they were (bytes, mode or existence)."""
        return [str(p) for p, was in self.saved.items() if _capture(p) != was]

    def restore(self):
        files = [(p, was) for p, was in self.saved.items() if was[0] == "file"]
        # Directories first (outermost first), then the files in them.
        for p, was in sorted(self.saved.items(), key=lambda item: len(str(item[0]))):
            if was[0] == "dir":
                p.mkdir(parents=True, exist_ok=True)
        for p, (_, data, mode) in files:
            if _capture(p) != ("file", data, mode):
                if p == HOSTS:
                    write_in_place(p, data)
                else:
                    p.write_bytes(data)
                os.chmod(p, mode)
        for p, was in self.saved.items():
            if was[0] is None and p.is_file():
                p.unlink()
        for p, was in sorted(self.saved.items(), key=lambda item: -len(str(item[0]))):
            if was[0] is None and p.is_dir():
                try:
                    p.rmdir()
                except OSError:  # someone else's files in it now
                    pass
        reload_dockerd(self.mirrors)


def running_mirrors():
    out = subprocess.run(["docker", "info", "-f", "{{json .RegistryConfig.Mirrors}}"], capture_output=True, text=True)
    return [m.rstrip("/") for m in json.loads(out.stdout or "null") or []] if out.returncode == 0 else None


def reload_dockerd(mirrors):
    """Make dockerd run with mirrors again, leaving daemon.json as it is:
    a key missing from the file leaves the running value unchanged, so
    the wanted list goes in for the reload. Fails when dockerd does not
    run with them afterwards."""
    if running_mirrors() == mirrors:
        return
    pid = int(Path("/var/run/docker.pid").read_text())
    data = DAEMON_JSON.read_bytes() if DAEMON_JSON.exists() else None
    config = json.loads(data) if data else {}
    if "registry-mirrors" not in config:
        DAEMON_JSON.write_text(json.dumps(dict(config, **{"registry-mirrors": mirrors})))
    try:
        os.kill(pid, signal.SIGHUP)
        for _ in range(250):
            if running_mirrors() == mirrors:
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"dockerd runs with mirrors {running_mirrors()} after SIGHUP, not {mirrors}")
    finally:
        if data is None:
            DAEMON_JSON.unlink(missing_ok=True)
        else:
            DAEMON_JSON.write_bytes(data)


@pytest.fixture(scope="session")
def hub_guard():
    """Point Docker Hub's and quay.io's names at loopback for the session."""
    before = HOSTS.read_bytes()
    if GUARD_LINE not in before:
        write_in_place(HOSTS, before + (b"" if before.endswith(b"\n") or not before else b"\n") + GUARD_LINE)
    yield
    now = HOSTS.read_bytes()
    if GUARD_LINE in now:
        write_in_place(HOSTS, now.replace(GUARD_LINE, b"", 1))


@pytest.fixture
def snapshot(hub_guard):
    """Factory: snapshot what use may touch for the given facts; every
    snapshot is put back after the test, failed or not."""
    taken = []

    def take(*facts_list, namespaces=NAMESPACES):
        snap = Snapshot(watched_paths(facts_list, namespaces))
        taken.append(snap)
        return snap

    yield take
    errors = []
    for snap in reversed(taken):
        try:
            snap.restore()
        except Exception as e:  # put every snapshot back, then fail
            errors.append(e)
    if errors:
        raise errors[0]


# --- a registry of our own ------------------------------------------------------


def start_upstream(*images):
    name = "use_upstream_%s" % uuid.uuid4().hex[:6]
    port = free_pair()
    subprocess.run(
        [os.path.join(SCRIPTS, "stand-in-upstream"), name, str(port), *images],
        check=True,
        capture_output=True,
        text=True,
    )
    return {"name": name, "url": "http://127.0.0.1:%d" % port, "port": port}


def make_use_registry(tmp_path, upstream_url, **extra):
    reg = Registry(tmp_path, upstream_url)
    port, tag = free_pair(), uuid.uuid4().hex[:6]
    reg.vars.update(
        {
            "buildset_registry_port": port,
            "buildset_registry_push_port": port + 1,
            "buildset_registry_proxy_container": "use_proxy_%s" % tag,
            "buildset_registry_push_container": "use_push_%s" % tag,
            "buildset_registry_front_container": "use_front_%s" % tag,
            **extra,
        }
    )
    return reg


# --- applying the use entry point -----------------------------------------------


def apply_use(tmp_path, facts, namespaces=NAMESPACES, check=False, diff=False, extra_vars=None, omit_fact=False):
    """Run the role's use entry point; the CompletedProcess has .output and
    .result (the module's result; it masks every credential)."""
    run_id = uuid.uuid4().hex[:6]
    result_file = tmp_path / ("use-result-%s.json" % run_id)
    playbook = tmp_path / ("use-%s.yml" % run_id)
    playbook.write_text(
        textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          vars:
            ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
          tasks:
            - name: Use the buildset registry
              ansible.builtin.include_role:
                name: {ROLE_DIR}
                tasks_from: use
            - name: Write what the use module did, for the test
              ansible.builtin.copy:
                content: "{{{{ __buildset_registry_use_result | to_json }}}}"
                dest: {result_file}
                mode: "0600"
              no_log: true
              changed_when: false
              when: __buildset_registry_use_result is defined
        """)
    )
    variables = {"buildset_registry_namespaces": namespaces, **(extra_vars or {})}
    if not omit_fact:
        variables["buildset_registry"] = facts
    varfile = tmp_path / ("use-vars-%s.json" % run_id)
    varfile.write_text(json.dumps(variables))
    proc = ansible_playbook(playbook, varfile, tmp_path, check=check, diff=diff, timeout=300)
    proc.result = json.loads(result_file.read_text()) if result_file.exists() else None
    varfile.unlink()
    return proc


def apply_use_ok(tmp_path, facts, **kw):
    proc = apply_use(tmp_path, facts, **kw)
    assert proc.returncode == 0, proc.output[-4000:]
    return proc


# --- clients ----------------------------------------------------------------------


def docker_pull_digest(ref):
    """Pull ref afresh with the docker CLI (the user's config); return its repo digest."""
    docker("rmi", "-f", ref, check=False)
    proc = docker("pull", ref, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    digests = json.loads(docker("image", "inspect", "-f", "{{json .RepoDigests}}", ref).stdout)
    docker("rmi", "-f", ref, check=False)
    return [d.split("@", 1)[1] for d in digests if _short(d.split("@", 1)[0]) == _short(ref.rsplit(":", 1)[0])]


def _short(repo):
    """docker's short form of a docker.io repository (docker.io/library/x -> x)."""
    for prefix in ("docker.io/", "library/"):
        repo = repo[len(prefix) :] if repo.startswith(prefix) else repo
    return repo


def ctr(*args, timeout=120):
    proc = subprocess.run([*CTR, *args], capture_output=True, text=True, timeout=timeout)
    proc.output = proc.stdout + proc.stderr
    return proc


def ctr_pull_digest(ref):
    """Pull ref with ctr and the hosts directory use wrote; return its digest."""
    ctr("image", "rm", ref)
    proc = ctr("image", "pull", "--hosts-dir", "/etc/containerd/certs.d", ref)
    assert proc.returncode == 0, proc.output
    for line in ctr("image", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == ref:
            return fields[2]
    raise AssertionError("ctr did not list %s" % ref)


def ctr_cleanup():
    for line in ctr("image", "ls", "-q").stdout.split():
        ctr("image", "rm", "--sync", line)
    ctr("content", "prune", "references")
    subprocess.run(
        ["ctr", "--address", "/run/docker/containerd/containerd.sock", "namespaces", "rm", "use_test"],
        capture_output=True,
    )


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
