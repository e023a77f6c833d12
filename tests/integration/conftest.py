"""Shared fixtures for tests that apply the role with ansible-playbook
against the real Docker engine and real registry:2 containers.

Each test gets its own root, ports and container names (prefix `it_`), so
tests never meet each other or a registry a user runs here.

Engines: the fixtures `registry`, `make_registry` and `shared_registry` run
the role against Docker's engine (the role's default). `any_engine` is
parametrized over Docker and Podman (a Podman service started by
scripts/podman-service), and `engine_registry` is a registry run by that
engine (`buildset_registry_docker_host` set to the engine's socket).
"""

import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

ROLE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROLE_DIR, "scripts")
BIN = os.path.dirname(sys.executable)
UPSTREAM_PORT = 17000
UPSTREAM_IMAGES = ["library/upstream-only:1"]
# Pairs of ports from 17010 up to 17999, from a random start: other runs of
# this suite may share the engine, and each skips ports found in use.
_PORT_PAIRS = range(17010, 17998, 2)
_ports = itertools.islice(itertools.cycle(_PORT_PAIRS), random.randrange(len(_PORT_PAIRS)), None)

from ansible.module_utils.buildset_registry.common.layout import layout  # noqa: E402  (tests/conftest.py)

PODMAN_SOCKET = "unix:///run/buildset-podman/podman.sock"
# name -> the engine's API socket (buildset_registry_docker_host) and its CLI.
ENGINES = {
    "docker": {"name": "docker", "docker_host": "unix:///var/run/docker.sock", "cli": "docker"},
    "podman": {"name": "podman", "docker_host": PODMAN_SOCKET, "cli": "podman"},
}
# Podman 4.3: `podman rm -f` races with restart=always restarts (see
# scripts/podman-service); retry until the container is gone.
REMOVE_ATTEMPTS = 30


def docker(*args, check=True, **kw):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, **kw)


def engine_cli(engine, *args, check=False, **kw):
    """The engine's CLI (docker or podman); never raises unless check."""
    proc = subprocess.run([engine["cli"], *args], check=check, capture_output=True, text=True, **kw)
    proc.output = proc.stdout + proc.stderr
    return proc


def engine_container_id(engine, name):
    """The ID of the engine's container name, or None."""
    out = engine_cli(engine, "inspect", "--type", "container", "-f", "{{.Id}}", name)
    return out.stdout.strip() if out.returncode == 0 else None


def engine_remove(engine, *names):
    """Remove the engine's containers names (and their anonymous volumes);
    with Podman, retried until they are really gone."""
    if engine["cli"] == "docker":
        docker("rm", "-f", *names, check=False)
        return
    left = list(names)
    for _ in range(REMOVE_ATTEMPTS):
        engine_cli(engine, "rm", "-f", "-v", *left)
        left = [name for name in left if engine_container_id(engine, name)]
        if not left:
            return
        time.sleep(0.5)
    # A name may stay taken in podman's storage (see /work/shared/MACHINE.md).
    engine_cli(engine, "rm", "--storage", *left)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "engine_restart: restarts the Docker engine itself (disturbs every container on the host)"
    )


def listened(port):
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.bind(("::", port))
        except OSError:
            return True
    return False


def allocate_port():
    """The first of two free ports of this suite's range (17010-17999) that no
    other fixture of this run hands out."""
    for _ in _PORT_PAIRS:
        port = next(_ports)
        if not listened(port) and not listened(port + 1):
            return port
    raise AssertionError("no free pair of ports left in 17010-17999")


@pytest.fixture
def unused_port():
    """A port of the suite's range that nothing listens on."""
    return allocate_port()


@pytest.fixture(scope="session")
def private_upstream():
    """Factory: a stand-in upstream of one's own (container it_upstream_*), removed at the end."""
    started = []

    def start(*images):
        name = f"it_upstream_{uuid.uuid4().hex[:6]}"
        port = allocate_port()
        started.append(name)
        subprocess.run(
            [os.path.join(SCRIPTS, "stand-in-upstream"), name, str(port), *images],
            check=True,
            capture_output=True,
            text=True,
        )
        return {"name": name, "url": f"http://127.0.0.1:{port}", "port": port, "images": list(images)}

    yield start
    for name in started:
        docker("rm", "-f", name, check=False)


