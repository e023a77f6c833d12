"""The use entry point's planners, one file each: old bytes in, new bytes
and reasons out. Each keeps what is not ours, changes nothing when run on
its own output, and takes back exactly what it added."""

import base64
import json

import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11: the unit tests on Python 3.9 (requirements.txt's #matrix unit-3.9)
    import tomli as tomllib
from helpers import use_fact

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.use import containerd as containerd
from ansible.module_utils.buildset_registry.use import containers_image as containers
from ansible.module_utils.buildset_registry.use import docker as docker
from ansible.module_utils.buildset_registry.use import hosts as hosts
from ansible.module_utils.buildset_registry.use import jsonfile as jsonedit
from ansible.module_utils.buildset_registry.use.inputs import validate

PUSH, PROXY = "registry.example.org:5001", "registry.example.org:5000"


def wanted(namespaces=("docker.io",), mirrors=(PUSH, PROXY), **over):
    return validate(use_fact(mirrors=list(mirrors), **over), list(namespaces))


AUTH = base64.b64encode(b"zuul:s3cret").decode()


# --- daemon.json ----------------------------------------------------------------


def test_daemon_json_gets_the_mirrors_in_order_and_keeps_other_keys():
    old = b'{\n  "log-driver": "json-file",\n  "debug": true\n}\n'
    new, reasons = jsonedit.apply(docker.DAEMON_JSON, old, docker.daemon_keys(wanted()), {})
    assert json.loads(new) == {
        "log-driver": "json-file",
        "debug": True,
        "registry-mirrors": ["https://" + PUSH, "https://" + PROXY],
    }
    assert reasons == ["registry-mirrors added"]
    assert list(json.loads(new)) == ["log-driver", "debug", "registry-mirrors"]


def test_daemon_json_made_from_nothing_and_unchanged_on_its_own_output():
    record = {}
    new, _ = jsonedit.apply(docker.DAEMON_JSON, None, docker.daemon_keys(wanted()), record)
    assert json.loads(new) == {"registry-mirrors": ["https://" + PUSH, "https://" + PROXY]}
    assert jsonedit.apply(docker.DAEMON_JSON, new, docker.daemon_keys(wanted()), record) == (new, [])


def test_daemon_json_that_already_says_it_keeps_its_bytes():
    old = b'{"registry-mirrors":["https://%s","https://%s"],  "x": 1}' % (PUSH.encode(), PROXY.encode())
    assert jsonedit.apply(docker.DAEMON_JSON, old, docker.daemon_keys(wanted()), {}) == (old, [])


def test_daemon_json_other_mirrors_are_replaced_and_put_back():
    old = b'{"registry-mirrors": ["https://mirror.example.com"]}\n'
    record = {}
    new, reasons = jsonedit.apply(docker.DAEMON_JSON, old, docker.daemon_keys(wanted()), record)
    assert reasons == ["registry-mirrors set"]
    assert record["keys"] == [[["registry-mirrors"], {"value": ["https://mirror.example.com"]}]]
    back, _ = jsonedit.revert(docker.DAEMON_JSON, new, dict(record, original=old))
    assert json.loads(back) == json.loads(old)


def test_daemon_json_without_docker_io_is_not_ours():
    assert docker.daemon_keys(wanted(namespaces=["quay.io"])) == []


@pytest.mark.parametrize("old", [b"{not json", b'["a list"]', b"\xff\xfe"])
def test_a_daemon_json_that_is_not_a_json_object_is_refused_naming_it(old):
    with pytest.raises(RegistryError) as exc:
        jsonedit.apply(docker.DAEMON_JSON, old, docker.daemon_keys(wanted()), {})
    assert "/etc/docker/daemon.json" in str(exc.value)
    assert "Nothing was changed" in str(exc.value)


def test_mirrors_in_reads_the_key():
    assert docker.mirrors_in(b'{"registry-mirrors": ["https://a:1"]}') == ["https://a:1"]
    assert docker.mirrors_in(b"{}") is None
    assert docker.mirrors_in(None) is None


# --- docker's config.json ---------------------------------------------------------


def test_docker_config_gets_every_endpoint_and_docker_hub_and_keeps_the_rest():
    old = json.dumps({"auths": {"quay.io": {"auth": "cXVheTpwdw=="}}, "psFormat": "table"}).encode()
    new, _ = jsonedit.apply("config.json", old, docker.config_keys(wanted()), {})
    cfg = json.loads(new)
    assert cfg["psFormat"] == "table"
    assert cfg["auths"] == {
        "quay.io": {"auth": "cXVheTpwdw=="},
        PUSH: {"auth": AUTH},
        PROXY: {"auth": AUTH},
        docker.HUB_KEY: {"auth": AUTH},
    }


def test_docker_config_without_docker_io_leaves_docker_hub_alone():
    new, _ = jsonedit.apply("config.json", None, docker.config_keys(wanted(namespaces=["quay.io"])), {})
    assert docker.HUB_KEY not in json.loads(new)["auths"]


def test_docker_config_taken_back_structurally_restores_the_users_hub_credentials():
    hub = {"auth": base64.b64encode(b"me:mine").decode()}
    old = json.dumps({"auths": {docker.HUB_KEY: hub}}).encode()
    record = {"original": "x"}
    new, _ = jsonedit.apply("config.json", old, docker.config_keys(wanted()), record)
    # Someone adds an entry meanwhile: only ours go.
    cfg = json.loads(new)
    cfg["auths"]["ghcr.io"] = {"auth": "Z2g6cHc="}
    back, reasons = jsonedit.revert("config.json", json.dumps(cfg).encode(), record)
    assert json.loads(back) == {"auths": {docker.HUB_KEY: hub, "ghcr.io": {"auth": "Z2g6cHc="}}}
    assert reasons == ["our keys taken out, the rest kept"]


def test_a_config_we_made_is_removed_when_only_our_keys_were_in_it():
    record = {"original": None}
    new, _ = jsonedit.apply("config.json", None, docker.config_keys(wanted()), record)
    assert record["made"] == [["auths"]]
    assert jsonedit.revert("config.json", new, record) == (None, ["only our keys were left: removed"])


def test_masked_hides_every_credential():
    new, _ = jsonedit.apply(
        "config.json",
        b'{"auths": {"x.io": {"auth": "eDp5", "identitytoken": "t0k3n"}}}',
        docker.config_keys(wanted()),
        {},
    )
    text = jsonedit.masked(new)
    assert AUTH not in text and "eDp5" not in text and "t0k3n" not in text
    assert text.count(jsonedit.MASK) == 5


# --- containers-image -------------------------------------------------------------


def test_registries_conf_drop_in_lists_each_namespace_with_its_mirrors_then_itself():
    conf = tomllib.loads(
        containers.registries_conf(wanted(namespaces=["docker.io", "quay.io", "registry.example.com:5000"])).decode()
    )
    assert conf == {
        "registry": [
            {"prefix": "docker.io", "location": "docker.io", "mirror": [{"location": PUSH}, {"location": PROXY}]},
            {"prefix": "quay.io", "location": "quay.io", "mirror": [{"location": PUSH + "/quay.io"}]},
            {
                "prefix": "registry.example.com:5000",
                "location": "registry.example.com:5000",
                "mirror": [{"location": PUSH + "/registry.example.com_5000"}],
            },
        ]
    }


def test_a_fact_with_one_mirror_gives_docker_io_that_mirror_alone():
    conf = tomllib.loads(containers.registries_conf(wanted(mirrors=[PROXY])).decode())
    assert conf["registry"][0]["mirror"] == [{"location": PROXY}]


def test_auth_json_docker_io_entry_is_anonymous_without_user_hub_credentials():
    assert containers.hub_entry(None, None) == containers.ANONYMOUS
    user, _, password = base64.b64decode(containers.ANONYMOUS["auth"]).decode().partition(":")
    # An empty user name: containers-image then asks Docker Hub for an
    # anonymous token, yet the entry wins over docker's config.json.
    assert user == "" and password


def test_auth_json_docker_io_entry_copies_the_users_own_hub_credentials():
    hub = {"auth": base64.b64encode(b"me:mine").decode()}
    docker_before = json.dumps({"auths": {docker.HUB_KEY: hub}}).encode()
    assert containers.hub_entry(docker_before, None) == hub


def test_auth_json_with_its_own_docker_io_entry_needs_none():
    own = json.dumps({"auths": {"docker.io": {"auth": base64.b64encode(b"me:mine").decode()}}}).encode()
    assert containers.hub_entry(None, own) is None
    # ...unless that entry is ours.
    assert containers.hub_entry(None, own, ours=["docker.io"]) == containers.ANONYMOUS


def test_auth_json_keys():
    keys = containers.auth_keys(wanted(), containers.ANONYMOUS)
    assert keys == [
        (["auths", PUSH], {"auth": AUTH}),
        (["auths", PROXY], {"auth": AUTH}),
        (["auths", "docker.io"], containers.ANONYMOUS),
    ]


# --- containerd -------------------------------------------------------------------


def test_containerd_docker_io_hosts_lists_the_mirrors_with_ca_and_credentials():
    text = containerd.namespace_hosts(wanted(), "docker.io").decode()
    conf = tomllib.loads(text)
    assert conf["server"] == "https://registry-1.docker.io"
    assert list(conf["host"]) == ["https://" + PUSH, "https://" + PROXY]  # order is pull order
    for endpoint in (PUSH, PROXY):
        host = conf["host"]["https://" + endpoint]
        assert host == {
            "capabilities": ["pull", "resolve"],
            "ca": "/etc/containerd/certs.d/%s/ca.crt" % endpoint,
            "header": {"Authorization": "Basic " + AUTH},
        }


def test_containerd_other_namespace_uses_the_push_endpoints_path_with_override_path():
    conf = tomllib.loads(containerd.namespace_hosts(wanted(namespaces=["quay.io"]), "quay.io").decode())
    assert conf["server"] == "https://quay.io"
    assert conf["host"] == {
        "https://%s/v2/quay.io" % PUSH: {
            "capabilities": ["pull", "resolve"],
            "ca": "/etc/containerd/certs.d/%s/ca.crt" % PUSH,
            "override_path": True,
            "header": {"Authorization": "Basic " + AUTH},
        }
    }


def test_containerd_endpoint_hosts_has_a_host_table():
    conf = tomllib.loads(containerd.endpoint_hosts(wanted(), PUSH).decode())
    assert conf["server"] == "https://" + PUSH
    assert conf["host"]["https://" + PUSH]["capabilities"] == ["pull", "resolve", "push"]


def test_containerd_files_with_credentials_are_secret():
    for target in containerd.targets(wanted(namespaces=["docker.io", "quay.io"])):
        assert target.secret == target.path.endswith("hosts.toml")
        assert target.mode == (0o600 if target.secret else 0o644)


# --- /etc/hosts -------------------------------------------------------------------

NAME = "buildset-registry-v6-00000000000000000000000000000001"


@pytest.mark.parametrize(
    "old",
    [
        b"127.0.0.1 localhost\n::1 ip6-localhost\n",
        b"127.0.0.1 localhost",  # no final line break
        b"",
        None,
    ],
)
def test_hosts_line_added_and_taken_back_byte_for_byte(old):
    record = {}
    new, reasons = hosts.apply(old, {NAME: "::1"}, record)
    assert new.endswith(b"::1 %s  # buildset-registry\n" % NAME.encode())
    assert new.startswith(old or b"")
    assert reasons == ["adds " + NAME]
    assert hosts.apply(new, {NAME: "::1"}, record) == (new, [])
    back, _ = hosts.revert(new, record)
    assert back == (old or b"")


def test_hosts_keeps_lines_added_after_ours_and_replaces_a_changed_address():
    record = {}
    new, _ = hosts.apply(b"127.0.0.1 localhost\n", {NAME: "::1"}, record)
    new += b"10.0.0.1 other\n"
    assert hosts.apply(new, {NAME: "::1"}, record) == (new, [])
    moved, _ = hosts.apply(new, {NAME: "fd00::1"}, record)
    assert moved == b"127.0.0.1 localhost\n10.0.0.1 other\nfd00::1 %s  # buildset-registry\n" % NAME.encode()
    assert hosts.revert(moved, record)[0] == b"127.0.0.1 localhost\n10.0.0.1 other\n"


# --- dockerd's command line ---------------------------------------------------------


def test_dockerd_flags_are_read_in_both_spellings():
    from ansible.module_utils.buildset_registry.use import dockerd as dockerd

    args = ["dockerd", "--config-file=/srv/daemon.json", "-H", "unix:///run/d.sock", "--registry-mirror", "https://m"]
    assert dockerd._flag(args, "--config-file") == ["/srv/daemon.json"]
    assert dockerd._flag(args, "-H", "--host") == ["unix:///run/d.sock"]
    assert dockerd._flag(args, "--registry-mirror") == ["https://m"]
    assert dockerd.same(["https://a:1/"], ["https://a:1"]) and not dockerd.same(None, [])
