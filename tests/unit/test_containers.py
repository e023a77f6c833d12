"""Unit tests of the containers module's decisions and argument handling.

No Docker here: the functions take plain data. The module's argument tests
point DOCKER_HOST at a socket that does not exist, which fails before any
container is touched.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import time

import pytest
import yaml
from module_runner import load_library, option_params, run_main

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.layout import (
    CONTAINER_CONFIG,
    CONTAINER_DATA,
    CONTAINER_HTPASSWD,
    layout,
    write_file,
)
from ansible.module_utils.buildset_registry.common.options import part_spec, role_variables
from ansible.module_utils.buildset_registry.registry.config import registry_config, render_config
from ansible.module_utils.buildset_registry.registry.containers import validate
from ansible.module_utils.buildset_registry.registry.diagnose import diagnose, log_tail
from ansible.module_utils.buildset_registry.registry.engine import Engine, root_cause
from ansible.module_utils.buildset_registry.registry.ready import port_free
from ansible.module_utils.buildset_registry.registry.spec import (
    PORT_LABEL,
    SPEC_LABEL,
    create_args,
    decide_action,
    desired_spec,
    files_changed,
    files_digest,
    host_config_args,
    host_port,
    parse_served_state,
    plan_endpoints,
    ports_to_check,
    render_served_state,
    spec_hash,
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


def params(**over):
    given = dict(root="/srv/bsr", host="127.0.0.1", proxy_remote_url="https://registry-1.docker.io")
    return option_params(part_spec("containers"), **dict(given, **over))


# --- configuration ---------------------------------------------------------------


def test_proxy_config_is_a_tls_htpasswd_pull_through_cache():
    config = yaml.safe_load(render_config("proxy", 5000, "https://up.example", "u", TRICKY))
    assert config == registry_config("proxy", 5000, "https://up.example", "u", TRICKY)
    assert config["http"]["addr"] == ":5000"
    assert config["http"]["tls"]["minimumtls"] == "tls1.2"
    assert config["auth"]["htpasswd"]["path"] == CONTAINER_HTPASSWD
    assert config["storage"]["filesystem"]["rootdirectory"] == CONTAINER_DATA
    assert config["proxy"] == {"remoteurl": "https://up.example", "username": "u", "password": TRICKY}


def test_proxy_without_credentials_has_no_credential_keys():
    config = yaml.safe_load(render_config("proxy", 5000, "https://up.example"))
    assert config["proxy"] == {"remoteurl": "https://up.example"}


def test_push_config_is_a_plain_registry_on_its_port():
    config = yaml.safe_load(render_config("push", 5001, "https://up.example", "u", "secret"))
    assert "proxy" not in config
    assert config["http"]["addr"] == ":5001"
    assert "secret" not in render_config("push", 5001, "https://up.example", "u", "secret")


def test_registry_config_rejects_unknown_kind_and_proxy_without_upstream():
    with pytest.raises(ValueError):
        registry_config("mirror", 5000, "https://up.example")
    with pytest.raises(ValueError):
        registry_config("proxy", 5000, "")


# --- spec and hash ----------------------------------------------------------------


def test_desired_spec_mounts_the_htpasswd_file_not_the_auth_dir_and_keeps_secrets_out():
    paths = layout("/srv/bsr")
    text = render_config("proxy", 5000, "https://up.example", "u", "s3cret")
    spec = desired_spec("proxy", 5000, "sha256:abc", text, paths)
    sources = [b.split(":")[0] for b in spec["binds"]]
    assert paths["htpasswd"] in sources
    assert paths["auth_dir"] not in sources
    assert "%s:%s:ro" % (paths["proxy_config"], CONTAINER_CONFIG) in spec["binds"]
    assert "%s:%s:rw" % (paths["data_dir"], CONTAINER_DATA) in spec["binds"]
    assert spec["env"] == ["REGISTRY_HTTP_ADDR=:5000"]
    args = create_args(spec, "buildset_proxy", "registry:2", spec_hash(spec))
    hc = host_config_args(spec)
    visible = json.dumps([args, hc])
    assert "s3cret" not in visible
    assert hc["network_mode"] == "host" and hc["restart_policy"] == {"Name": "always"}
    assert args["labels"][SPEC_LABEL] == spec_hash(spec)
    assert args["labels"][PORT_LABEL] == "5000"


def test_spec_hash_is_stable_and_follows_every_input():
    paths = layout("/srv/bsr")
    text = render_config("proxy", 5000, "https://up.example")
    spec = desired_spec("proxy", 5000, "sha256:abc", text, paths)
    assert spec_hash(spec) == spec_hash(dict(reversed(list(spec.items()))))
    others = [
        desired_spec("proxy", 5000, "sha256:def", text, paths),
        desired_spec("proxy", 5000, "sha256:abc", render_config("proxy", 5000, "https://other"), paths),
        desired_spec("proxy", 5002, "sha256:abc", text, paths),
        desired_spec("proxy", 5000, "sha256:abc", text, layout("/srv/other")),
    ]
    assert len({spec_hash(spec)} | {spec_hash(o) for o in others}) == 5


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


def _settled(p, digest="files-1"):
    """Containers, state file and config files as one run of p leaves them."""
    paths = layout(p["root"])
    plan = plan_endpoints(p, paths, "sha256:img", {}, {}, digest, {})
    found, served = {}, {}
    for kind, item in plan.items():
        found[item.name] = {"id": "id-" + kind, "status": "running", "spec_hash": item.hash, "port": item.port}
        served[item.name] = {"id": "id-" + kind, "files": digest}
    return paths, found, served, {kind: item.config for kind, item in plan.items()}


def actions(plan):
    return {kind: item.action for kind, item in plan.items()}


def test_plan_first_run_creates_both_and_writes_both_configs():
    p = params()
    plan = plan_endpoints(p, layout(p["root"]), "sha256:img", {}, {}, "files-1", {})
    assert actions(plan) == {"proxy": "created", "push": "created"}
    assert all(item.stale_config for item in plan.values())


def test_plan_second_run_changes_nothing():
    p = params()
    paths, found, served, on_disk = _settled(p)
    plan = plan_endpoints(p, paths, "sha256:img", found, served, "files-1", on_disk)
    assert actions(plan) == {"proxy": "unchanged", "push": "unchanged"}
    assert not any(item.stale_config for item in plan.values())


def test_plan_restarts_both_when_a_served_file_changed():
    p = params()
    paths, found, served, on_disk = _settled(p)
    plan = plan_endpoints(p, paths, "sha256:img", found, served, "files-2", on_disk)
    assert actions(plan) == {"proxy": "restarted", "push": "restarted"}


def test_plan_recreates_only_the_proxy_for_a_new_upstream():
    p = params()
    paths, found, served, on_disk = _settled(p)
    plan = plan_endpoints(
        params(proxy_remote_url="https://mirror.example"), paths, "sha256:img", found, served, "files-1", on_disk
    )
    assert actions(plan) == {"proxy": "recreated", "push": "unchanged"}
    assert plan["proxy"].stale_config and not plan["push"].stale_config


def test_plan_recreates_both_for_a_new_image_and_restarts_for_an_edited_config():
    p = params()
    paths, found, served, on_disk = _settled(p)
    plan = plan_endpoints(p, paths, "sha256:new", found, served, "files-1", on_disk)
    assert actions(plan) == {"proxy": "recreated", "push": "recreated"}
    plan = plan_endpoints(p, paths, "sha256:img", found, served, "files-1", dict(on_disk, push="edited"))
    assert actions(plan) == {"proxy": "unchanged", "push": "restarted"}


def test_ports_to_check_skips_ports_our_running_containers_hold():
    ports = {"proxy": 5000, "push": 5001}
    assert ports_to_check({"p": {"status": "running", "port": 5000}}, ports) == [("push", 5001)]
    swapped = {"p": {"status": "running", "port": 5000}, "q": {"status": "running", "port": 5001}}
    assert ports_to_check(swapped, {"proxy": 5001, "push": 5000}) == []
    kept = {"p": {"status": "running", "port": 5000}, "q": {"status": "exited", "port": 5001}}
    assert ports_to_check(kept, ports) == [("push", 5001)]


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
    msg = role_words(PANIC_LOG, "proxy", 15000, "http://127.0.0.1:15099")
    assert "upstream http://127.0.0.1:15099 is unreachable" in msg
    assert "connection refused" in msg
    assert "buildset_registry_proxy_remote_url" in msg


def test_diagnose_upstream_name_not_resolved():
    log = 'panic: Get "https://nope.invalid/v2/": dial tcp: lookup nope.invalid: no such host\n'
    assert "unreachable" in diagnose(log, "proxy", 5000, "https://other.example")


def test_diagnose_address_in_use_names_the_port_variable():
    log = 'time="x" level=fatal msg="listen tcp :5001: bind: address already in use"\n'
    msg = role_words(log, "push", 5001)
    assert "5001" in msg and "buildset_registry_push_port" in msg


def test_diagnose_certificate_and_htpasswd_and_generic():
    cert = 'time="x" level=fatal msg="open /certs/domain.key: no such file or directory"\n'
    assert "certificate" in diagnose(cert, "push", 5001, cert_path="/r/certs/domain.crt")
    bad_pair = "tls: private key does not match public key\n"
    assert "certificate" in diagnose(bad_pair, "push", 5001)
    htpasswd = 'time="x" level=fatal msg="error opening htpasswd: open /auth/htpasswd: no such file or directory"\n'
    assert "/r/auth/htpasswd" in diagnose(htpasswd, "push", 5001, htpasswd_path="/r/auth/htpasswd")
    assert diagnose("", "push", 5001) == "no cause in the log"


def test_diagnose_proxy_that_never_listens_points_at_the_upstream():
    log = 'time="x" level=info msg="Starting cached object TTL expiration scheduler..."\n'
    msg = role_words(log, "proxy", 5000, "http://127.0.0.1:15098")
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


def test_module_needs_the_upstream_when_present(capsys):
    out = run_module(capsys, {"root": "/tmp/x", "host": "h"})
    assert out["failed"] and "proxy_remote_url" in out["msg"]


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
        },
    )
    # The part module names its own options.
    assert out["failed"] and "port and push_port are both 5000" in out["msg"]
