"""Unit tests of the containers module's decisions and argument handling.

No Docker here: the functions take plain data. The module's argument tests
point DOCKER_HOST at a socket that does not exist, which fails before any
container is touched.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import time

import pytest
import yaml
from helpers import containers_params as params
from helpers import load_library, run_main

from ansible.module_utils.buildset_registry.common.address import host_port
from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.layout import (
    CONTAINER_CERTS,
    CONTAINER_DATA,
    CONTAINER_FRONT_CONFIG,
    CONTAINER_REGISTRY_CONFIG,
    layout,
    write_file,
)
from ansible.module_utils.buildset_registry.common.options import role_variables
from ansible.module_utils.buildset_registry.registry.config import registry_config, render_config
from ansible.module_utils.buildset_registry.registry.containers import checks, validate
from ansible.module_utils.buildset_registry.registry.diagnose import diagnose, log_tail
from ansible.module_utils.buildset_registry.registry.endpoints import endpoint_list, socket_name
from ansible.module_utils.buildset_registry.registry.engine import (
    PORT_LABEL,
    SPEC_LABEL,
    Engine,
    create_args,
    existing_of,
    host_config_args,
    root_cause,
)
from ansible.module_utils.buildset_registry.registry.login import derive_tokens
from ansible.module_utils.buildset_registry.registry.plan import (
    decide_action,
    desired_spec,
    plan_endpoints,
    ports_to_check,
    spec_hash,
)
from ansible.module_utils.buildset_registry.registry.ready import port_free
from ansible.module_utils.buildset_registry.registry.served import (
    files_changed,
    files_digest,
    parse_served_state,
    render_served_state,
)

TRICKY = 'p@ss: "w#rd" \\ {x} \u00e9'

PANIC_LOG = """\
time="2026-01-01T00:00:00Z" level=warning msg="No HTTP secret provided - generated random secret." go.version=go1.19.8 instance.id=abc service=registry version=2.8.2+ds1
time="2026-01-01T00:00:00Z" level=info msg="Starting cached object TTL expiration scheduler..." endpoint=proxy go.version=go1.19.8 instance.id=abc service=registry version=2.8.2+ds1
panic: Get "http://127.0.0.1:15099/v2/": dial tcp 127.0.0.1:15099: connect: connection refused

