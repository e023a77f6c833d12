"""The Python libraries a node needs (common/libraries.py): a missing or
too old one, or a docker SDK that clashes with its requests or urllib3,
fails the module before its job with the library, the version found, the
one needed and how to install it; and the oldest versions' APIs."""

import datetime
import sys

import pytest
from helpers import load_library, run_main

from ansible.module_utils.buildset_registry.common import libraries
from ansible.module_utils.buildset_registry.common.options import part_spec
from ansible.module_utils.buildset_registry.common.shell import run_module
from ansible.module_utils.buildset_registry.registry import crypto

CURRENT = {"docker": "7.2.0", "cryptography": "50.0.2", "bcrypt": "5.0.0", "requests": "2.32.5", "urllib3": "2.5.0"}
UBUNTU_22_04 = {
    "docker": "5.0.3",
    "cryptography": "3.4.8",
    "bcrypt": "3.2.0",
    "requests": "2.25.1",
    "urllib3": "1.26.5",
}
DEBIAN_12 = {"docker": "5.0.3", "cryptography": "38.0.4", "bcrypt": "3.2.2", "requests": "2.28.1", "urllib3": "1.26.12"}
ALL = ["docker", "cryptography", "bcrypt"]


@pytest.mark.parametrize(
    "text, version",
    [("3.2.2", (3, 2, 2)), ("38.0.4", (38, 0, 4)), ("5.0.0rc1", (5, 0, 0)), ("3.4", (3, 4)), ("", ()), (None, ())],
)
def test_parse(text, version):
    assert libraries.parse(text) == version


@pytest.mark.parametrize("found", [CURRENT, UBUNTU_22_04, DEBIAN_12], ids=["pinned", "ubuntu-22.04", "debian-12"])
def test_the_tested_versions_do(found):
    assert libraries.problems(ALL, found=found) == []


def test_this_python_has_what_the_modules_need():
    assert libraries.problems(ALL) == []
    assert libraries.parse(libraries.installed("bcrypt")) >= (3, 2, 0)


def test_a_missing_library_names_the_version_needed_and_both_ways_to_install_it():
    [message] = libraries.problems(["bcrypt"], found={"bcrypt": None})
    assert "bcrypt is missing on %s" % sys.executable in message
    assert "3.2.0 or newer" in message
    assert "-m pip install 'bcrypt>=3.2.0'" in message and "python3-bcrypt" in message
    assert "ansible_python_interpreter" in message


@pytest.mark.parametrize(
    "name, old, least",
    [("docker", "4.4.4", "5.0.3"), ("cryptography", "3.3.2", "3.4.8"), ("bcrypt", "3.1.7", "3.2.0")],
)
def test_an_old_library_names_the_version_found_and_the_one_needed(name, old, least):
    [message] = libraries.problems(ALL, found=dict(UBUNTU_22_04, **{name: old}))
    assert message.startswith(name) and " %s on " % old in message
    assert "older than %s" % least in message
    assert "'%s>=%s'" % (name, least) in message and "python3-%s" % name in message


@pytest.mark.parametrize(
    "found, fix",
    [
        (dict(UBUNTU_22_04, requests="2.32.3"), "requests<2.32"),
        (dict(UBUNTU_22_04, urllib3="2.2.3"), "urllib3<2"),
        (dict(CURRENT, docker="7.0.0"), "requests<2.32"),
    ],
)
def test_a_docker_sdk_that_its_requests_or_urllib3_breaks_is_refused(found, fix):
    [message] = libraries.problems(ALL, found=found)
    assert "does not work with" in message and fix in message and "docker>=" in message


def test_a_version_that_cannot_be_read_is_taken_as_good():
    assert libraries.problems(ALL, found=dict(CURRENT, bcrypt="")) == []


def test_the_module_fails_before_its_job_naming_the_old_library(capsys, monkeypatch):
    versions = dict(CURRENT, cryptography="2.9.2")
    monkeypatch.setattr(libraries, "installed", lambda name: versions.get(name))

    def job(params, check_mode, result):
        raise AssertionError("the job ran")

    spec = dict(root=dict(type="path", default="/r"))
    code, out = run_main(lambda: run_module(spec, job, needs=ALL, start={"containers": {}}), {}, capsys)
    assert code == 1 and out["containers"] == {} and not out["changed"]
    assert "cryptography 2.9.2" in out["msg"] and "3.4.8" in out["msg"] and "python3-cryptography" in out["msg"]


@pytest.mark.parametrize(
    "module, library, spec_part, args",
    [
        ("buildset_registry_cert", "cryptography", "cert", {"host": "localhost"}),
        ("buildset_registry_htpasswd", "bcrypt", "htpasswd", {"username": "zuul"}),
    ],
)
def test_a_part_module_without_its_library_fails_with_a_message(capsys, monkeypatch, tmp_path, module, library,
                                                                 spec_part, args):  # fmt: skip
    # Importing the module file must not import the library: a module that
    # cannot start has no message, only MODULE FAILURE under no_log.
    for name in [n for n in sys.modules if n == library or n.startswith(library + ".")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ["ansible.module_utils.buildset_registry.registry.cert",
                 "ansible.module_utils.buildset_registry.registry.crypto"]:  # fmt: skip
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, library, None)  # import raises ImportError
    main = load_library(module).main
    assert set(args) <= set(part_spec(spec_part))
    code, out = run_main(main, dict(args, root=str(tmp_path / "root")), capsys)
    assert code == 1 and "%s is missing" % library in out["msg"], out
    assert not (tmp_path / "root").exists()


class OldCertificate:
    """A certificate as cryptography before 42 shows its expiry: naive UTC."""

    not_valid_after = datetime.datetime(2031, 5, 6, 7, 8, 9)


class NewCertificate:
    not_valid_after_utc = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)

    @property
    def not_valid_after(self):
        raise AssertionError("deprecated since cryptography 42: not read when not_valid_after_utc is there")


@pytest.mark.parametrize("cert", [OldCertificate(), NewCertificate()], ids=["before-42", "42-on"])
def test_not_after_is_aware_utc_with_every_cryptography(cert):
    expires = crypto.not_after(cert)
    assert expires == datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    assert expires.utcoffset() == datetime.timedelta(0)
