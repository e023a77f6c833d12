"""The upstream probe and what the role does with a proxy waiting for its
upstream (issue 24): classification, warnings, restart policies, plans, and
wait_ready giving up on one container. The probe runs against servers on
loopback only; a name that does not resolve is classified from the error
itself (a lookup would leave the machine)."""

import contextlib
import http.server
import socket
import ssl
import threading

import pytest
from helpers import containers_params

from ansible.module_utils.buildset_registry.common.errors import Outcome
from ansible.module_utils.buildset_registry.common.layout import layout
from ansible.module_utils.buildset_registry.common.options import role_variables
from ansible.module_utils.buildset_registry.registry import upstream
from ansible.module_utils.buildset_registry.registry.diagnose import upstream_panic
from ansible.module_utils.buildset_registry.registry.endpoints import endpoint_list
from ansible.module_utils.buildset_registry.registry.engine import host_config_args, restart_policy
from ansible.module_utils.buildset_registry.registry.login import derive_tokens
from ansible.module_utils.buildset_registry.registry.plan import (
    PODMAN_PROXY_POLICY,
    decide_action,
    desired_spec,
    plan_endpoints,
)
from ansible.module_utils.buildset_registry.registry.plan import restart_policy as policy_of
from ansible.module_utils.buildset_registry.registry.ready import Check, Started, wait_ready

