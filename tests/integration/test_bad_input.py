"""Input the registry cannot work with is refused before anything changes:
the play fails, the message names the variable, no container exists and the
root directory was not made."""

import os
import socket

import pytest
from clients import container_exists

# (case id, extra vars, variable the message must name, words of what is accepted)
CASES = [
    ("port 0", {"buildset_registry_port": 0}, "buildset_registry_port", "1 to 65535"),
    ("port 70000", {"buildset_registry_port": 70000}, "buildset_registry_port", "1 to 65535"),
    ("push_port 70000", {"buildset_registry_push_port": 70000}, "buildset_registry_push_port", "1 to 65535"),
    ("port abc", {"buildset_registry_port": "abc"}, "buildset_registry_port", "int"),
    ("port == push_port", {"buildset_registry_port": "@push"}, "buildset_registry_push_port", "different ports"),
    ("ftp remote", {"buildset_registry_proxy_remote_url": "ftp://x"}, "buildset_registry_proxy_remote_url", "http(s)"),
    (
        "remote without scheme",
        {"buildset_registry_proxy_remote_url": "registry-1.docker.io"},
        "buildset_registry_proxy_remote_url",
        "http(s)",
    ),
    ("empty username", {"buildset_registry_username": ""}, "buildset_registry_username", "zuul"),
    ("username with colon", {"buildset_registry_username": "zu:ul"}, "buildset_registry_username", "colon"),
    ("username with newline", {"buildset_registry_username": "zu\nul"}, "buildset_registry_username", "line break"),
    (
        "password with newline",
        {"buildset_registry_password": "secret\nline"},
        "buildset_registry_password",
        "line break",
    ),
    ("password over 72 bytes", {"buildset_registry_password": "p" * 73}, "buildset_registry_password", "72"),
    ("relative root", {"buildset_registry_root": "relative/dir"}, "buildset_registry_root", "absolute"),
    ("unknown state", {"buildset_registry_state": "running"}, "buildset_registry_state", "present, absent"),
    ("image with spaces", {"buildset_registry_image": "registry: 2"}, "buildset_registry_image", "registry:2"),
    ("front image empty", {"buildset_registry_front_image": ""}, "buildset_registry_front_image", "caddy:2"),
    (
        "anonymous_pull not a bool",
        {"buildset_registry_anonymous_pull": "maybe"},
        "buildset_registry_anonymous_pull",
        "bool",
    ),
    (
        "front named as push",
        {"buildset_registry_front_container": "@push_container"},
        "buildset_registry_front_container",
        "must be different names",
    ),
    (
        "namespace URL without a scheme",
        {"buildset_registry_namespaces": [["quay.io", "quay.io"]]},
        "buildset_registry_namespaces",
        "https://HOST",
    ),
    (
        "namespace given twice",
        {"buildset_registry_namespaces": ["quay.io", ["quay.io", "https://quay.io"]]},
        "buildset_registry_namespaces",
        "given twice",
    ),
    (
        "namespace that is the registry itself",
        {"buildset_registry_namespaces": ["docker.io", "localhost:@port"]},
        "buildset_registry_namespaces",
        "the buildset registry itself",
    ),
    (
        "front image that cannot be had",
        {"buildset_registry_front_image": "127.0.0.1:9/nowhere/caddy:2"},
        "buildset_registry_front_image",
        "provide-front-image",
    ),
]


def assert_nothing_made(registry, root):
    for name in registry.containers:
        assert not container_exists(name), f"container {name} exists"
    assert not os.path.exists(root), f"{root} was made"


@pytest.mark.parametrize("extra, variable, accepted", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_refused_before_any_change(registry, extra, variable, accepted):
    extra = dict(extra)
    if extra.get("buildset_registry_port") == "@push":
        extra["buildset_registry_port"] = registry.vars["buildset_registry_push_port"]
    if extra.get("buildset_registry_front_container") == "@push_container":
        extra["buildset_registry_front_container"] = registry.vars["buildset_registry_push_container"]
    if "localhost:@port" in extra.get("buildset_registry_namespaces", []):
        extra["buildset_registry_namespaces"] = ["docker.io", "localhost:%d" % registry.vars["buildset_registry_port"]]
    proc, facts = registry.apply(extra)
    assert proc.returncode != 0, proc.output[-3000:]
    assert facts is None
    assert variable in proc.output, proc.output[-3000:]
    assert accepted in proc.output, proc.output[-3000:]
    # The secret itself must not be echoed back in the refusal.
    if "buildset_registry_password" in extra:
        assert extra["buildset_registry_password"] not in proc.output
    # A relative root would be resolved against the play's working directory.
    root = os.path.join(registry.tmp_path, extra.get("buildset_registry_root", registry.vars["buildset_registry_root"]))
    assert_nothing_made(registry, root)
    assert_nothing_made(registry, registry.paths["root"])


@pytest.mark.parametrize("kind", ["port", "push_port"])
def test_port_held_by_another_program_refused(registry, kind):
    variable = f"buildset_registry_{kind}"
    port = registry.vars[variable]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        proc, facts = registry.apply()
    assert proc.returncode != 0, proc.output[-3000:]
    assert variable in proc.output, proc.output[-3000:]
    assert str(port) in proc.output and "in use" in proc.output, proc.output[-3000:]
    assert_nothing_made(registry, registry.paths["root"])


def test_password_with_backslash_n_characters_is_accepted(registry, tmp_path):
    """A backslash followed by n is two ordinary characters, not a line break."""
    from clients import Clients

    password = "back\\slash\\n-and\\r-" + os.urandom(6).hex()
    proc, facts = registry.apply({"buildset_registry_password": password})
    assert proc.returncode == 0, proc.output[-3000:]
    assert facts["password"] == password
    c = Clients(facts, tmp_path)
    for kind in ("proxy", "push"):
        assert c.status(kind, "/v2/", True) == 200