@pytest.fixture(scope="session")
def upstream():
    """A stand-in for Docker Hub on loopback, seeded with one image."""
    name = "it_upstream"
    # Another run of the suite may be using it: keep one we did not start.
    ours = docker("inspect", name, check=False).returncode != 0
    _ensure_upstream(name)
    yield {
        "name": name,
        "url": f"http://127.0.0.1:{UPSTREAM_PORT}",
        "port": UPSTREAM_PORT,
        "images": UPSTREAM_IMAGES,
        "ensure": lambda: _ensure_upstream(name),
    }
    if ours:
        docker("rm", "-f", name, check=False)


def _ensure_upstream(name):
    """Start (or keep) the stand-in upstream; cheap when it runs."""
    subprocess.run(
        [os.path.join(SCRIPTS, "stand-in-upstream"), name, str(UPSTREAM_PORT), *UPSTREAM_IMAGES],
        check=True,
        capture_output=True,
    )


class _Engines:
    """The engines the session has prepared: engines.get("podman") starts the
    Podman service and gives it the registry image on first use (skips the
    test when podman is not installed)."""

    def __init__(self):
        self.ready = {"docker": ENGINES["docker"]}

    def get(self, name):
        if name not in self.ready:
            self.ready[name] = self._prepare(ENGINES[name])
        return self.ready[name]

    @staticmethod
    def _prepare(engine):
        if shutil.which(engine["cli"]) is None:
            pytest.skip(f"{engine['cli']} is not installed (`scripts/podman-service install` installs it)")
        for cmd in (
            [os.path.join(SCRIPTS, "podman-service"), "start", engine["docker_host"]],
            [os.path.join(SCRIPTS, "provide-registry-image"), "--podman", engine["docker_host"]],
            [os.path.join(SCRIPTS, "provide-front-image"), "--podman", engine["docker_host"]],
        ):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}"
        return engine


@pytest.fixture(scope="session")
def engines():
    return _Engines()


@pytest.fixture(params=list(ENGINES))
def any_engine(request, engines):
    """Each engine in turn: {"name", "docker_host", "cli"}."""
    return engines.get(request.param)


def ansible_playbook(playbook, varfile, cwd, verbosity=0, check=False, diff=False, env=None, timeout=None):
    """Run a playbook on localhost with the variables in varfile; the
    CompletedProcess, with .output (stdout and stderr)."""
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"@{varfile}", str(playbook)]
    cmd += ["-" + "v" * verbosity] if verbosity else []
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    full_env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)
    proc.output = proc.stdout + proc.stderr
    return proc


