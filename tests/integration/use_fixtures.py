"""Fixtures for the use entry point's integration tests: a registry of
their own (separate storage, its own stand-in upstream), the machine's
configuration snapshotted and put back after each test, and a guard that
keeps every fallback to Docker Hub, quay.io, gcr.io, registry.k8s.io or
ghcr.io on loopback. A plugin of
tests/integration (conftest.py's PLUGINS): tests take its fixtures
by name and import its functions.

Every container started here is named use_*.
"""

import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import pytest
from clients import Ctr
from harness import ROLE_DIR, Registry, allocate_port, docker, play, read_json, save_task, start_upstream

HOME = Path(os.path.expanduser("~"))
DAEMON_JSON = Path("/etc/docker/daemon.json")
HOSTS = Path("/etc/hosts")
STATE_FILE = Path("/var/lib/buildset-registry/use-state.json")
BUILDKIT = Path("/etc/buildkit")
BUILDKITD_TOML = BUILDKIT / "buildkitd.toml"
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
    "gcr.io",
    "registry.k8s.io",
    "us-west1-docker.pkg.dev",
    "ghcr.io",
    "pkg-containers.githubusercontent.com",
]
GUARD_LINE = b"127.0.0.1 %s  # use-test-guard\n" % " ".join(GUARDED).encode()
# ctr in a namespace of these tests' own.
ctr = Ctr("use_test")


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
        BUILDKIT,
        BUILDKITD_TOML,
    ]
    for family in ("docker", "containers", "containerd", "buildkit"):
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
    out = docker("info", "-f", "{{json .RegistryConfig.Mirrors}}")
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


def use_upstream(*images):
    """A stand-in upstream of these tests' own, seeded with images."""
    return start_upstream("use_upstream_%s" % uuid.uuid4().hex[:6], allocate_port(), *images)


def make_use_registry(tmp_path, upstream_url, **extra):
    reg = Registry(tmp_path, upstream_url, prefix="use")
    reg.vars.update(extra)
    return reg


# --- applying the use entry point -----------------------------------------------


def apply_use(tmp_path, facts, namespaces=NAMESPACES, check=False, diff=False, extra_vars=None, omit_fact=False):
    """Run the role's use entry point; the CompletedProcess has .output and
    .result (the module's result; it masks every credential)."""
    result_file = tmp_path / ("use-result-%s.json" % uuid.uuid4().hex[:6])
    tasks = [
        {"name": "Use the buildset registry",
         "ansible.builtin.include_role": {"name": ROLE_DIR, "tasks_from": "use"}},
        save_task("Write what the use module did, for the test", "__buildset_registry_use_result", result_file,
                  no_log=True, changed_when=False, when="__buildset_registry_use_result is defined"),
    ]  # fmt: skip
    variables = {"buildset_registry_namespaces": namespaces, **(extra_vars or {})}
    if not omit_fact:
        variables["buildset_registry"] = facts
    proc = play(tmp_path, tasks, variables, check=check, diff=diff, timeout=300)
    proc.result = read_json(result_file)
    return proc


def apply_use_ok(tmp_path, facts, **kw):
    proc = apply_use(tmp_path, facts, **kw)
    assert proc.returncode == 0, proc.output[-4000:]
    return proc


# --- clients ----------------------------------------------------------------------


def docker_pull_digest(ref):
    """Pull ref afresh with the docker CLI (the user's config); return its repo digest."""
    docker("rmi", "-f", ref)
    proc = docker("pull", ref)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    digests = json.loads(docker("image", "inspect", "-f", "{{json .RepoDigests}}", ref, check=True).stdout)
    docker("rmi", "-f", ref)
    return [d.split("@", 1)[1] for d in digests if _short(d.split("@", 1)[0]) == _short(ref.rsplit(":", 1)[0])]


def _short(repo):
    """docker's short form of a docker.io repository (docker.io/library/x -> x)."""
    for prefix in ("docker.io/", "library/"):
        repo = repo[len(prefix) :] if repo.startswith(prefix) else repo
    return repo


def ctr_pull_digest(ref):
    """Pull ref with ctr and the hosts directory use wrote; return its digest."""
    ctr("image", "rm", ref)
    proc = ctr("image", "pull", "--hosts-dir", "/etc/containerd/certs.d", ref)
    assert proc.returncode == 0, proc.output
    digest = ctr.digest(ref)
    assert digest, "ctr did not list %s" % ref
    return digest


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
