"""`buildset_registry_namespaces`, one parser for both entry points
(common/namespaces.py): its three shapes, docker.io and the proxy
variables, and bad entries refused naming the entry and the fix."""

import pytest

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.namespaces import DEFAULT, HUB_URL, Namespace, default_value, parse


def test_the_default_is_zuul_jobs_four_and_ghcr_with_their_urls():
    assert default_value() == [
        ["docker.io", "https://registry-1.docker.io"],
        ["quay.io", "https://quay.io"],
        ["gcr.io", "https://gcr.io"],
        ["registry.k8s.io", "https://registry.k8s.io"],
        ["ghcr.io", "https://ghcr.io"],
    ]
    assert [ns.name for ns in parse(default_value())] == [name for name, _ in DEFAULT]
    assert all(ns.cached for ns in parse(default_value()))


def test_three_shapes_docker_io_first():
    got = parse(
        [
            "registry.example.com:5000",
            ["quay.io", "https://quay.io/"],
            {"name": "ghcr.io", "url": "https://ghcr.io", "username": "u", "password": "p"},
            {"name": "docker.io", "url": "https://mirror.example"},
        ]
    )
    assert got == [
        Namespace("docker.io", "https://mirror.example"),
        Namespace("registry.example.com:5000"),
        Namespace("quay.io", "https://quay.io"),
        Namespace("ghcr.io", "https://ghcr.io", "u", "p"),
    ]
    assert got[1].path == "registry.example.com_5000" and not got[1].cached
    assert got[3].public() == {"name": "ghcr.io", "url": "https://ghcr.io"}


def test_docker_io_is_always_served_and_takes_the_proxy_variables():
    # Not listed: served, with the proxy variables.
    assert parse(["quay.io"], docker_io=("http://127.0.0.1:9/", "", ""))[0] == Namespace(
        "docker.io", "http://127.0.0.1:9"
    )
    # Listed with Docker Hub's URL: a proxy_remote_url changed from it wins.
    assert parse([["docker.io", HUB_URL]], docker_io=("http://127.0.0.1:9", "", ""))[0].url == "http://127.0.0.1:9"
    # Its default leaves the entry's URL alone.
    assert parse([["docker.io", "https://m.example"]], docker_io=(HUB_URL, "", ""))[0].url == "https://m.example"
    # The proxy credentials apply to it.
    hub = parse(default_value(), docker_io=(HUB_URL, "user", "pw"))[0]
    assert (hub.url, hub.username, hub.password) == (HUB_URL, "user", "pw")
    # The use entry point: what the list names, docker.io only when named.
    assert [ns.name for ns in parse(["quay.io"], served=False)] == ["quay.io"]


@pytest.mark.parametrize(
    "value,words",
    [
        ("quay.io", "not a list"),
        ([["quay.io", "quay.io"]], "not an http(s) URL"),
        ([["quay.io", "ftp://quay.io"]], "not an http(s) URL"),
        ([["quay.io", "https://user:pw@quay.io"]], "credentials go in username and password"),
        ([["quay.io"]], "[host, url] pair"),
        ([["quay.io", "https://quay.io", "x"]], "[host, url] pair"),
        (["quay.io", ["quay.io", "https://quay.io"]], "given twice"),
        (["localhost:5000"], "the buildset registry itself"),
        (["https://quay.io"], "scheme"),
        (["quay.io/org"], "path"),
        (["Quay.io"], "lowercase"),
        (["index.docker.io"], "write docker.io"),
        (["quay"], "registry host name"),
        ([5], "registry host name"),
        ([{"url": "https://quay.io"}], "lacks name"),
        ([{"name": "quay.io", "token": "t"}], "unknown keys token"),
        ([{"name": "quay.io", "username": "u", "password": "p"}], "no URL"),
        ([{"name": "quay.io", "url": 5}], "not a string"),
    ],
)
def test_bad_entries_are_refused_naming_the_entry_and_the_fix(value, words):
    with pytest.raises(RegistryError) as raised:
        parse(value, registry=("localhost:5000", "localhost:5001"))
    assert raised.value.option == "namespaces"
    message = raised.value.render({"namespaces": "buildset_registry_namespaces"})
    assert message.startswith("buildset_registry_namespaces: ")
    assert words in message
