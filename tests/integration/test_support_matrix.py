"""The support matrix (README.rst, Support matrix): the role where Zuul runs
it. Zuul's executors' ansible-core (2.16, 2.18) beside the pinned one, and
target Pythons with a distribution's libraries: Debian 12's python3-docker,
python3-cryptography and python3-bcrypt from apt (nothing from pip), and
Ubuntu 22.04's versions in a virtualenv on Python 3.10. Each one applies
the role, re-runs it (changed=0), pushes and pulls through `port`, and
takes it down with state absent; with facts not injected as variables
(ANSIBLE_INJECT_FACT_VARS=False) as well.

The virtualenvs are requirements.txt's '#matrix' lines, made by
scripts/pip-install-requirements --matrix; Debian's libraries come from
scripts/setup-host. Containers are named matrix_*.
"""

import json
import os
import re
import uuid
from pathlib import Path

import pytest
from clients import Clients, container_exists, make_image, pulled_matches, role_changed
from harness import ANSIBLE_BIN_ENV, BIN, ROLE_DIR, TARGET_PYTHON_ENV, Registry, play, read_json, run, save_task

MATRIX_DIR = Path(ROLE_DIR) / ".venv-matrix"
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_LIBRARIES = "/usr/lib/python3/dist-packages"
LIBRARIES = ("docker", "cryptography", "bcrypt")


def matrix_python(name):
    return str(MATRIX_DIR / name / "bin" / "python")


def matrix_bin(name):
    return str(MATRIX_DIR / name / "bin")


# id -> (ansible-playbook's directory, target Python, facts injected as variables)
CASES = {
    "ansible-2.16/debian-12": (matrix_bin("ansible-2.16"), DEBIAN_PYTHON, True),
    "ansible-2.18/ubuntu-22.04/facts-only": (matrix_bin("ansible-2.18"), matrix_python("ubuntu-22.04"), False),
    "ansible-2.18/debian-12": (matrix_bin("ansible-2.18"), DEBIAN_PYTHON, True),
    "pinned/debian-12/facts-only": (BIN, DEBIAN_PYTHON, False),
    "ansible-2.16/ubuntu-22.04": (matrix_bin("ansible-2.16"), matrix_python("ubuntu-22.04"), True),
    # The oldest target Python (Rocky/CentOS Stream 9), with pip's libraries.
    "ansible-2.18/python-3.9": (matrix_bin("ansible-2.18"), matrix_python("unit-3.9"), True),
}
# What each target must hold: name -> version (Ubuntu's from requirements.txt).
EXPECTED = {
    DEBIAN_PYTHON: {"docker": "5.0.3", "cryptography": "38.0.4", "bcrypt": "3.2.2"},
    matrix_python("ubuntu-22.04"): {"docker": "5.0.3", "cryptography": "3.4.8", "bcrypt": "3.2.0"},
    matrix_python("unit-3.9"): {"docker": "7.2.0", "cryptography": "50.0.2", "bcrypt": "5.0.0"},
}
FIND = (
    "import importlib, json, sys; "
    "print(json.dumps({n: [getattr(importlib.import_module(n), '__version__', ''),"
    " importlib.import_module(n).__file__] for n in %r}))" % (LIBRARIES,)
)


def target_libraries(python):
    """name -> (version, file) of the libraries python imports; skips when
    the target is not there (in CI, a failure: CI prepares it)."""
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} missing: scripts/setup-host prepares the support matrix's Pythons")
    proc = run([python, "-c", FIND])
    if proc.returncode != 0:
        pytest.skip(f"{python} lacks docker, cryptography or bcrypt: scripts/setup-host installs them\n{proc.output}")
    return json.loads(proc.stdout)


@pytest.mark.parametrize("case", list(CASES))
def test_the_role_runs_where_zuul_runs_it(case, tmp_path, upstream):
    ansible_bin, python, inject = CASES[case]
    if not os.access(os.path.join(ansible_bin, "ansible-playbook"), os.X_OK):
        pytest.skip(f"{ansible_bin}/ansible-playbook missing: scripts/setup-host prepares the support matrix")
    found = target_libraries(python)
    for name, want in EXPECTED[python].items():
        assert found[name][0] == want, f"{python} has {name} {found[name][0]}, the matrix wants {want}"
    if python == DEBIAN_PYTHON:
        # Debian's packages, nothing from pip.
        assert all(path.startswith(DEBIAN_LIBRARIES) for _, path in found.values()), found
    env = {ANSIBLE_BIN_ENV: ansible_bin, TARGET_PYTHON_ENV: python, "ANSIBLE_INJECT_FACT_VARS": str(inject)}
    reg = Registry(tmp_path, upstream["url"], prefix="matrix")
    try:
        proc, facts = reg.apply(env=env)
        assert proc.returncode == 0, proc.output[-4000:]
        assert facts and role_changed(proc) == ["certificate", "containers", "htpasswd"], proc.output[-4000:]
        # The role's task reports ok, not changed (the test's own tasks write files).
        again, facts_again = reg.apply(env=env)
        assert again.returncode == 0 and role_changed(again) == [], again.output[-4000:]
        assert re.search(r"\nok: \[localhost\]\n\nTASK \[/[^\]]* : Return the registry", again.output), again.output
        assert facts_again == facts

        clients = Clients(facts, tmp_path)
        image = make_image(tmp_path / "image")
        ref = f"matrix/{uuid.uuid4().hex[:8]}:latest"
        pushed = clients.push(image, "proxy", ref)
        assert pushed.returncode == 0, pushed.output
        pulled = clients.pull("proxy", ref, tmp_path / "pulled")
        assert pulled.returncode == 0, pulled.output
        assert pulled_matches(tmp_path / "pulled", image) == []

        gone, _ = reg.apply({"buildset_registry_state": "absent"}, env=env)
        assert gone.returncode == 0, gone.output[-4000:]
        assert not any(container_exists(name) for name in reg.containers)
    finally:
        reg.remove()


