"""Unit tests of the front's Caddy configuration (registry/front.py).

Besides the shape of the JSON, requests are walked through the routes by a
small model of Caddy's route matching (method, path, path_regexp, header,
not; handlers run in order, the first that answers ends it), so the order
of the routes is tested by what each request would get.
"""

import base64
import json
import re

import pytest

from ansible.module_utils.buildset_registry.registry import front, login

USER, PASSWORD = "zuul", "s3cret"
# bcrypt of "s3cret", cost 4 (any well-formed hash does: the model compares the password).
HASH = "$2b$04$rO3Zfi7wlzXjgiBw7ehEBuOE90LxqnCa/rOIJjn3Q/islgfp4r2xa"
PUSH, PROXY = "unix/@test-push", "unix/@test-proxy"
TOKENS = login.derive_tokens(USER, PASSWORD)
BASIC = "Basic " + base64.b64encode(b"zuul:s3cret").decode()
WRONG_BASIC = "Basic " + base64.b64encode(b"zuul:nope").decode()
WRITE = "Bearer " + TOKENS["write"]
PUSH_TOKEN = "Bearer " + TOKENS["push"]
READ = "Bearer " + TOKENS["read"]
PUSHED = "Bearer " + TOKENS["pushed"]
DIGEST = "sha256:" + "a" * 64


QUAY, K8S = "unix/@test-quay", "unix/@test-k8s"
NAMESPACES = [
    ("docker.io", "docker.io", PROXY),
    ("quay.io", "quay.io", QUAY),
    ("registry.example.com:5000", "registry.example.com_5000", None),
    ("registry.k8s.io", "registry.k8s.io", K8S),
]


def config(**overrides):
    params = dict(
        port=5000,
        push_port=5001,
        push_dial=PUSH,
        namespaces=[("docker.io", "docker.io", PROXY)],
        cert_file="/certs/domain.crt",
        key_file="/certs/domain.key",
        username=USER,
        password_hash=HASH,
        tokens=TOKENS,
        anonymous_pull=False,
    )
    params.update(overrides)
    return params


def servers(**overrides):
    return front.front_config(**config(**overrides))["apps"]["http"]["servers"]


# --- a model of Caddy's routing ---------------------------------------------


def header_matches(patterns, values):
    for pattern in patterns:
        for value in values:
            if pattern.endswith("*") and value.startswith(pattern[:-1]) or value == pattern:
                return True
    return False


def _query_values(query):
    from urllib.parse import parse_qs

    return parse_qs(query, keep_blank_values=True)


def set_matches(matcher_set, method, path, headers, query="", captures=None):
    """Whether one matcher set matches; captures gets the regexp groups (for rewrites)."""
    captures = {} if captures is None else captures
    for kind, arg in matcher_set.items():
        if kind == "vars_regexp":
            (placeholder,) = arg
            if placeholder == "{http.request.uri.query}":
                value = query
            else:
                assert placeholder.startswith("{http.request.uri.query.") and placeholder.endswith("}")
                value = (_query_values(query).get(placeholder[24:-1]) or [""])[0]
            found = re.search(arg[placeholder]["pattern"], value)
            ok = found is not None
            if found:
                captures[arg[placeholder]["name"]] = found
        elif kind == "method":
            ok = method in arg
        elif kind == "path":
            ok = any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in arg)
        elif kind == "path_regexp":
            found = re.search(arg["pattern"], path)
            ok = found is not None
            if found:
                captures[arg["name"]] = found
        elif kind == "query":
            values = _query_values(query)
            ok = all(name in values and ("*" in wanted or set(values[name]) & set(wanted))
                     for name, wanted in arg.items())  # fmt: skip
        elif kind == "header":
            ok = all(header_matches(patterns, headers.get(name, [])) for name, patterns in arg.items())
        elif kind == "not":
            ok = not any(set_matches(s, method, path, headers, query) for s in arg)
        else:
            raise AssertionError("matcher %s is not modelled" % kind)
        if not ok:
            return False
    return True