class Registry:
    """One instance of the role under test: its variables and how to apply it.
    engine None: Docker's engine, the role's default (no
    buildset_registry_docker_host given)."""

    def __init__(self, tmp_path, upstream_url, engine=None):
        tag = uuid.uuid4().hex[:6]
        port = allocate_port()
        self.tmp_path = tmp_path
        self.vars = {
            "buildset_registry_root": str(tmp_path / "root"),
            "buildset_registry_host": "localhost",
            "buildset_registry_port": port,
            "buildset_registry_push_port": port + 1,
            "buildset_registry_proxy_container": f"it_proxy_{tag}",
            "buildset_registry_push_container": f"it_push_{tag}",
            "buildset_registry_front_container": f"it_front_{tag}",
            "buildset_registry_proxy_remote_url": upstream_url,
        }
        self.engine = engine or ENGINES["docker"]
        if engine is not None:
            self.vars["buildset_registry_docker_host"] = engine["docker_host"]
        self.paths = layout(self.vars["buildset_registry_root"])

    @property
    def containers(self):
        return [
            self.vars["buildset_registry_push_container"],
            self.vars["buildset_registry_proxy_container"],
            self.vars["buildset_registry_front_container"],
        ]

    def apply(self, extra_vars=None, verbosity=0, env=None, check=False, tasks_after="", diff=False, role_dir=ROLE_DIR):
        """Run the role (the one under test, or another version of it at
        role_dir) in a playbook; return (CompletedProcess, facts or None)."""
        merged = {**self.vars, **(extra_vars or {})}
        run_id = uuid.uuid4().hex[:6]
        facts_file = self.tmp_path / f"facts-{run_id}.json"
        result_file = self.tmp_path / f"result-{run_id}.json"
        playbook = self.tmp_path / "playbook.yml"
        playbook.write_text(
            textwrap.dedent(f"""\
            - hosts: localhost
              gather_facts: false
              vars:
                ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
              tasks:
                - name: Apply the role under test
                  ansible.builtin.include_role:
                    name: {role_dir}
                - name: Write the returned facts for the test
                  ansible.builtin.copy:
                    content: "{{{{ buildset_registry | to_json }}}}"
                    dest: {facts_file}
                    mode: "0600"
                  no_log: true
                  when: buildset_registry is defined
                - name: Write what the role's module did, secrets left out, for the test
                  ansible.builtin.copy:
                    content: "{{{{ __buildset_registry_result | dict2items
                                 | rejectattr('key', 'in', ['buildset_registry', 'invocation'])
                                 | items2dict | to_json }}}}"
                    dest: {result_file}
                    mode: "0600"
                  when: __buildset_registry_result is defined
            """)
            + tasks_after
        )
        varfile = self.tmp_path / "vars.json"
        varfile.write_text(json.dumps(merged))
        proc = ansible_playbook(playbook, varfile, self.tmp_path, verbosity=verbosity, check=check, diff=diff, env=env)
        facts = json.loads(facts_file.read_text()) if facts_file.exists() else None
        # The module's result (what each part did), for role_changed().
        proc.result = json.loads(result_file.read_text()) if result_file.exists() else None
        return proc, facts

    def apply_ok(self, extra_vars=None, **kw):
        """Apply and fail the test unless the play succeeded; return (proc, facts)."""
        proc, facts = self.apply(extra_vars, **kw)
        assert proc.returncode == 0, proc.output[-4000:]
        assert facts, proc.output[-4000:]
        return proc, facts

    def container_ids(self):
        """Container name -> ID of those of our three containers that exist."""
        ids = {}
        for name in self.containers:
            if self.engine["cli"] == "docker":
                out = docker("inspect", "-f", "{{.Id}}", name, check=False)
                found = out.stdout.strip() if out.returncode == 0 else None
            else:
                found = engine_container_id(self.engine, name)
            if found:
                ids[name] = found
        return ids

    def remove(self):
        engine_remove(self.engine, *self.containers)


@pytest.fixture
def registry(tmp_path, upstream):
    upstream["ensure"]()
    reg = Registry(tmp_path, upstream["url"])
    yield reg
    reg.remove()
    shutil.rmtree(tmp_path / "root", ignore_errors=True)


@pytest.fixture
def engine_registry(tmp_path, upstream, any_engine):
    """A registry run by any_engine (each engine in turn)."""
    upstream["ensure"]()
    reg = Registry(tmp_path, upstream["url"], engine=any_engine)
    yield reg
    reg.remove()
    shutil.rmtree(tmp_path / "root", ignore_errors=True)


@pytest.fixture(scope="session")
def make_registry(tmp_path_factory, upstream):
    """Factory for registries that outlive one test (module fixtures); all
    are removed at the end of the session."""
    made = []

    def make(name="reg"):
        reg = Registry(tmp_path_factory.mktemp(name), upstream["url"])
        made.append(reg)
        return reg

    yield make
    for reg in made:
        reg.remove()
        shutil.rmtree(reg.tmp_path / "root", ignore_errors=True)


@pytest.fixture(scope="session")
def shared_registry(make_registry):
    """One applied registry for the tests that only read from it or push
    unique names to it; reg.facts holds the returned facts."""
    reg = make_registry("shared")
    _, reg.facts = reg.apply_ok()
    return reg
