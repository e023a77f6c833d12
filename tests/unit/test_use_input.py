"""The use entry point's input: the fact and the namespaces, refused before
anything changes, naming the role variable."""

import pytest
from helpers import use_fact

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.options import use_variables
from ansible.module_utils.buildset_registry.use.inputs import validate


def refused(registry, namespaces=("docker.io",)):
    with pytest.raises(RegistryError) as exc:
        validate(registry, list(namespaces))
    return exc.value.render(use_variables())


def test_a_whole_fact_gives_endpoints_mirrors_and_credentials():
    wanted = validate(use_fact(), ["docker.io", "quay.io", "registry.example.com:5000"])
    assert wanted.endpoints == ["registry.example.org:5001", "registry.example.org:5000"]
    assert wanted.push == "registry.example.org:5001"
    assert wanted.mirrors == ["registry.example.org:5001", "registry.example.org:5000"]
    assert wanted.auth == "enV1bDpzM2NyZXQ="  # zuul:s3cret
    assert wanted.push_path("quay.io") == "registry.example.org:5001/quay.io"
    # A port's colon cannot be part of a repository name.
    assert wanted.push_path("registry.example.com:5000") == "registry.example.org:5001/registry.example.com_5000"


def test_a_fact_with_one_mirror_pulls_through_it_alone():
    wanted = validate(use_fact(mirrors=["registry.example.org:5000"]), ["docker.io"])
    assert wanted.mirrors == ["registry.example.org:5000"]
    assert wanted.endpoints == ["registry.example.org:5001", "registry.example.org:5000"]


def test_ports_given_as_strings_are_accepted():
    assert validate(dict(use_fact(), port="5000", push_port="5001"), []).push == "registry.example.org:5001"


@pytest.mark.parametrize(
    "registry, words",
    [
        (None, "buildset_registry is not set"),
        ({}, "buildset_registry is not set"),
        (use_fact(mirrors=None), "buildset_registry lacks mirrors"),
        ({"host": "h"}, "lacks port, push_host, push_port, username, password, cert, mirrors"),
        (use_fact(host="::1"), "IPv6 address"),
        (use_fact(push_host="a b"), "buildset_registry.push_host"),
        (use_fact(port=0), "buildset_registry.port"),
        (use_fact(push_port=70000), "buildset_registry.push_port"),
        (use_fact(username="zu:ul"), "without a colon"),
        (use_fact(cert="nope"), "not a PEM certificate"),
        (use_fact(mirrors=["other.example.org:5000"]), "must list endpoints of this registry"),
        (use_fact(mirrors=["registry.example.org:5000", "registry.example.org:5000"]), "each once"),
        (use_fact(mirrors="registry.example.org:5000"), "not a list of host:port"),
        (use_fact(addresses={"name.example": "not-an-ip"}), "not an IP address"),
        (use_fact(addresses={"::1": "::1"}), "not a host name"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_bad_fact_is_refused_naming_buildset_registry(registry, words):
    msg = refused(registry)
    assert msg.startswith("buildset_registry")
    assert words in msg


def test_an_ipv6_registry_comes_with_a_name_and_its_address():
    name = "buildset-registry-v6-00000000000000000000000000000001"
    wanted = validate(use_fact(host=name, push_host=name, mirrors=[name + ":5000"], addresses={name: "::1"}), [])
    assert wanted.addresses == {name: "::1"}


@pytest.mark.parametrize(
    "namespace, words",
    [
        ("https://quay.io", "scheme"),
        ("quay.io/org", "path"),
        ("Quay.io", "lowercase"),
        ("index.docker.io", "write docker.io"),
        ("quay", "registry host name"),
        ("quay.io:0", "registry host name"),
        ("", "registry host name"),
        (5, "registry host name"),
    ],
)
def test_an_unknown_namespace_form_is_refused(namespace, words):
    msg = refused(use_fact(), ["docker.io", namespace])
    assert msg.startswith("buildset_registry_namespaces: ")
    assert words in msg


def test_a_namespace_given_twice_is_refused():
    assert "given twice" in refused(use_fact(), ["quay.io", "docker.io", "quay.io"])


def test_the_registry_itself_is_no_namespace():
    assert "the buildset registry itself" in refused(use_fact(), ["registry.example.org:5001"])


def test_namespaces_that_are_registry_hosts_are_accepted():
    names = ["docker.io", "quay.io", "ghcr.io", "registry.example.com:5000", "localhost:5000"]
    assert validate(use_fact(), names).namespaces == names