def _rewrite(handler, path, query, captures):
    if "uri_substring" in handler:
        (sub,) = handler["uri_substring"]
        assert sub["limit"] == 1
        return path.replace(sub["find"], sub["replace"], 1), query

    def placeholder(found):
        name = found.group(1)
        if name == "http.request.uri.query":
            return query
        kind, group = name[len("http.regexp.") :].rsplit(".", 1)
        return captures[kind].group(int(group))

    uri = re.sub(r"\{([a-z.0-9_]+)\}", placeholder, handler["uri"])
    new_path, _, new_query = uri.partition("?")
    return new_path, new_query


def walk(server, method, path, authorization=None, query=""):
    """What the server does with a request, as a dict: kind "static"
    (status, handler) or "proxy" (dial, path; fallback and fallback_path
    when the push registry's 404 goes on to a proxy)."""
    headers = {"Authorization": [authorization]} if authorization else {}
    for route in server["routes"]:
        captures = {}
        if "match" in route and not any(set_matches(s, method, path, headers, query, captures) for s in route["match"]):
            continue
        for handler in route["handle"]:
            if handler["handler"] == "authentication":
                account = handler["providers"]["http_basic"]["accounts"][0]
                assert base64.b64decode(account["password"]).decode() == HASH
                if authorization != BASIC:
                    return {"kind": "static", "status": 401, "handler": None}
            elif handler["handler"] == "static_response":
                return {"kind": "static", "status": handler["status_code"], "handler": handler}
            elif handler["handler"] == "subroute":  # distribution's 404s
                return {"kind": "static", "status": 404, "handler": handler}
            elif handler["handler"] == "rewrite":
                path, query = _rewrite(handler, path, query, captures)
            elif handler["handler"] == "reverse_proxy":
                out = {"kind": "proxy", "dial": handler["upstreams"][0]["dial"], "path": path,
                       "fallback": None, "fallback_path": None}  # fmt: skip
                for response in handler.get("handle_response", []):
                    assert response["match"] == {"status_code": [404]}
                    marker, *rest, fallback_proxy = response["routes"][0]["handle"]
                    assert marker == {"handler": "vars", "buildset_fallback": "proxy"}
                    fallback_path = path
                    for rewrite in rest:
                        fallback_path, _ = _rewrite(rewrite, fallback_path, query, captures)
                    out.update(fallback=fallback_proxy["upstreams"][0]["dial"], fallback_path=fallback_path)
                return out
            else:
                raise AssertionError("handler %s is not modelled" % handler["handler"])
    return {"kind": "static", "status": 200, "handler": None}  # Caddy's empty answer: no route may end here


def serve(server, method, path, authorization=None, query=""):
    """What the server does with a request: ("static", status, handler) or ("proxy", dial, on 404 dial)."""
    out = walk(server, method, path, authorization, query)
    if out["kind"] == "static":
        return ("static", out["status"], out["handler"])
    return ("proxy", out["dial"], out["fallback"])


def token_of(outcome):
    kind, status, handler = outcome
    assert (kind, status) == ("static", 200)
    body = json.loads(handler["body"])
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 3600
    return body["token"]


# --- tokens -------------------------------------------------------------------


def test_tokens_are_stable_hex_and_distinct():
    again = login.derive_tokens(USER, PASSWORD)
    assert again == TOKENS
    assert set(TOKENS) == {"write", "push", "read", "pushed"}
    assert len(set(TOKENS.values())) == 4
    for token in TOKENS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", token)


def test_tokens_change_with_the_password_and_the_username():
    other_password = login.derive_tokens(USER, PASSWORD + "x")
    other_user = login.derive_tokens("other", PASSWORD)
    for kind in TOKENS:
        assert other_password[kind] != TOKENS[kind]
        assert other_user[kind] != TOKENS[kind]


# --- shape --------------------------------------------------------------------