goroutine 1 [running]:
github.com/docker/distribution/registry/handlers.NewApp({0x11a4b98?, 0xc00015a690?}, 0xc000384380)
\tgithub.com/docker/distribution/registry/handlers/app.go:324 +0x1c0d
main.main()
\tgithub.com/docker/distribution/cmd/registry/main.go:22 +0x25
"""


def load_module():
    return load_library("buildset_registry_containers")


def run_module(capsys, args):
    return run_main(load_module().main, args, capsys)[1]


HASH = "$2y$04$" + "a" * 53
TOKENS = derive_tokens("zuul", "pw")


def endpoints(p, hashed=HASH, tokens=TOKENS):
    return endpoint_list(p, layout(p["root"]), hashed, tokens)


# --- configuration ---------------------------------------------------------------

SOCKET = "@buildset-registry/srv/bsr/proxy"


def test_proxy_config_is_a_pull_through_cache_on_its_socket_without_tls_or_login():
    config = yaml.safe_load(render_config("proxy", SOCKET, "https://up.example", "u", TRICKY))
    assert config == registry_config("proxy", SOCKET, "https://up.example", "u", TRICKY)
    assert config["http"]["net"] == "unix" and config["http"]["addr"] == SOCKET
    assert "tls" not in config["http"] and "auth" not in config
    assert config["storage"]["filesystem"]["rootdirectory"] == CONTAINER_DATA
    assert config["proxy"] == {"remoteurl": "https://up.example", "username": "u", "password": TRICKY}


def test_proxy_without_credentials_has_no_credential_keys():
    config = yaml.safe_load(render_config("proxy", SOCKET, "https://up.example"))
    assert config["proxy"] == {"remoteurl": "https://up.example"}


def test_push_config_is_a_plain_registry_without_upstream_secrets():
    config = yaml.safe_load(render_config("push", SOCKET, "https://up.example", "u", "secret"))
    assert "proxy" not in config
    assert "secret" not in render_config("push", SOCKET, "https://up.example", "u", "secret")


def test_registry_config_rejects_unknown_kind_and_proxy_without_upstream():
    with pytest.raises(ValueError):
        registry_config("mirror", SOCKET, "https://up.example")
    with pytest.raises(ValueError):
        registry_config("proxy", SOCKET, "")


def test_socket_names_are_per_root_and_kind_and_fit_an_abstract_socket():
    assert socket_name("/srv/bsr", "push") == "@buildset-registry/srv/bsr/push"
    assert socket_name("/srv/bsr", "push") != socket_name("/srv/other", "push")
    long = socket_name("/" + "x" * 200, "proxy")
    assert long.startswith("@buildset-registry-") and len(long) <= 100


# --- the containers, as data ---------------------------------------------------------


def test_three_containers_in_start_order_the_front_last():
    p = params()
    kinds = [(e.kind, e.name) for e in endpoints(p)]
    assert kinds == [("push", "buildset_registry"), ("proxy", "buildset_proxy"), ("front", "buildset_front")]


def test_registries_keep_their_data_apart_and_hold_no_public_port():
    p = params()
    paths = layout(p["root"])
    push, proxy, front = endpoints(p)
    assert push.binds == ("%s:%s:rw" % (paths["data_dir"], CONTAINER_DATA),)
    assert proxy.binds == ("%s:%s:rw" % (paths["cache_dir"], CONTAINER_DATA),)
    assert push.ports == proxy.ports == ()
    assert front.ports == (("port", 5000), ("push_port", 5001))
    assert front.binds == ("%s:%s:ro" % (paths["certs_dir"], CONTAINER_CERTS),)
    assert front.served == ("cert", "key") and push.served == proxy.served == ()


def test_object_storage_mounts_no_data_directory():
    store = {"s3": {"bucket": "b", "region": "r", "secretkey": "K"}}
    push, proxy, _ = endpoints(params(object_storage=store))
    assert push.binds == proxy.binds == ()


def test_front_config_dials_both_sockets_and_holds_the_hash_not_the_password():
    p = params()
    front = endpoints(p)[2]
    config = json.loads(front.config)
    text = json.dumps(config)
    assert "unix/" + socket_name("/srv/bsr", "push") in text
    assert "unix/" + socket_name("/srv/bsr", "proxy") in text
    # The login checks Basic credentials against the bcrypt hash (Caddy takes
    # it base64-encoded) and tokens against their HMACs.
    assert base64.b64encode(HASH.encode()).decode() in text and TOKENS["write"] in text and '"pw"' not in text


def test_desired_spec_mounts_each_config_read_only_and_keeps_secrets_out():
    p = params(proxy_password="s3cret")
    paths = layout(p["root"])
    push, proxy, front = endpoints(p)
    spec = desired_spec(proxy, "sha256:abc")
    assert "%s:%s:ro" % (paths["proxy_config"], CONTAINER_REGISTRY_CONFIG) in spec["binds"]
    assert spec["env"] == [] and spec["ports"] == []
    front_spec = desired_spec(front, "sha256:caddy")
    assert "%s:%s:ro" % (paths["front_config"], CONTAINER_FRONT_CONFIG) in front_spec["binds"]
    assert front_spec["entrypoint"] == ["caddy"] and front_spec["ports"] == [5000, 5001]
    for each in (spec, front_spec):
        args = create_args(each, "name", "image", spec_hash(each))
        hc = host_config_args(each)
        visible = json.dumps([args, hc])
        assert "s3cret" not in visible and TOKENS["write"] not in visible and HASH not in visible
        assert hc["network_mode"] == "host" and hc["restart_policy"] == {"Name": "always"}
        assert args["labels"][SPEC_LABEL] == spec_hash(each)
    assert create_args(front_spec, "f", "caddy:2", "h")["labels"][PORT_LABEL] == "5000,5001"
    assert create_args(front_spec, "f", "caddy:2", "h")["entrypoint"] == ["caddy"]
    assert "entrypoint" not in create_args(spec, "p", "registry:2", "h")


def test_existing_of_reads_the_ports_label():
    summary = {"Id": "c1", "State": "running", "Labels": {SPEC_LABEL: "h", PORT_LABEL: "5000,5001"}}
    assert existing_of(summary) == {"id": "c1", "status": "running", "spec_hash": "h", "ports": [5000, 5001]}
    assert existing_of({"Id": "c2", "Labels": {}})["ports"] == []


def test_spec_hash_is_stable_and_follows_every_input():
    p = params()
    proxy = endpoints(p)[1]
    spec = desired_spec(proxy, "sha256:abc")
    assert spec_hash(spec) == spec_hash(dict(reversed(list(spec.items()))))
    others = [
        desired_spec(proxy, "sha256:def"),
        desired_spec(endpoints(params(proxy_remote_url="https://other"))[1], "sha256:abc"),
        desired_spec(endpoints(params(root="/srv/other"))[1], "sha256:abc"),
        desired_spec(endpoints(params(port=5002))[2], "sha256:abc"),
    ]
    assert len({spec_hash(spec)} | {spec_hash(o) for o in others}) == 5


def test_front_waits_for_the_challenge_on_both_ports_and_the_push_registry_through_it():
    push, _, front = endpoints(params())
    assert [(c.port, c.expect, bool(c.authorization)) for c in checks(front, TOKENS)] == [
        (5000, 401, False),
        (5001, 401, False),
        (5000, 200, True),
    ]
    assert [(c.socket, c.expect) for c in checks(push, TOKENS)] == [(push.socket, 200)]


# --- decisions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "existing, desired, files, action",
    [
        (None, "h", False, "created"),
        ({"status": "running", "spec_hash": "h"}, "h", False, "unchanged"),
        ({"status": "running", "spec_hash": "h"}, "h", True, "restarted"),
        ({"status": "running", "spec_hash": "old"}, "h", False, "recreated"),
        ({"status": "running", "spec_hash": "old"}, "h", True, "recreated"),
        ({"status": "exited", "spec_hash": "h"}, "h", True, "started"),
        ({"status": "created", "spec_hash": "h"}, "h", False, "started"),
        ({"status": "restarting", "spec_hash": "h"}, "h", False, "recreated"),
        ({"status": "dead", "spec_hash": "h"}, "h", False, "recreated"),
        ({"status": "running", "spec_hash": "h"}, None, False, "recreated"),
        ({"status": "running", "spec_hash": None}, "h", False, "recreated"),
    ],
)
def test_decide_action(existing, desired, files, action):
    assert decide_action(existing, desired, files) == action


def test_files_digest_and_files_changed():
    a = files_digest({"cert": b"C", "key": b"K", "htpasswd": b"zuul:x"})
    b = files_digest({"cert": b"C", "key": b"K", "htpasswd": b"zuul:y"})
    missing = files_digest({"cert": b"C", "key": b"K", "htpasswd": None})
    assert len({a, b, missing}) == 3
    served = {"p": {"id": "c1", "files": a}}
    assert not files_changed(served, "p", "c1", a)
    assert files_changed(served, "p", "c1", b)
    assert files_changed(served, "p", "c2", a)  # another container loaded them
    assert files_changed({}, "p", "c1", a)  # no record: restart to be sure


IMAGES = {"registry:2": "sha256:img", "caddy:2": "sha256:caddy"}
FILES = {"cert": b"C", "key": b"K"}


def _settled(p, contents=FILES):
    """Containers, state file and config files as one run of p leaves them."""
    plans = plan_endpoints(endpoints(p), IMAGES, {}, {}, contents, {})
    found, served, on_disk = {}, {}, {}
    for item in plans:
        found[item.name] = {"id": "id-" + item.kind, "status": "running", "spec_hash": item.hash, "ports": []}
        served[item.name] = {"id": "id-" + item.kind, "files": item.served_digest}
        on_disk[item.endpoint.config_path] = item.endpoint.config
    return found, served, on_disk


def actions(plans):
    return {item.kind: item.action for item in plans}


def test_plan_first_run_creates_all_three_and_writes_every_config():
    plans = plan_endpoints(endpoints(params()), IMAGES, {}, {}, FILES, {})
    assert actions(plans) == {"push": "created", "proxy": "created", "front": "created"}
    assert all(item.stale_config for item in plans)


def test_plan_second_run_changes_nothing():
    p = params()
    found, served, on_disk = _settled(p)
    plans = plan_endpoints(endpoints(p), IMAGES, found, served, FILES, on_disk)
    assert actions(plans) == {"push": "unchanged", "proxy": "unchanged", "front": "unchanged"}
    assert not any(item.stale_config for item in plans)


def test_plan_restarts_only_the_front_when_the_certificate_changed():
    p = params()
    found, served, on_disk = _settled(p)
    plans = plan_endpoints(endpoints(p), IMAGES, found, served, dict(FILES, cert=b"new"), on_disk)
    assert actions(plans) == {"push": "unchanged", "proxy": "unchanged", "front": "restarted"}


def test_plan_recreates_only_the_proxy_for_a_new_upstream():
    p = params()
    found, served, on_disk = _settled(p)
    plans = plan_endpoints(endpoints(params(proxy_remote_url="https://mirror.example")), IMAGES, found, served,
                           FILES, on_disk)  # fmt: skip
    assert actions(plans) == {"push": "unchanged", "proxy": "recreated", "front": "unchanged"}
    assert [item.kind for item in plans if item.stale_config] == ["proxy"]


def test_plan_recreates_the_front_for_a_new_password_or_anonymous_pull():
    p = params()
    found, served, on_disk = _settled(p)
    for new in (endpoints(p, tokens=derive_tokens("zuul", "other")), endpoints(params(anonymous_pull=True))):
        plans = plan_endpoints(new, IMAGES, found, served, FILES, on_disk)
        assert actions(plans) == {"push": "unchanged", "proxy": "unchanged", "front": "recreated"}


def test_plan_recreates_the_registries_for_a_new_image_and_restarts_for_an_edited_config():
    p = params()
    found, served, on_disk = _settled(p)
    plans = plan_endpoints(endpoints(p), dict(IMAGES, **{"registry:2": "sha256:new"}), found, served, FILES, on_disk)
    assert actions(plans) == {"push": "recreated", "proxy": "recreated", "front": "unchanged"}
    edited = dict(on_disk, **{layout(p["root"])["front_config"]: "edited"})
    plans = plan_endpoints(endpoints(p), IMAGES, found, served, FILES, edited)
    assert actions(plans) == {"push": "unchanged", "proxy": "unchanged", "front": "restarted"}


def test_ports_to_check_skips_ports_our_running_containers_hold():
    ports = {"port": 5000, "push_port": 5001}
    assert ports_to_check({"f": {"status": "running", "ports": [5000, 5001]}}, ports) == []
    assert ports_to_check({"f": {"status": "running", "ports": [5000]}}, ports) == [("push_port", 5001)]
    assert ports_to_check({"f": {"status": "exited", "ports": [5000, 5001]}}, ports) == list(ports.items())
    assert ports_to_check({"f": {"status": "running", "ports": [5001, 5000]}}, {"port": 5001, "push_port": 5000}) == []


def test_port_free_sees_a_loopback_listener():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        free, cause = port_free(port)
        assert free is False and "in use" in cause
    assert port_free(port) == (True, None)


def test_host_port_brackets_ipv6():
    assert host_port("192.0.2.1", 5000) == "192.0.2.1:5000"
    assert host_port("::1", 5000) == "[::1]:5000"
    assert host_port("registry.example", 5001) == "registry.example:5001"


@pytest.mark.parametrize(
    "over, words",
    [
        (dict(port=0), "buildset_registry_port"),
        (dict(push_port=70000), "buildset_registry_push_port"),
        (dict(push_port=5000), "two different ports"),
        (dict(push_container="buildset_proxy"), "different names"),
        (dict(front_container="buildset_registry"), "different names"),
        (dict(front_image=""), "buildset_registry_front_image"),
        (dict(image="registry :2"), "buildset_registry_image"),
        (dict(anonymous_pull="yes"), "buildset_registry_anonymous_pull"),
        (dict(proxy_remote_url="registry-1.docker.io"), "buildset_registry_proxy_remote_url"),
        (dict(wait_timeout=0), "buildset_registry_wait_timeout"),
    ],
)
def test_validate_names_the_variable(over, words):
    with pytest.raises(RegistryError) as exc:
        validate(params(**over))
    assert words in exc.value.render(role_variables())


def test_validate_absent_needs_no_upstream():
    validate(params(state="absent", proxy_remote_url=None))


# --- diagnostics ------------------------------------------------------------------------


def test_log_tail_drops_the_goroutine_dump_and_repeated_fields():
    lines = log_tail(PANIC_LOG + PANIC_LOG)
    assert lines[-1].startswith("panic: Get")
    assert not any("goroutine" in line or "main.go" in line for line in lines)
    assert not any("instance.id" in line or "No HTTP secret" in line for line in lines)
    assert len(log_tail("\n".join("line %d" % i for i in range(100)))) == 20


def role_words(*args):
    """diagnose()'s sentence as the role's module words it."""
    return RegistryError(None, diagnose(*args)).render(role_variables())


def test_diagnose_upstream_unreachable():
    msg = role_words(PANIC_LOG, "proxy", "http://127.0.0.1:15099")
    assert "upstream http://127.0.0.1:15099 is unreachable" in msg
    assert "connection refused" in msg
    assert "buildset_registry_proxy_remote_url" in msg


def test_diagnose_upstream_name_not_resolved():
    log = 'panic: Get "https://nope.invalid/v2/": dial tcp: lookup nope.invalid: no such host\n'
    assert "unreachable" in diagnose(log, "proxy", "https://other.example")


def test_diagnose_address_in_use_names_the_port_variables_for_the_front_and_root_for_a_registry():
    log = '{"level":"error","msg":"listening on :5001: listen tcp :5001: bind: address already in use"}\n'
    msg = role_words(log, "front")
    assert "buildset_registry_port" in msg and "buildset_registry_push_port" in msg
    log = 'time="x" level=fatal msg="listen unix @/r/push: bind: address already in use"\n'
    assert "buildset_registry_root" in role_words(log, "push")


def test_diagnose_certificate_image_and_generic():
    cert = '{"level":"error","msg":"loading certificates: open /certs/domain.key: no such file or directory"}\n'
    assert "/r/certs/domain.crt" in diagnose(cert, "front", cert_path="/r/certs/domain.crt")
    bad_pair = "tls: private key does not match public key\n"
    assert "certificate" in diagnose(bad_pair, "front")
    no_caddy = 'exec: "caddy": executable file not found in $PATH\n'
    assert "buildset_registry_front_image" in role_words(no_caddy, "front")
    assert diagnose("", "push") == "no cause in the log"


def test_diagnose_proxy_that_never_listens_points_at_the_upstream():
    log = 'time="x" level=info msg="Starting cached object TTL expiration scheduler..."\n'
    msg = role_words(log, "proxy", "http://127.0.0.1:15098")
    assert "http://127.0.0.1:15098" in msg and "buildset_registry_proxy_remote_url" in msg


def test_root_cause_digs_out_the_os_error():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError("Max retries exceeded (wrapped)") from inner
    except RuntimeError as outer:
        assert root_cause(outer) == "Connection refused"
    assert root_cause(ValueError("plain")) == "plain"


# --- files -------------------------------------------------------------------------------


def test_write_file_makes_0600_file_in_0700_dir(tmp_path):
    paths = layout(str(tmp_path / "root"))
    write_file(paths["served_state"], render_served_state({"p": {"id": "c", "files": "f"}}), 0o600)
    assert stat.S_IMODE(os.stat(paths["root"]).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(paths["config_dir"]).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(paths["served_state"]).st_mode) == 0o600
    with open(paths["served_state"]) as f:
        assert parse_served_state(f.read()) == {"p": {"id": "c", "files": "f"}}
    assert parse_served_state(None) == {}
    assert parse_served_state("{not json") == {}


def test_write_file_reports_a_failed_write_naming_the_root_option(tmp_path):
    # A directory in the way of the file: the rename fails with an OSError.
    target = tmp_path / "root" / "config" / "served.json"
    target.mkdir(parents=True)
    with pytest.raises(RegistryError) as exc:
        write_file(str(target), "{}", 0o600)
    assert exc.value.option == "root"
    assert "cannot write %s (Is a directory)" % target in str(exc.value)
    assert os.listdir(str(target)) == [] and os.listdir(str(target.parent)) == ["served.json"]


# --- Docker connection and the module's arguments --------------------------------------


def test_connect_fails_fast_on_an_engine_that_does_not_answer(monkeypatch):
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = "tcp://127.0.0.1:%d" % listener.getsockname()[1]
        monkeypatch.setenv("DOCKER_HOST", url)
        start = time.monotonic()
        with pytest.raises(RegistryError, match="Docker engine not reachable at %s" % url):
            Engine.connect(timeout=0.5)
        assert time.monotonic() - start < 3


def test_module_rejects_an_unknown_state(capsys):
    out = run_module(capsys, {"root": "/tmp/x", "host": "h", "state": "running"})
    assert out["failed"] and "state" in out["msg"] and "present, absent" in out["msg"]


def test_module_needs_root_and_host(capsys):
    out = run_module(capsys, {"state": "absent"})
    assert out["failed"] and "host" in out["msg"] and "root" in out["msg"]


def test_module_needs_the_upstream_and_the_user_when_present(capsys):
    out = run_module(capsys, {"root": "/tmp/x", "host": "h"})
    assert out["failed"] and "proxy_remote_url" in out["msg"] and "username" in out["msg"]


def test_module_reports_an_unreachable_engine_fast_without_secrets(capsys, monkeypatch, tmp_path):
    sock = str(tmp_path / "no-docker.sock")
    monkeypatch.setenv("DOCKER_HOST", "unix://" + sock)
    start = time.monotonic()
    out = run_module(
        capsys,
        {
            "root": str(tmp_path / "root"),
            "host": "127.0.0.1",
            "port": "15000",
            "proxy_remote_url": "http://127.0.0.1:15050",
            "username": "zuul",
            "proxy_password": "upstream-s3cret",
        },
    )
    assert time.monotonic() - start < 3
    assert out["failed"] and out["changed"] is False
    assert out["msg"].startswith("Docker engine not reachable at unix://%s: " % sock)
    assert "service docker start" in out["msg"]
    assert "upstream-s3cret" not in json.dumps(out)
    assert not os.path.exists(str(tmp_path / "root"))


def test_module_refuses_equal_ports_before_calling_docker(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "unix://" + str(tmp_path / "no-docker.sock"))
    out = run_module(
        capsys,
        {
            "root": str(tmp_path),
            "host": "h",
            "port": 5000,
            "push_port": 5000,
            "proxy_remote_url": "https://up.example",
            "username": "zuul",
        },
    )
    # The part module names its own options.
    assert out["failed"] and "port and push_port are both 5000" in out["msg"]
