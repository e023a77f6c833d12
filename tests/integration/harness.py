"""What the integration tests run things with, each in one place: a
command (run(), docker(), an engine's CLI), a block of free ports, a
stand-in upstream, a playbook, and Registry, one instance of the role
under test. conftest.py makes fixtures of them.

Each test gets its own root, ports and container names (prefix `it_`), so
tests never meet each other or a registry a user runs here.
"""

import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid

import yaml

from ansible.module_utils.buildset_registry.common.layout import layout  # (tests/conftest.py)

ROLE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROLE_DIR, "scripts")
BIN = os.path.dirname(sys.executable)

# --- commands -------------------------------------------------------------------


def run(cmd, *, timeout=120, check=False, text=True, input=None, env=None, cwd=None):
    """Run cmd with its output captured; the CompletedProcess, with .output
    (stdout then stderr). Raises (CalledProcessError) only with check."""
    proc = subprocess.run(
        cmd, capture_output=True, text=text, timeout=timeout, check=check, input=input, env=env, cwd=cwd
    )
    proc.output = proc.stdout + proc.stderr
    return proc


def docker(*args, timeout=180, **kw):
    """The docker CLI with the caller's environment; raises only with check=True."""
    return run(["docker", *args], timeout=timeout, **kw)


PODMAN_SOCKET = "unix:///run/buildset-podman/podman.sock"
# name -> the engine's API socket (buildset_registry_docker_host) and its CLI.
ENGINES = {
    "docker": {"name": "docker", "docker_host": "unix:///var/run/docker.sock", "cli": "docker"},
    "podman": {"name": "podman", "docker_host": PODMAN_SOCKET, "cli": "podman"},
}
# Podman 4.3: `podman rm -f` races with restart=always restarts (see
# scripts/podman-service); retry until the container is gone.
REMOVE_ATTEMPTS = 30


def engine_cli(engine, *args, timeout=None, **kw):
    """The engine's CLI (docker or podman); raises only with check=True."""
    return run([engine["cli"], *args], timeout=timeout, **kw)


def engine_container_id(engine, name):
    """The ID of the engine's container name, or None."""
    out = engine_cli(engine, "inspect", "--type", "container", "-f", "{{.Id}}", name)
    return out.stdout.strip() if out.returncode == 0 else None


def engine_remove(engine, *names):
    """Remove the engine's containers names (and their anonymous volumes);
    with Podman, retried until they are really gone."""
    if engine["cli"] == "docker":
        docker("rm", "-f", *names)
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


# --- ports ----------------------------------------------------------------------


def in_use(port, udp=False):
    """Whether something holds port on any address (TCP; with udp, UDP too)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,):
        with socket.socket(socket.AF_INET6, kind) as sock:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            try:
                sock.bind(("::", port))
            except OSError:
                return True
    return False


class Ports:
    """Hands out blocks of `size` consecutive free ports whose first ports
    are `starts`, in turn and going round, so that a block comes back only
    after all the others were tried. With random_start the turn begins at
    a random block: other runs of the suite may share the machine."""

    def __init__(self, starts, size=2, udp=False, random_start=True):
        starts = list(starts)
        self.span = "%d-%d" % (min(starts), max(starts) + size - 1)
        self.count, self.size, self.udp = len(starts), size, udp
        skip = random.randrange(self.count) if random_start else 0
        self._next = itertools.islice(itertools.cycle(starts), skip, None)

    def take(self):
        """The first port of the next block in which nothing listens."""
        for _ in range(self.count):
            start = next(self._next)
            if not any(in_use(port, self.udp) for port in range(start, start + self.size)):
                return start
        raise AssertionError("no block of %d free ports left in %s" % (self.size, self.span))


# Pairs (port, push_port) from 17010 up to 17999 for registries and upstreams.
PAIRS = Ports(range(17010, 17998, 2))


def allocate_port():
    """The first of two free ports that no other fixture of this run hands out."""
    return PAIRS.take()


# --- stand-in upstreams ---------------------------------------------------------


def start_upstream(name, port, *images):
    """Start (or keep, when it runs) container name, a stand-in upstream on
    loopback's port seeded with images (scripts/stand-in-upstream)."""
    run([os.path.join(SCRIPTS, "stand-in-upstream"), name, str(port), *images], check=True, timeout=None)
    return {"name": name, "url": f"http://127.0.0.1:{port}", "port": port, "images": list(images)}


# --- playbooks ------------------------------------------------------------------


def save_task(name, expression, dest, **more):
    """A task writing the JSON of a Jinja expression to dest (0600), for the test to read."""
    content = "{{ %s | to_json }}" % expression
    return {"name": name, "ansible.builtin.copy": {"content": content, "dest": str(dest), "mode": "0600"}, **more}


# Another ansible-core or target Python (the support matrix), for one play
# (play()'s env) or a whole run (the environment): the directory of the
# ansible-playbook to run, and the target's Python (default: the playbook's).
ANSIBLE_BIN_ENV = "BUILDSET_REGISTRY_ANSIBLE_BIN"
TARGET_PYTHON_ENV = "BUILDSET_REGISTRY_TARGET_PYTHON"