def test_render_is_stable_sorted_json_with_a_final_newline():
    text = front.render_front_config(**config())
    assert text == front.render_front_config(**config())
    assert text.endswith("}\n")
    assert json.loads(text) == front.front_config(**config())
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_top_level_admin_off_and_no_autosave():
    cfg = front.front_config(**config())
    assert cfg["admin"] == {"disabled": True, "config": {"persist": False}}
    assert cfg["apps"]["tls"]["certificates"]["load_files"] == [
        {"certificate": "/certs/domain.crt", "key": "/certs/domain.key", "tags": [front.CERT_TAG]}
    ]


def test_both_ports_listen_on_every_address_with_tls_and_no_automatic_https():
    found = servers(port=15910, push_port=15911)
    assert sorted(s["listen"][0] for s in found.values()) == [":15910", ":15911"]
    for server in found.values():
        assert server["automatic_https"] == {"disable": True}
        (policy,) = server["tls_connection_policies"]
        assert policy["certificate_selection"] == {"any_tag": [front.CERT_TAG]}
        assert policy["protocol_min"] == "tls1.2"


def test_the_hash_is_base64_in_the_account_with_bcrypt_and_a_cache():
    text = front.render_front_config(**config())
    assert HASH not in text
    for server in servers().values():
        providers = [h["providers"] for r in server["routes"] for h in r["handle"] if h["handler"] == "authentication"]
        assert providers
        for provider in providers:
            basic = provider["http_basic"]
            assert basic["accounts"] == [{"username": USER, "password": base64.b64encode(HASH.encode()).decode()}]
            assert basic["hash"] == {"algorithm": "bcrypt"}
            assert basic["hash_cache"] == {}


def reverse_proxies(routes):
    """Every reverse_proxy handler in routes, those of handle_response included."""
    for route in routes:
        for handler in route["handle"]:
            if handler["handler"] == "reverse_proxy":
                yield handler
                for response in handler.get("handle_response", []):
                    yield from reverse_proxies(response["routes"])


def test_proxies_keep_the_host_and_say_https():
    for server in servers().values():
        for handler in reverse_proxies(server["routes"]):
            assert handler["headers"]["request"]["set"]["X-Forwarded-Proto"] == ["https"]
            assert "Host" not in json.dumps(handler)
            # Nothing that buffers or cuts a long transfer once it started.
            assert not {"request_buffers", "response_buffers"} & set(handler)
            if handler["upstreams"][0]["dial"] == PROXY:
                assert handler["transport"] == {"protocol": "http", "response_header_timeout": "30s"}
            else:
                assert "transport" not in handler


def test_the_push_registry_is_asked_with_every_manifest_type_before_the_proxy():
    """Asked with the client's Accept, the push registry answers 404 for a
    pushed manifest of a type left out: the proxy would then answer with
    upstream's image under the pushed name."""
    firsts = [h for h in reverse_proxies(servers(namespaces=NAMESPACES)["endpoint"]["routes"])
              if h["upstreams"][0]["dial"] == PUSH and "handle_response" in h]  # fmt: skip
    assert len(firsts) == 7  # docker.io bare, spelled out and by ns; quay.io's and k8s' by prefix and by ns
    for push_first in firsts:
        assert push_first["headers"]["request"]["set"]["Accept"] == [", ".join(front.MANIFEST_TYPES)]
    assert len(front.MANIFEST_TYPES) == 4 and all(t.startswith("application/vnd.") for t in front.MANIFEST_TYPES)


