"""Shared fixtures for tests that apply the role with ansible-playbook
against the real Docker engine and real registry:2 containers.

Each test gets its own root, ports and container names (prefix `it_`), so
tests never meet each other or a registry a user runs here.
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid

import pytest

ROLE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROLE_DIR, "scripts")
BIN = os.path.dirname(sys.executable)
UPSTREAM_PORT = 17000
UPSTREAM_IMAGES = ["library/upstream-only:1"]
_ports = itertools.count(17010, 2)

sys.path.insert(0, os.path.join(ROLE_DIR, "module_utils"))
from buildset_registry_layout import layout  # noqa: E402


def docker(*args, check=True, **kw):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, **kw)


@pytest.fixture(scope="session")
def upstream():
    """A stand-in for Docker Hub on loopback, seeded with one image."""
    name = "it_upstream"
    subprocess.run(
        [os.path.join(SCRIPTS, "stand-in-upstream"), name, str(UPSTREAM_PORT), *UPSTREAM_IMAGES],
        check=True,
    )
    yield {"name": name, "url": f"http://127.0.0.1:{UPSTREAM_PORT}", "port": UPSTREAM_PORT,
           "images": UPSTREAM_IMAGES}
    docker("rm", "-f", name, check=False)


class Registry:
    """One instance of the role under test: its variables and how to apply it."""

    def __init__(self, tmp_path, upstream_url):
        tag = uuid.uuid4().hex[:6]
        port = next(_ports)
        self.tmp_path = tmp_path
        self.vars = {
            "buildset_registry_root": str(tmp_path / "root"),
            "buildset_registry_host": "localhost",
            "buildset_registry_port": port,
            "buildset_registry_push_port": port + 1,
            "buildset_registry_proxy_container": f"it_proxy_{tag}",
            "buildset_registry_push_container": f"it_push_{tag}",
            "buildset_registry_proxy_remote_url": upstream_url,
        }
        self.paths = layout(self.vars["buildset_registry_root"])

    @property
    def containers(self):
        return [self.vars["buildset_registry_proxy_container"], self.vars["buildset_registry_push_container"]]

    def apply(self, extra_vars=None, verbosity=0, env=None, check=False, tasks_after=""):
        """Run the role in a playbook; return (CompletedProcess, facts or None)."""
        merged = {**self.vars, **(extra_vars or {})}
        facts_file = self.tmp_path / f"facts-{uuid.uuid4().hex[:6]}.json"
        playbook = self.tmp_path / "playbook.yml"
        playbook.write_text(textwrap.dedent(f"""\
            - hosts: localhost
              gather_facts: false
              vars:
                ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
              tasks:
                - name: Apply the role under test
                  ansible.builtin.include_role:
                    name: {ROLE_DIR}
                - name: Write the returned facts for the test
                  ansible.builtin.copy:
                    content: "{{{{ buildset_registry | to_json }}}}"
                    dest: {facts_file}
                    mode: "0600"
                  no_log: true
                  when: buildset_registry is defined
            """) + tasks_after)
        varfile = self.tmp_path / "vars.json"
        varfile.write_text(json.dumps(merged))
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", f"@{varfile}", str(playbook)]
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if check:
            cmd.append("--check")
        full_env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", **(env or {})}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=self.tmp_path)
        proc.output = proc.stdout + proc.stderr
        facts = json.loads(facts_file.read_text()) if facts_file.exists() else None
        return proc, facts

    def remove(self):
        docker("rm", "-f", *self.containers, check=False)


@pytest.fixture
def registry(tmp_path, upstream):
    reg = Registry(tmp_path, upstream["url"])
    yield reg
    reg.remove()
    shutil.rmtree(tmp_path / "root", ignore_errors=True)
