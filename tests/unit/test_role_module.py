"""The role's one module: every input checked, naming the role variable,
before anything changes; its result shape. No Docker here: a run that gets
past the checks meets an engine that is not there, which is a test too."""

import os

import pytest
from helpers import load_library, option_params, role_message, run_main

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.namespaces import DEFAULT
from ansible.module_utils.buildset_registry.common.options import DEFAULT_DOCKER_HOST, role_spec
from ansible.module_utils.buildset_registry.registry import entry as role


def load_module():
    return load_library("buildset_registry")


def params(root, **over):
    # The engine from DOCKER_HOST, which the tests point elsewhere. Not None:
    # ansible-core before 2.19 refuses None for a str option.
    engine = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    return option_params(role_spec(), **dict(dict(root=root, host="localhost", docker_host=engine), **over))


BAD = [
    ("relative root", dict(root="relative/dir"), "buildset_registry_root", "absolute"),
    ("image with space", dict(image="registry: 2"), "buildset_registry_image", "registry:2"),
    ("empty image", dict(image=""), "buildset_registry_image", "registry:2"),
    ("port 0", dict(port=0), "buildset_registry_port", "1 to 65535"),
    ("push port 70000", dict(push_port=70000), "buildset_registry_push_port", "1 to 65535"),
    ("same ports", dict(push_port=5000), "buildset_registry_push_port", "different ports"),
    ("same names", dict(push_container="buildset_proxy"), "buildset_registry_push_container", "different names"),
    ("ftp upstream", dict(proxy_remote_url="ftp://x"), "buildset_registry_proxy_remote_url", "http(s)"),
    ("username colon", dict(username="zu:ul"), "buildset_registry_username", "a colon"),
    ("username newline", dict(username="zu\nul"), "buildset_registry_username", "a line break"),
    ("empty username", dict(username=""), "buildset_registry_username", "zuul"),
    ("password newline", dict(password="a\nb"), "buildset_registry_password", "line break"),
    ("bcrypt cost 3", dict(bcrypt_cost=3), "buildset_registry_bcrypt_cost", "4-31"),
    ("bad host", dict(host="a b"), "buildset_registry_host", "DNS name"),
    ("bad extra name", dict(cert_extra_names=["-x"]), "buildset_registry_cert_extra_names", "DNS name"),
    ("renew >= valid", dict(cert_renew_days=365), "buildset_registry_cert_renew_days", "less than"),
    ("wait 0", dict(wait_timeout=0), "buildset_registry_wait_timeout", "positive"),
]


@pytest.mark.parametrize("over, variable, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_validate_names_the_variable(tmp_path, over, variable, words):
    p = params(str(tmp_path / "root"))
    p.update(over)
    with pytest.raises(RegistryError) as exc:
        role.validate(p)
    assert variable in role_message(exc.value)
    assert words in role_message(exc.value)


def test_validate_accepts_the_defaults(tmp_path):
    role.validate(params(str(tmp_path / "root")))


def test_absent_does_not_need_valid_credentials(tmp_path):
    # Removing the containers must work whatever the credentials say.
    role.validate(params(str(tmp_path / "root"), state="absent", username="zu:ul", host="a b"))


def test_facts_hold_the_documented_keys():
    facts = role.facts(params("/r", host="192.0.2.1", port=6000, push_port=6001), {"cert": "PEM"}, {"password": "pw"})
    assert facts == {
        "host": "192.0.2.1",
        "port": 6000,
        "push_host": "192.0.2.1",
        "push_port": 6001,
        "username": "zuul",
        "password": "pw",
        "cert": "PEM",
        "mirrors": ["192.0.2.1:6000"],
        "addresses": {},
        "anonymous_pull": False,
        "namespaces": [{"name": name, "url": url} for name, url in DEFAULT],
    }


def test_the_facts_namespaces_hold_no_credentials_and_docker_io_takes_the_proxy_variables():
    given = [{"name": "quay.io", "url": "https://quay.example/", "username": "u", "password": "secret-pw"}, "ghcr.io"]
    facts = role.facts(params("/r", namespaces=given, proxy_remote_url="http://127.0.0.1:1", proxy_password="hub-pw"),
                       {"cert": "PEM"}, {"password": "pw"})  # fmt: skip
    assert facts["namespaces"] == [
        {"name": "docker.io", "url": "http://127.0.0.1:1"},
        {"name": "quay.io", "url": "https://quay.example"},
        {"name": "ghcr.io", "url": ""},
    ]
    assert "secret-pw" not in repr(facts) and "hub-pw" not in repr(facts)


def test_facts_for_an_ipv6_host_name_one_endpoint_by_a_name_the_cert_holds():
    facts = role.facts(params("/r", host="::1"), {"cert": "PEM"}, {"password": "pw"})
    name = "buildset-registry-v6-00000000000000000000000000000001"
    assert (facts["host"], facts["push_host"]) == (name, name)
    assert facts["mirrors"] == [name + ":5000"]
    assert facts["addresses"] == {name: "::1"}
    assert name in role.cert_params(params("/r", host="::1"))["extra_names"]


def test_an_ip_address_host_has_the_zuul_jobs_alias_in_its_certificate():
    # use-buildset-registry reaches an IP-address registry by this /etc/hosts name.
    for host in ("192.0.2.1", "::1"):
        assert "zuul-jobs.buildset-registry" in role.cert_params(params("/r", host=host))["extra_names"]
    assert "zuul-jobs.buildset-registry" not in role.cert_params(params("/r", host="registry.example"))["extra_names"]


def test_module_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / "root"
    code, out = run_main(load_module().main, params(str(root), port=5001), capsys)
    assert code == 1 and out["failed"]
    assert "buildset_registry_port and buildset_registry_push_port" in out["msg"]
    assert out["changed"] is False
    assert not root.exists()


def test_module_fails_fast_without_an_engine_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix://%s" % (tmp_path / "no-such.sock"))
    root = tmp_path / "root"
    code, out = run_main(load_module().main, params(str(root), password="s3cret-pw"), capsys)
    assert code == 1
    assert "Docker engine not reachable" in out["msg"]
    assert "no-such.sock" in out["msg"]
    assert not root.exists()
    # The password never comes back in a failure.
    assert "s3cret-pw" not in capsys.readouterr().out + str(out)


def test_module_rejects_an_unknown_state(tmp_path, capsys):
    code, out = run_main(load_module().main, params(str(tmp_path / "root"), state="running"), capsys)
    assert code == 1
    assert "state" in out["msg"] and "present, absent" in out["msg"]