def test_what_the_proxy_fails_with_is_a_404_with_distributions_error():
    endpoint = servers(namespaces=NAMESPACES)["endpoint"]
    proxies = [h for h in reverse_proxies(endpoint["routes"]) if h["upstreams"][0]["dial"] != PUSH]
    assert {h["upstreams"][0]["dial"] for h in proxies} == {PROXY, QUAY, K8S}
    for proxy in proxies:
        if len(proxy["handle_response"]) == 1:  # the blob's second try
            (failure,) = proxy["handle_response"]
            assert failure["match"] == {"status_code": [401, 403, 429, 5]}
            continue
        server_error, failure = proxy["handle_response"]
        assert failure["match"] == {"status_code": [401, 403, 429]}
        # A 5xx: a blob is asked once more, anything else is a 404.
        assert server_error["match"] == {"status_code": [5]}
        again, rest = server_error["routes"]
        assert again["match"] == [{"path_regexp": {"name": "again", "pattern": front.BLOB_PATH}}]
        (retry,) = again["handle"]
        assert retry["upstreams"] == proxy["upstreams"] and "match" not in rest
        assert retry["handle_response"][0]["match"] == {"status_code": [401, 403, 429, 5]}
    # Dial errors and time-outs are errors: the error routes answer for the proxy only.
    (errors,) = endpoint["errors"]["routes"]
    assert errors["match"] == [{"vars": {"buildset_fallback": ["proxy"]}}]
    assert "errors" not in servers()["push"]
    for handlers in (failure["routes"][0]["handle"], errors["handle"]):
        (subroute,) = handlers
        answers = {}
        for path in ("/v2/a/manifests/" + DIGEST, "/v2/a/b/blobs/" + DIGEST, "/v2/a/tags/list", "/v2/a/other"):
            route = next(
                r for r in subroute["routes"]
                if "match" not in r or re.search(r["match"][0]["path_regexp"]["pattern"], path)
            )  # fmt: skip
            (static,) = route["handle"]
            assert static["status_code"] == 404
            assert static["headers"]["Docker-Distribution-Api-Version"] == ["registry/2.0"]
            answers[path.split("/")[-2]] = json.loads(static["body"])["errors"][0]["code"]
        assert answers == {"manifests": "MANIFEST_UNKNOWN", "blobs": "BLOB_UNKNOWN", "tags": "NAME_UNKNOWN",
                           "a": "NOT_FOUND"}  # fmt: skip


@pytest.mark.parametrize(
    "query,push",
    [
        ("scope=repository%3Alibrary%2Fx%3Apull%2Cpush&service=s", True),
        ("scope=repository:library/x:pull,push", True),
        ("scope=repository:library/x:push,pull", True),
        ("scope=repository:library/x:push", True),
        ("scope=repository:x:*", True),
        ("scope=repository%3Ax%3A%2A", True),
        # containerd sorts its scopes: the one to push may come second.
        ("scope=repository%3Aa%2Fbase%3Apull&scope=repository%3Ab%2Fapp%3Apull%2Cpush", True),
        ("service=s&scope=repository:x:pull", False),
        ("scope=repository:push/x:pull", False),
        ("scope=repository:x/push:pull", False),
        ("scope=repository:pusher:pull", False),
        ("scope=repository:x:pushy", False),
        ("account=zuul&service=s", False),
        ("", False),
    ],
)
def test_a_push_scope_is_told_from_a_pull_scope(query, push):
    assert (re.search(login.PUSH_SCOPE_QUERY, query) is not None) is push
    server = servers()["endpoint"]
    assert token_of(serve(server, "GET", "/token", BASIC, query)) == TOKENS["push" if push else "write"]
    # Without (or with wrong) credentials the scope changes nothing.
    assert token_of(serve(server, "GET", "/token", None, query)) == TOKENS["pushed"]
    assert serve(server, "GET", "/token", WRONG_BASIC, query)[:2] == ("static", 401)


def test_challenge_names_the_address_the_client_used_and_the_service():
    kind, status, handler = serve(servers(service="svc")["endpoint"], "GET", "/v2/")
    assert (kind, status) == ("static", 401)
    assert handler["headers"]["WWW-Authenticate"] == [
        'Bearer realm="https://{http.request.hostport}/token",service="svc"'
    ]
    assert handler["headers"]["Docker-Distribution-Api-Version"] == ["registry/2.0"]
    assert json.loads(handler["body"])["errors"][0]["code"] == "UNAUTHORIZED"


