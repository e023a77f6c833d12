"""Fixtures for tests that apply the role with ansible-playbook against
the real Docker engine and real registry:2 containers; what they are made
of (commands, ports, playbooks, Registry) is in harness.py. The fixtures of
the use entry point's tests and the object store are plugins (PLUGINS), so
a test takes any of them by name.

Engines: the fixtures `registry`, `make_registry` and `shared_registry` run
the role against Docker's engine (the role's default). `any_engine` is
parametrized over Docker and Podman (a Podman service started by
scripts/podman-service), and `engine_registry` is a registry run by that
engine (`buildset_registry_docker_host` set to the engine's socket).
"""

import os
import shutil
import uuid

import pytest
from harness import ENGINES, SCRIPTS, Registry, allocate_port, docker, run, start_upstream

# Modules whose fixtures every test here takes by name. pytest_plugins would
# say the same, but pytest takes it from the top conftest only, and a run of
# `pytest tests` (unit and integration at once) loads this one late.
PLUGINS = ("object_store", "use_fixtures")

# The stand-in for Docker Hub every registry of the session may share.
UPSTREAM_NAME, UPSTREAM_PORT, UPSTREAM_IMAGES = "it_upstream", 17000, ["library/upstream-only:1"]


def pytest_configure(config):
    for name in PLUGINS:
        config.pluginmanager.import_plugin(name)
    config.addinivalue_line(
        "markers", "engine_restart: restarts the Docker engine itself (disturbs every container on the host)"
    )


@pytest.fixture
def unused_port():
    """A port of the suite's range that nothing listens on."""
    return allocate_port()


@pytest.fixture(scope="session")
def private_upstream():
    """Factory: a stand-in upstream of one's own (container it_upstream_*), removed at the end."""
    started = []

    def start(*images):
        upstream = start_upstream(f"it_upstream_{uuid.uuid4().hex[:6]}", allocate_port(), *images)
        started.append(upstream["name"])
        return upstream

    yield start
    for name in started:
        docker("rm", "-f", name)


@pytest.fixture(scope="session")
def upstream():
    """A stand-in for Docker Hub on loopback, seeded with one image."""
    # Another run of the suite may be using it: keep one we did not start.
    ours = docker("inspect", UPSTREAM_NAME).returncode != 0

    def ensure():
        """Start (or keep) the stand-in upstream; cheap when it runs."""
        return start_upstream(UPSTREAM_NAME, UPSTREAM_PORT, *UPSTREAM_IMAGES)

    yield dict(ensure(), ensure=ensure)
    if ours:
        docker("rm", "-f", UPSTREAM_NAME)


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
            proc = run(cmd, timeout=None)
            assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.output}"
        return engine


@pytest.fixture(scope="session")
def engines():
    return _Engines()


@pytest.fixture(params=list(ENGINES))
def any_engine(request, engines):
    """Each engine in turn: {"name", "docker_host", "cli"}."""
    return engines.get(request.param)


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
