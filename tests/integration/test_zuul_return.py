"""The role under Zuul: Zuul's real zuul_return action plugin (from the
`zuul` package) writes results.json, as on a Zuul executor."""

import json
import os

import pytest

zuul = pytest.importorskip("zuul", reason="requirements.txt installs zuul (--no-deps) for this test")
ZUUL_ACTIONS = os.path.join(os.path.dirname(zuul.__file__), "ansible", "base", "action")


def zuul_env(tmp_path):
    jobdir = tmp_path / "jobdir"
    (jobdir / "work").mkdir(parents=True)
    # Zuul's executor creates the file before the job runs; the plugin
    # expects it to exist.
    (jobdir / "work" / "results.json").write_text("")
    return jobdir, {"ZUUL_JOBDIR": str(jobdir), "ANSIBLE_ACTION_PLUGINS": ZUUL_ACTIONS}


def test_zuul_return_carries_registry_as_secret_data(registry, tmp_path):
    jobdir, env = zuul_env(tmp_path)
    zuul_vars = {"zuul": {"job": "build-images", "buildset": "1234", "executor": {"work_root": str(jobdir / "work")}}}
    proc, facts = registry.apply(extra_vars=zuul_vars, env=env, verbosity=3)
    assert proc.returncode == 0, proc.output[-3000:]
    results = json.loads((jobdir / "work" / "results.json").read_text())
    returned = results["secret_data"]["buildset_registry"]
    assert returned == facts
    assert set(returned) >= {"host", "port", "push_host", "push_port", "username", "password", "cert"}
    assert "buildset_registry" not in results.get("data", {})
    # Secrets stay out of the log, even at -vvv.
    assert facts["password"] not in proc.output
    assert "Hand the registry to later jobs as secret data" in proc.output


def test_outside_zuul_the_role_does_not_need_zuul_return(registry):
    # No zuul variable, no Zuul plugins on the path: zuul_return must not be
    # resolved at all.
    proc, facts = registry.apply()
    assert proc.returncode == 0, proc.output[-3000:]
    assert "zuul_return" not in proc.output
    assert facts["port"] == registry.vars["buildset_registry_port"]