def test_with_facts_not_injected_zuul_return_and_use_read_the_fact(tmp_path, upstream, snapshot):
    """ANSIBLE_INJECT_FACT_VARS=False (ansible-core 2.24's default): the role,
    Zuul's real zuul_return and the use entry point in one play read the fact
    from ansible_facts; a child job's plain variable still works."""
    zuul = pytest.importorskip("zuul", reason="requirements.txt installs zuul (--no-deps) for this test")
    reg = Registry(tmp_path, upstream["url"], prefix="matrix")
    port, push_port = reg.vars["buildset_registry_port"], reg.vars["buildset_registry_push_port"]
    snapshot({"host": "localhost", "port": port, "push_host": "localhost", "push_port": push_port})
    jobdir = tmp_path / "jobdir"
    (jobdir / "work").mkdir(parents=True)
    (jobdir / "work" / "results.json").write_text("")  # as Zuul's executor does
    env = {
        "ANSIBLE_INJECT_FACT_VARS": "False",
        "ZUUL_JOBDIR": str(jobdir),
        "ANSIBLE_ACTION_PLUGINS": os.path.join(os.path.dirname(zuul.__file__), "ansible", "base", "action"),
    }
    facts_file = tmp_path / "facts.json"
    tasks = [
        {"name": "Run the registry", "ansible.builtin.include_role": {"name": ROLE_DIR}},
        {"name": "Use it on this node", "ansible.builtin.include_role": {"name": ROLE_DIR, "tasks_from": "use"}},
        save_task("Write the fact for the test", "ansible_facts.buildset_registry", facts_file, no_log=True),
    ]
    zuul_vars = {"zuul": {"job": "build-images", "buildset": "1", "executor": {"work_root": str(jobdir / "work")}}}
    try:
        proc = play(tmp_path, tasks, {**reg.vars, **zuul_vars}, env=env, timeout=300)
        assert proc.returncode == 0, proc.output[-4000:]
        facts = read_json(facts_file)
        returned = json.loads((jobdir / "work" / "results.json").read_text())["secret_data"]["buildset_registry"]
        assert returned == facts
        ca = Path("/etc/docker/certs.d") / facts["mirrors"][0] / "ca.crt"
        assert ca.read_text() == facts["cert"]

        # A child job: the parent's fact arrives as a plain variable.
        use = [{"name": "Use it", "ansible.builtin.include_role": {"name": ROLE_DIR, "tasks_from": "use"}}]
        child = play(tmp_path, use, {"buildset_registry": facts}, env={"ANSIBLE_INJECT_FACT_VARS": "False"})
        assert child.returncode == 0 and "changed=0" in child.output, child.output[-4000:]
    finally:
        reg.remove()


def test_an_old_library_on_the_target_fails_the_task_with_a_message_before_any_change(tmp_path, upstream):
    """Under no_log, a module that cannot start shows nothing but MODULE
    FAILURE: an old bcrypt (a stand-in distribution 3.1.0 ahead on the
    target's path) must fail with a message instead, and write nothing."""
    target_libraries(DEBIAN_PYTHON)
    old = tmp_path / "old-libs"
    (old / "bcrypt").mkdir(parents=True)
    (old / "bcrypt" / "__init__.py").write_text("__version__ = '3.1.0'\n")
    (old / "bcrypt-3.1.0.dist-info").mkdir()
    (old / "bcrypt-3.1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: bcrypt\nVersion: 3.1.0\n")
    reg = Registry(tmp_path, upstream["url"], prefix="matrix")
    try:
        proc, facts = reg.apply(env={TARGET_PYTHON_ENV: DEBIAN_PYTHON, "PYTHONPATH": str(old)})
        assert proc.returncode != 0 and facts is None, proc.output[-4000:]
        assert "MODULE FAILURE" not in proc.output, proc.output[-4000:]
        assert "bcrypt 3.1.0" in proc.output and "older than 3.2.0" in proc.output, proc.output[-4000:]
        assert "python3-bcrypt" in proc.output and "'bcrypt>=3.2.0'" in proc.output
        assert not Path(reg.vars["buildset_registry_root"]).exists()
        assert not any(container_exists(name) for name in reg.containers)
    finally:
        reg.remove()