# --- login, on both ports -----------------------------------------------------


@pytest.mark.parametrize("name", ["endpoint", "push"])
def test_login_without_anonymous_pull(name):
    server = servers()[name]
    assert serve(server, "POST", "/token")[:2] == ("static", 404)
    assert serve(server, "POST", "/token", BASIC)[:2] == ("static", 404)
    assert token_of(serve(server, "GET", "/token", BASIC)) == TOKENS["write"]
    assert serve(server, "GET", "/token", WRONG_BASIC)[:2] == ("static", 401)
    # Without credentials: the token of pushed content, read only.
    assert token_of(serve(server, "GET", "/token")) == TOKENS["pushed"]
    assert serve(server, "GET", "/v2/")[:2] == ("static", 401)
    assert serve(server, "GET", "/v2/", "Bearer nope")[:2] == ("static", 401)
    assert serve(server, "GET", "/v2/", READ)[:2] == ("static", 401)
    assert serve(server, "GET", "/v2/a/manifests/1", PUSHED) == ("proxy", PUSH, None)
    assert serve(server, "HEAD", "/v2/a/manifests/" + DIGEST, PUSHED) == ("proxy", PUSH, None)
    assert serve(server, "GET", "/v2/a/blobs/" + DIGEST, PUSHED) == ("proxy", PUSH, None)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert serve(server, method, "/v2/a/blobs/uploads/", PUSHED)[:2] == ("static", 401)
    assert serve(server, "GET", "/v2/", WRONG_BASIC)[:2] == ("static", 401)
    assert serve(server, "GET", "/v2/", WRITE) == ("proxy", PUSH, None)
    assert serve(server, "GET", "/v2/", BASIC) == ("proxy", PUSH, None)
    assert serve(server, "PUT", "/v2/a/manifests/1", WRITE)[:2] == ("proxy", PUSH)


def test_one_anonymous_token_is_anywhere():
    text = front.render_front_config(**config())
    assert TOKENS["read"] not in text
    assert TOKENS["write"] in text and TOKENS["push"] in text and TOKENS["pushed"] in text
    assert TOKENS["pushed"] not in front.render_front_config(**config(anonymous_pull=True))
    # Not needed then.
    front.front_config(**config(tokens={k: v for k, v in TOKENS.items() if k != "read"}))
    front.front_config(**config(tokens={k: v for k, v in TOKENS.items() if k != "pushed"}, anonymous_pull=True))


@pytest.mark.parametrize("name", ["endpoint", "push"])
def test_login_with_anonymous_pull(name):
    server = servers(anonymous_pull=True)[name]
    assert token_of(serve(server, "GET", "/token")) == TOKENS["read"]
    assert token_of(serve(server, "GET", "/token", BASIC)) == TOKENS["write"]
    # Wrong credentials are refused, not downgraded to the read token.
    assert serve(server, "GET", "/token", WRONG_BASIC)[:2] == ("static", 401)
    assert serve(server, "POST", "/token")[:2] == ("static", 404)
    assert serve(server, "GET", "/v2/a/manifests/1", READ)[0] == "proxy"
    assert serve(server, "HEAD", "/v2/a/manifests/1", READ)[0] == "proxy"
    assert serve(server, "GET", "/v2/a/manifests/1", PUSHED)[:2] == ("static", 401)
    for method, path in [
        ("POST", "/v2/a/blobs/uploads/"),
        ("PATCH", "/v2/a/blobs/uploads/u"),
        ("PUT", "/v2/a/manifests/1"),
        ("DELETE", "/v2/a/manifests/" + DIGEST),
    ]:
        assert serve(server, method, path, READ)[:2] == ("static", 401), (method, path)
        assert serve(server, method, path, WRITE)[:2] == ("proxy", PUSH), (method, path)
    assert serve(server, "GET", "/v2/")[:2] == ("static", 401)


