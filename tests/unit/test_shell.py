"""The module shell every library module runs through: errors in the
module's own names, an OSError as a clean failure naming the file, one
result shape (warnings, diff only with --diff), and no secret in the output
unless the module exists to return it, and then not in check mode."""

import json

import pytest
from helpers import run_main

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.shell import MASKED, run_module

SPEC = dict(
    root=dict(type="path", default="/r"),
    password=dict(type="str", default="", no_log=True),
    registry=dict(type="dict"),
    object_storage=dict(type="dict", default={}),
)
SECRET = "s3cret-pw-for-the-shell"


def run(capsys, job, args=None, **shell):
    """(exit code, result) of a module made of SPEC, job and the shell's options."""
    return run_main(lambda: run_module(SPEC, job, **shell), args or {}, capsys)


def warnings(out):
    """The texts of a result's warnings (ansible-core 2.19 gives summaries)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in out.get("warnings", [])]


def fails_with(error):
    def job(params, check_mode, result):
        result["done"] = "half"
        raise error

    return job


def test_an_error_names_the_modules_own_options_by_default(capsys):
    code, out = run(capsys, fails_with(RegistryError("root", "{root}: %s is {password}'s {unknown}", "x")))
    assert code == 1 and out["failed"] and out["changed"] is False
    # A token that names none of the module's options keeps its braces (log text).
    assert out["msg"] == "root: x is password's {unknown}"
    assert out["done"] == "half"


def test_an_error_names_what_the_module_says(capsys):
    names = {"root": "buildset_registry_root"}
    code, out = run(capsys, fails_with(RegistryError("root", "{root} and {password}")), names=names)
    assert out["msg"] == "buildset_registry_root and {password}"


def test_without_names_str_gives_every_token_bare():
    error = RegistryError("root", "{root}: %r {x}", "{root}")
    assert str(error) == "root: '{root}' x"
    assert error.render({}) == "{root}: '{root}' {x}"


def test_an_os_error_fails_cleanly_naming_the_file(capsys):
    error = PermissionError(13, "Permission denied", "/etc/x.json")
    code, out = run(capsys, fails_with(error), os_hint="run it as root")
    assert code == 1 and out["msg"] == "/etc/x.json: Permission denied (run it as root)"
    assert out["done"] == "half"


def test_warnings_and_a_diff_only_with_diff(capsys):
    def job(params, check_mode, result):
        result.update(changed=True, warnings=["look out"], diff={"before": "a", "after": "b"})

    code, out = run(capsys, job)
    assert code == 0 and out["changed"] is True and "diff" not in out
    assert "look out" in warnings(out)
    code, out = run(capsys, job, {"_ansible_diff": True})
    assert out["diff"] == {"before": "a", "after": "b"}


def test_a_failure_drops_the_diff_and_keeps_the_warnings(capsys):
    def job(params, check_mode, result):
        result.update(warnings=["first this"], diff={"before": "", "after": ""})
        raise RegistryError(None, "then that")

    code, out = run(capsys, job, {"_ansible_diff": True})
    assert (code, out["msg"]) == (1, "then that") and "first this" in warnings(out)
    assert "diff" not in out


def test_no_secret_leaves_the_module(capsys):
    store = {"s3": {"bucket": "b1", "secretkey": "store-key-123"}}
    registry = {"password": SECRET, "host": "h"}

    def job(params, check_mode, result):
        result["echo"] = [params["password"], params["registry"]["password"], params["object_storage"]]
        raise RegistryError(None, "failed with %s", SECRET)

    args = {"password": "opt-pw-456", "registry": registry, "object_storage": store}
    code, out = run(capsys, job, args, secrets=lambda p: [p["registry"]["password"]], hidden=("registry",))
    text = json.dumps(out)
    for secret in (SECRET, "opt-pw-456", "store-key-123"):
        assert secret not in text
    assert out["invocation"]["module_args"]["password"] == MASKED
    assert out["invocation"]["module_args"]["registry"] == MASKED
    assert "b1" in text


def returns_the_password(params, check_mode, result):
    result["fact"] = {"password": params["password"] or "stored-pw-789"}


@pytest.mark.parametrize("given", ["opt-pw-456", ""])
def test_the_returned_secret_comes_back_but_not_in_the_invocation(capsys, given):
    code, out = run(capsys, returns_the_password, {"password": given}, returns=("fact", "password"))
    assert out["fact"]["password"] == (given or "stored-pw-789")
    assert out["invocation"]["module_args"]["password"] == (MASKED if given else "")


@pytest.mark.parametrize("given", ["opt-pw-456", ""])
def test_check_mode_keeps_the_returned_secret_masked(capsys, given):
    args = {"password": given, "_ansible_check_mode": True}
    code, out = run(capsys, returns_the_password, args, returns=("fact", "password"))
    assert code == 0 and out["fact"]["password"] == MASKED


def test_a_missing_library_fails_before_the_job(capsys):
    def job(params, check_mode, result):
        raise AssertionError("the job ran")

    code, out = run(capsys, job, needs={"docker": None}, start={"containers": {}})
    assert code == 1 and "docker" in out["msg"] and out["containers"] == {}