def play(directory, tasks, variables, verbosity=0, check=False, diff=False, env=None, timeout=None):
    """Run tasks on localhost with the playbook's own Python and the given
    variables (a file of its own in directory, removed afterwards: it may
    hold secrets); the CompletedProcess, with .output. ANSIBLE_BIN_ENV and
    TARGET_PYTHON_ENV, in env or the environment, run another ansible-core
    or target Python."""
    run_id = uuid.uuid4().hex[:6]
    full_env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", **(env or {})}
    playbook, varfile = directory / f"playbook-{run_id}.yml", directory / f"vars-{run_id}.json"
    header = {"hosts": "localhost", "gather_facts": False}
    python = full_env.get(TARGET_PYTHON_ENV) or "{{ ansible_playbook_python }}"
    header["vars"] = {"ansible_python_interpreter": python}
    playbook.write_text(yaml.safe_dump([dict(header, tasks=tasks)], sort_keys=False, width=1000))
    varfile.write_text(json.dumps(variables))
    ansible_bin = full_env.get(ANSIBLE_BIN_ENV) or BIN
    cmd = [os.path.join(ansible_bin, "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"@{varfile}"]
    cmd += [str(playbook)]
    cmd += ["-" + "v" * verbosity] if verbosity else []
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    try:
        return run(cmd, env=full_env, cwd=directory, timeout=timeout)
    finally:
        varfile.unlink()


def read_json(path):
    """The JSON in path, or None when the play did not write it."""
    return json.loads(path.read_text()) if path.exists() else None


# --- the role under test --------------------------------------------------------


class Registry:
    """One instance of the role under test: its variables and how to apply it.
    engine None: Docker's engine, the role's default (no
    buildset_registry_docker_host given)."""

    def __init__(self, tmp_path, upstream_url, engine=None, prefix="it"):
        tag = uuid.uuid4().hex[:6]
        port = allocate_port()
        self.tmp_path = tmp_path
        self.vars = {
            "buildset_registry_root": str(tmp_path / "root"),
            "buildset_registry_host": "localhost",
            "buildset_registry_port": port,
            "buildset_registry_push_port": port + 1,
            "buildset_registry_proxy_container": f"{prefix}_proxy_{tag}",
            "buildset_registry_push_container": f"{prefix}_push_{tag}",
            "buildset_registry_front_container": f"{prefix}_front_{tag}",
            "buildset_registry_proxy_remote_url": upstream_url,
            # docker.io cached from upstream_url, quay.io pushed images only:
            # no test reaches for the real quay.io and others (tests of
            # namespaces set their own).
            "buildset_registry_namespaces": ["docker.io", "quay.io"],
        }
        self.engine = engine or ENGINES["docker"]
        if engine is not None:
            self.vars["buildset_registry_docker_host"] = engine["docker_host"]
        self.paths = layout(self.vars["buildset_registry_root"])

    @property
    def containers(self):
        """Its containers' names: the three, and any other namespace's
        proxy (named after docker.io's) the engine holds."""
        proxy = self.vars["buildset_registry_proxy_container"]
        listed = engine_cli(self.engine, "ps", "-a", "--format", "{{.Names}}").stdout.split()
        return [
            self.vars["buildset_registry_push_container"],
            proxy,
            *sorted(name for name in listed if name.startswith(proxy + "-")),
            self.vars["buildset_registry_front_container"],
        ]

    def apply(self, extra_vars=None, verbosity=0, env=None, check=False, diff=False, role_dir=ROLE_DIR):
        """Run the role (the one under test, or another version of it at
        role_dir) in a playbook; return (CompletedProcess, facts or None)."""
        run_id = uuid.uuid4().hex[:6]
        facts_file = self.tmp_path / f"facts-{run_id}.json"
        result_file = self.tmp_path / f"result-{run_id}.json"
        # The module's result (what each part did, for role_changed()), secrets left out.
        result = (
            "__buildset_registry_result | dict2items | rejectattr('key', 'in', ['buildset_registry', 'invocation'])"
            " | items2dict"
        )
        tasks = [
            {"name": "Apply the role under test", "ansible.builtin.include_role": {"name": str(role_dir)}},
            # ansible_facts: the fact also when facts are not injected as
            # variables; the variable: what set_fact gave (the role before
            # its module set the fact, in the upgrade tests).
            save_task("Write the returned facts for the test",
                      "ansible_facts.buildset_registry | default(buildset_registry)", facts_file, no_log=True,
                      when="ansible_facts.buildset_registry is defined or buildset_registry is defined"),
            save_task("Write what the role's module did, secrets left out, for the test", result, result_file,
                      when="__buildset_registry_result is defined"),
        ]  # fmt: skip
        variables = {**self.vars, **(extra_vars or {})}
        proc = play(self.tmp_path, tasks, variables, verbosity=verbosity, check=check, diff=diff, env=env)
        proc.result = read_json(result_file)
        return proc, read_json(facts_file)

    def apply_ok(self, extra_vars=None, **kw):
        """Apply and fail the test unless the play succeeded; return (proc, facts)."""
        proc, facts = self.apply(extra_vars, **kw)
        assert proc.returncode == 0, proc.output[-4000:]
        assert facts, proc.output[-4000:]
        return proc, facts

    def container_ids(self):
        """Container name -> ID of those of our three containers that exist."""
        ids = {name: engine_container_id(self.engine, name) for name in self.containers}
        return {name: found for name, found in ids.items() if found}

    def remove(self):
        engine_remove(self.engine, *self.containers)