# --- routing --------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path,expected",
    [
        # Writes and uploads: push only.
        ("POST", "/v2/library/x/blobs/uploads/", None),
        ("POST", "/v2/library/x/blobs/uploads/?mount=" + DIGEST + "&from=library/y", None),
        ("PATCH", "/v2/library/x/blobs/uploads/uuid", None),
        ("PUT", "/v2/library/x/blobs/uploads/uuid", None),
        ("GET", "/v2/library/x/blobs/uploads/uuid", None),
        ("PUT", "/v2/library/x/manifests/1", None),
        ("DELETE", "/v2/library/x/manifests/" + DIGEST, None),
        # A blob HEAD never falls back (pushers would skip the blob).
        ("HEAD", "/v2/library/x/blobs/" + DIGEST, None),
        ("HEAD", "/v2/x/blobs/" + DIGEST, None),
        # Names under a registry host: push only.
        ("GET", "/v2/quay.io/org/app/manifests/1", None),
        ("HEAD", "/v2/quay.io/org/app/manifests/1", None),
        ("GET", "/v2/localhost:5000/app/blobs/" + DIGEST, None),
        ("GET", "/v2/localhost/app/tags/list", None),
        ("GET", "/v2/localhost_5000/app/manifests/1", None),
        ("GET", "/v2/", None),
        ("GET", "/v2/_catalog", None),
        ("GET", "/v2", None),
        # Reads: push first, the proxy on its 404.
        ("GET", "/v2/library/x/manifests/1", PROXY),
        ("HEAD", "/v2/library/x/manifests/1", PROXY),
        ("GET", "/v2/library/x/manifests/" + DIGEST, PROXY),
        ("GET", "/v2/library/x/blobs/" + DIGEST, PROXY),
        ("GET", "/v2/library/x/tags/list", PROXY),
        ("GET", "/v2/x/manifests/1", PROXY),
        # A one-component name with a dot is no host (docker.io/library/foo.bar).
        ("GET", "/v2/foo.bar/manifests/1", PROXY),
        ("GET", "/v2/org/foo.bar/manifests/1", PROXY),
        # Anything else: push.
        ("GET", "/v2/library/x/referrers/" + DIGEST, None),
        ("GET", "/other", None),
    ],
)
def test_routing_at_port(method, path, expected):
    path_only = path.split("?")[0]  # Caddy matches the path without the query
    assert serve(servers()["endpoint"], method, path_only, WRITE) == ("proxy", PUSH, expected)
    assert serve(servers()["endpoint"], method, path_only, BASIC) == ("proxy", PUSH, expected)
    if method in ("GET", "HEAD"):
        assert serve(servers(anonymous_pull=True)["endpoint"], method, path_only, READ) == ("proxy", PUSH, expected)
    # A push's token, and reads without a login by default: the push registry only.
    assert serve(servers()["endpoint"], method, path_only, PUSH_TOKEN) == ("proxy", PUSH, None)
    if method in ("GET", "HEAD") and "/uploads/" not in path:
        assert serve(servers()["endpoint"], method, path_only, PUSHED) == ("proxy", PUSH, None)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v2/library/x/manifests/1"),
        ("GET", "/v2/library/x/blobs/" + DIGEST),
        ("HEAD", "/v2/library/x/blobs/" + DIGEST),
        ("POST", "/v2/library/x/blobs/uploads/"),
    ],
)
def test_push_port_sends_everything_to_push(method, path):
    assert serve(servers()["push"], method, path, WRITE) == ("proxy", PUSH, None)