HASH = "$2y$04$" + "a" * 53
TOKENS = derive_tokens("zuul", "pw")
PANIC = 'panic: Get "http://127.0.0.1:9/v2/": dial tcp 127.0.0.1:9: connect: connection refused\n'


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(handler):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % httpd.server_address[1], httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def handler(status, challenge=None, accept=None, seen=None):
    """A handler answering status (with challenge) to everything, and 200
    to requests whose Authorization is accept."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if seen is not None:
                seen.append((self.path, self.headers.get("Authorization")))
            ok = accept is not None and self.headers.get("Authorization") == accept
            self.send_response(200 if ok else status)
            if challenge and not ok:
                self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Handler


def test_classify_names_each_cause():
    assert upstream.classify(socket.gaierror(-2, "Name or service not known")) == upstream.UNRESOLVED
    assert upstream.classify(ConnectionRefusedError(111, "Connection refused")) == upstream.REFUSED
    assert upstream.classify(socket.timeout("timed out")) == upstream.TIMEOUT
    assert upstream.classify(ssl.SSLError(1, "WRONG_VERSION_NUMBER")) == upstream.TLS
    assert upstream.classify(ssl.SSLCertVerificationError(1, "self-signed")) == upstream.TLS
    assert upstream.classify(OSError(113, "No route to host")) == upstream.OTHER


def test_parse_challenge_reads_the_bearer_realm_and_quoted_commas():
    scheme, params = upstream.parse_challenge('Bearer realm="https://auth.example/token",service="a,b",scope="x"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "a,b", "scope": "x"}
    assert upstream.parse_challenge(None) == ("", {})


def test_probe_refused_and_silent_upstreams_fast():
    cause, detail = upstream.probe("http://127.0.0.1:%d" % free_port(), timeout=2)
    assert cause == upstream.REFUSED and "refused" in detail.lower()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        cause, detail = upstream.probe("http://127.0.0.1:%d/" % listener.getsockname()[1], timeout=0.5)
    assert (cause, detail) == (upstream.TIMEOUT, "no answer within 0.5 s")


def test_probe_tls_against_plain_http_is_a_tls_failure():
    with server(handler(200)) as (url, _):
        cause, _ = upstream.probe(url.replace("http://", "https://"), timeout=2)
    assert cause == upstream.TLS


def test_probe_accepts_any_answer_without_credentials():
    with server(handler(401, 'Bearer realm="http://127.0.0.1:9/token"')) as (url, _):
        assert upstream.probe(url, timeout=2) is None


def test_probe_checks_the_credentials_at_the_token_realm():
    seen = []
    with server(handler(401, None, accept="Basic Y2k6cmlnaHQ=", seen=seen)) as (realm_url, _):
        challenge = 'Bearer realm="%s/token",service="stand-in"' % realm_url
        with server(handler(401, challenge)) as (url, _):
            assert upstream.probe(url, "ci", "right", timeout=2) is None
            cause, detail = upstream.probe(url, "ci", "wrong", timeout=2)
    assert cause == upstream.CREDENTIALS and detail == "%s/token?service=stand-in answered 401" % realm_url
    assert seen[0] == ("/token?service=stand-in", "Basic Y2k6cmlnaHQ=")


def test_probe_checks_basic_credentials_at_v2():
    with server(handler(401, 'Basic realm="x"', accept="Basic Y2k6cmlnaHQ=")) as (url, _):
        assert upstream.probe(url, "ci", "right", timeout=2) is None
        assert upstream.probe(url, "ci", "wrong", timeout=2)[0] == upstream.CREDENTIALS


@pytest.mark.parametrize("cause", [upstream.REFUSED, upstream.UNRESOLVED, upstream.TIMEOUT, upstream.TLS])
def test_warning_names_the_url_the_variable_and_the_cause(cause):
    msg = upstream.warning("p", "https://up.example", cause, "why").render(role_variables())
    assert "https://up.example" in msg and "buildset_registry_proxy_remote_url" in msg and "why" in msg
    assert upstream._WHAT[cause].split(" %")[0] in msg
    assert "404" in msg and "buildset_registry_port" in msg
    assert "back-off" in msg and "waiter" in msg
    podman = upstream.warning("p", "u", cause, "d", podman=True).render(role_variables())
    assert "Podman does not retry" in podman and "waiter" in podman
    other = upstream.warning("p", "https://quay.io", cause, "d", option="namespaces").render(role_variables())
    assert "buildset_registry_namespaces" in other and "proxy_remote_url" not in other


def test_warning_for_credentials_names_the_credential_variables():
    msg = upstream.warning("p", "https://up.example", upstream.CREDENTIALS, "401").render(role_variables())
    assert "buildset_registry_proxy_username" in msg and "buildset_registry_proxy_password" in msg


def test_check_reports_each_proxy_and_warns_only_for_the_unusable(monkeypatch):
    p = containers_params(proxy_remote_url="http://127.0.0.1:9", proxy_password="s3cret")
    endpoints = endpoint_list(p, layout(p["root"]), HASH, TOKENS)
    asked = []

    def probe_all(targets):
        asked.extend(targets)
        return {name: (upstream.REFUSED, "Connection refused") for name, *_ in targets}

    monkeypatch.setattr(upstream, "probe_all", probe_all)
    outcome = Outcome()
    waiting = upstream.check(endpoints, False, outcome)
    proxy = p["proxy_container"]
    # One per proxy (issue 25 adds one per namespace), each on its own.
    proxies = {e.name for e in endpoints if e.upstream}
    assert proxy in proxies and waiting == proxies
    assert {t[0] for t in asked} == proxies
    assert ("http://127.0.0.1:9", "", "s3cret") in {t[1:] for t in asked}
    assert outcome.data["upstreams"][proxy]["cause"] == upstream.REFUSED
    assert len(outcome.data["warnings"]) == len(proxies)
    assert "s3cret" not in str(outcome.data)

    monkeypatch.setattr(upstream, "probe_all", lambda targets: {t[0]: None for t in targets})
    outcome = Outcome()
    assert upstream.check(endpoints, False, outcome) == frozenset()
    assert "warnings" not in outcome.data and outcome.data["upstreams"][proxy]["usable"]


def test_restart_policy_backs_off_under_podman_by_bounding_the_proxy():
    assert policy_of("proxy", False) == policy_of("push", True) == policy_of("front", True) == "always"
    assert policy_of("proxy", True) == PODMAN_PROXY_POLICY
    assert restart_policy("always") == {"Name": "always"}
    assert restart_policy("on-failure:2") == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_docker_specs_keep_their_hash_and_podman_proxies_get_their_policy():
    p = containers_params()
    proxy = endpoint_list(p, layout(p["root"]), HASH, TOKENS)[1]
    assert desired_spec(proxy, "sha256:a")["restart_policy"] == "always"
    spec = desired_spec(proxy, "sha256:a", PODMAN_PROXY_POLICY)
    assert host_config_args(spec)["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


@pytest.mark.parametrize("status", ["running", "restarting", "exited", "created"])
def test_a_proxy_waiting_for_its_upstream_is_no_change(status):
    existing = {"id": "c", "status": status, "spec_hash": "h"}
    assert decide_action(existing, "h", False, waiting=True) == "unchanged"
    # A new spec or configuration still applies.
    assert decide_action(existing, "other", False, waiting=True) == "recreated"
    assert decide_action(existing, "h", True, waiting=True) != "unchanged"


def test_a_stopped_proxy_starts_again_once_its_upstream_answers():
    assert decide_action({"id": "c", "status": "exited", "spec_hash": "h"}, "h", False) == "started"
    assert decide_action({"id": "c", "status": "restarting", "spec_hash": "h"}, "h", False) == "recreated"


def test_plan_endpoints_passes_waiting_and_the_engine_on():
    p = containers_params()
    endpoints = endpoint_list(p, layout(p["root"]), HASH, TOKENS)
    images = {p["image"]: "sha256:a", p["front_image"]: "sha256:b"}
    on_disk = {e.config_path: e.config for e in endpoints}
    first = plan_endpoints(endpoints, images, {}, {}, {}, on_disk, podman=True)
    found = {item.name: {"id": item.name, "status": "exited", "spec_hash": item.hash, "ports": []} for item in first}
    served = {item.name: {"id": item.name, "files": item.served_digest} for item in first}
    plans = plan_endpoints(endpoints, images, found, served, {}, on_disk, True, {p["proxy_container"]})
    assert [item.action for item in plans] == [
        "unchanged" if e.name == p["proxy_container"] else "started" for e in endpoints
    ]
    for item in plans:
        assert item.spec["restart_policy"] == (PODMAN_PROXY_POLICY if item.kind.startswith("proxy") else "always")


def test_upstream_panic_is_told_from_other_panics():
    assert upstream_panic("time=... level=info\n" + PANIC, "proxy", "http://127.0.0.1:9").startswith("Get ")
    assert upstream_panic(PANIC, "push", "http://127.0.0.1:9") is None
    assert upstream_panic("panic: storage driver swift: 401\n", "proxy", "http://u") is None


class FakeEngine:
    def __init__(self, states):
        self.states = states

    def state(self, cid):
        return self.states[cid]


def test_wait_ready_gives_up_on_a_container_failure_returns_none_for(tmp_path):
    cafile = tmp_path / "ca.pem"
    cafile.write_text("")
    proxy = Started("proxy", "p", "pid", (Check(expect=200, socket="@i24-unit-no-such-socket"),), 0)
    engine = FakeEngine({"pid": ("restarting", 3, 2)})
    given_up = []

    def failure(item, what, check, last):
        given_up.append((item.name, what))
        return None

    ssl_default = ssl.create_default_context
    try:
        ssl.create_default_context = lambda cafile=None: ssl_default()
        waited = wait_ready(engine, [proxy], str(cafile), 5, failure)
    finally:
        ssl.create_default_context = ssl_default
    assert given_up == [("p", "exited (exit code 2) while starting")]
    assert waited < 2


def test_probe_all_runs_at_once_and_bounds_a_slow_resolver(monkeypatch):
    import time

    def probe(url, username, password, timeout):
        time.sleep(5 if url == "slow" else 0.2)
        return None

    monkeypatch.setattr(upstream, "probe", probe)
    start = time.monotonic()
    found = upstream.probe_all([("a", "fast", "", ""), ("b", "fast", "", ""), ("c", "slow", "", "")], timeout=0.2)
    assert time.monotonic() - start < 3
    assert found == {"a": None, "b": None, "c": (upstream.TIMEOUT, "no answer within 0.2 s")}