def test_route_order_at_port():
    """Login first; writes, push-only tokens, blob HEADs and /v2/ before any
    read; a configured prefix before the other hosts; containerd's ns after
    every path form; bare reads last but one."""
    routes = servers(namespaces=NAMESPACES)["endpoint"]["routes"]
    kinds = []
    for route in routes:
        handler = route["handle"][-1]
        if handler["handler"] == "subroute":
            kinds.append("404")
        elif handler["handler"] != "reverse_proxy":
            kinds.append("login")
        elif "handle_response" in handler:
            kinds.append(
                "push, then " + handler["handle_response"][0]["routes"][0]["handle"][-1]["upstreams"][0]["dial"]
            )
        else:
            kinds.append("push")
    first = "push, then "
    assert kinds == ["login"] * 6 + ["push"] * 4 + [
        first + QUAY, "push", first + K8S,  # /v2/N/...: quay.io, a push-only host, registry.k8s.io
        first + PROXY,  # /v2/docker.io/...
        "push",  # any other host
        first + QUAY, "push", first + K8S, first + PROXY,  # ?ns=N, ns=docker.io
        "push", "push", "404",  # an ns nobody configured
        first + PROXY, "push",
    ]  # fmt: skip
    assert "match" not in routes[-1]


# --- inputs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        dict(push_port=5000),
        dict(port=0),
        dict(port="5000"),
        dict(push_port=True),
        dict(push_dial="unix socket"),
        dict(namespaces=[("docker.io", "docker.io", "")]),
        dict(namespaces=[("quay.io", "quay.io", PROXY)]),
        dict(namespaces=[("docker.io", "docker.io", PROXY), ("Quay.io", "Quay.io", PROXY)]),
        dict(namespaces=[("docker.io", "docker.io", PROXY), ("h:5000", "h:5000", None)]),
        dict(username=""),
        dict(username="a:b"),
        dict(password_hash="s3cret"),
        dict(tokens={}),
        dict(tokens={"write": 'x" y'}),
        dict(tokens={"write": TOKENS["write"]}, anonymous_pull=True),
        dict(tokens={"write": TOKENS["write"], "read": TOKENS["write"]}, anonymous_pull=True),
        dict(tokens=dict(TOKENS, push=TOKENS["write"])),
        dict(tokens=dict(TOKENS, pushed=TOKENS["push"])),
        dict(tokens={k: v for k, v in TOKENS.items() if k != "push"}),
        dict(service='a"b'),
        dict(service="{x}"),
    ],
)
def test_bad_inputs_are_refused(overrides):
    with pytest.raises(ValueError):
        front.front_config(**config(**overrides))


def test_dial_addresses():
    for dial in ("unix/@frontproto-push", "unix//run/registry.sock", "127.0.0.1:5002", "[::1]:5002", "localhost:5002"):
        assert serve(servers(push_dial=dial)["push"], "GET", "/v2/", WRITE) == ("proxy", dial, None)


# --- namespaces -----------------------------------------------------------------------


def at_port(method, path, query="", authorization=WRITE, anonymous_pull=False):
    out = walk(servers(namespaces=NAMESPACES, anonymous_pull=anonymous_pull)["endpoint"], method, path,
               authorization, query)  # fmt: skip
    if out["kind"] == "static":
        return out["status"]
    return (out["dial"], out["path"], out["fallback"], out["fallback_path"])


M = "/manifests/1"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "path,query,expected",
    [
        # docker.io: bare, spelled out, and with containerd's ns.
        ("/v2/library/x" + M, "", ("/v2/library/x" + M, PROXY, "/v2/library/x" + M)),
        ("/v2/docker.io/library/x" + M, "", ("/v2/library/x" + M, PROXY, "/v2/library/x" + M)),
        ("/v2/library/x" + M, "ns=docker.io", ("/v2/library/x" + M, PROXY, "/v2/library/x" + M)),
        # A namespace with a cache: pushed at N/NAME first, then N's proxy at NAME.
        ("/v2/quay.io/org/app" + M, "", ("/v2/quay.io/org/app" + M, QUAY, "/v2/org/app" + M)),
        ("/v2/org/app" + M, "ns=quay.io", ("/v2/quay.io/org/app" + M, QUAY, "/v2/org/app" + M)),
        ("/v2/quay.io/org/app" + M, "ns=quay.io", ("/v2/quay.io/org/app" + M, QUAY, "/v2/org/app" + M)),
        # A one-component name.
        ("/v2/registry.k8s.io/pause" + M, "", ("/v2/registry.k8s.io/pause" + M, K8S, "/v2/pause" + M)),
        ("/v2/pause" + M, "ns=registry.k8s.io", ("/v2/registry.k8s.io/pause" + M, K8S, "/v2/pause" + M)),
        ("/v2/quay.io/org/app/tags/list", "", ("/v2/quay.io/org/app/tags/list", QUAY, "/v2/org/app/tags/list")),
        # A push-only namespace (a port's colon as _): the push registry alone.
        ("/v2/registry.example.com_5000/app" + M, "", ("/v2/registry.example.com_5000/app" + M, None, None)),
        ("/v2/app" + M, "ns=registry.example.com:5000", ("/v2/registry.example.com_5000/app" + M, None, None)),
        # Hosts nobody configured: pushed images under their name, never a proxy.
        ("/v2/ghcr.io/org/app" + M, "", ("/v2/ghcr.io/org/app" + M, None, None)),
        ("/v2/org/app" + M, "ns=ghcr.io", ("/v2/ghcr.io/org/app" + M, None, None)),
        ("/v2/org/app" + M, "ns=other.example:8443", ("/v2/other.example_8443/org/app" + M, None, None)),
    ],
)
def test_reads_in_each_namespace(method, path, query, expected):
    push_path, fallback, fallback_path = expected
    assert at_port(method, path, query) == (PUSH, push_path, fallback, fallback_path)


def test_a_blob_is_got_from_its_namespaces_cache_and_headed_at_the_push_registry_only():
    blob = "/blobs/" + DIGEST
    expected = (PUSH, "/v2/registry.k8s.io/pause" + blob, K8S, "/v2/pause" + blob)
    assert at_port("GET", "/v2/registry.k8s.io/pause" + blob) == expected
    assert at_port("GET", "/v2/pause" + blob, "ns=registry.k8s.io") == expected
    assert at_port("HEAD", "/v2/registry.k8s.io/pause" + blob) == (PUSH, "/v2/registry.k8s.io/pause" + blob, None, None)


def test_an_ns_that_is_no_host_name_is_404_at_once():
    for query in ("ns=..%2F..%2Fx", "ns=", "ns=UPPER.case", "ns=a/b"):
        assert at_port("GET", "/v2/org/app" + M, query) == 404, query


def test_the_rules_of_every_push_flow_hold_in_every_namespace():
    for path in ("/v2/quay.io/org/app", "/v2/registry.k8s.io/pause", "/v2/org/app"):
        blob = path + "/blobs/" + DIGEST
        for query in ("", "ns=quay.io"):
            # Blob HEADs and pushes' tokens: the push registry alone, the path as it came.
            assert at_port("HEAD", blob, query) == (PUSH, blob, None, None)
            assert at_port("HEAD", path + M, query, PUSH_TOKEN) == (PUSH, path + M, None, None)
            # Without a login, by default: pushed images only.
            assert at_port("GET", path + M, query, PUSHED) == (PUSH, path + M, None, None)
            for method in ("PUT", "DELETE"):
                assert at_port(method, path + M, query) == (PUSH, path + M, None, None)
            assert at_port("POST", path + "/blobs/uploads/", query) == (PUSH, path + "/blobs/uploads/", None, None)
    # With anonymous pull, the anonymous token reads the caches too.
    assert at_port("GET", "/v2/quay.io/org/app" + M, "", READ, True)[2] == QUAY


def test_no_host_from_a_request_is_ever_dialled():
    dials = {PUSH, PROXY, QUAY, K8S}
    text = front.render_front_config(**config(namespaces=NAMESPACES))
    assert set(re.findall(r'"dial": "([^"]+)"', text)) == dials
    assert "{http.request.uri.query.ns}" not in "".join(re.findall(r'"dial": "([^"]+)"', text))
