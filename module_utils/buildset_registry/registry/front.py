# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The front (Caddy) of the buildset registry: its JSON configuration.

Pure functions, standard library only: no Docker, no files. Caddy holds TLS
and both public ports, does the login (the token challenge Docker Hub and
zuul-registry use) and routes to the two registries, which listen on the
node only (abstract unix sockets or loopback), without TLS or login:

- `port`: writes, blob HEADs, names under a registry host, /v2/ and the
  catalog go to the push registry; manifest, blob and tag reads go to the
  push registry and, on its 404 only, to the proxy registry;
- `push_port`: everything to the push registry.

render_front_config() gives stable text: the role hashes it to decide
restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

SERVICE = "buildset-registry"
# The TLS certificate's tag; the connection policies select it by that tag.
CERT_TAG = "buildset-registry"
MINIMUM_TLS = "tls1.2"
TOKEN_KINDS = ("write", "read")
# What derive_tokens() signs; changing it changes every token.
TOKEN_LABEL = b"run-buildset-registry front token v1"
TOKEN_PATH = "/token"
# Clients reuse a token until it expires; they get a new one the same way.
TOKEN_EXPIRES_IN = 3600

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
READ_METHODS = ("GET", "HEAD")
# Anything of an upload, whatever the method (PATCH chunks, PUT, ?mount=).
UPLOAD_PATH = r"/blobs/uploads/"
# A blob itself: pushers HEAD each one and skip those answering 200, so a
# blob HEAD must never reach the proxy (which has upstream's blobs).
BLOB_PATH = r"^/v2/.+/blobs/[^/]+$"
# A name whose first component is a registry host (quay.io/org/app,
# localhost:5000/x, or localhost_5000/x as the use entry point writes a
# port's colon): the proxy has nothing for it. A one-component name
# is never a host, hence the second component before the operation.
HOST_NAME_PATH = r"^/v2/(?:[^/]*[.:][^/]*|localhost(?:_\d+)?)/.+/(?:manifests|blobs|tags)/"
# Reads the proxy may answer when the push registry has nothing.
SHADOWED_READ_PATH = r"^/v2/.+/(?:manifests/[^/]+|blobs/[^/]+|tags/list)$"

# Tokens go into header matchers and JSON bodies as they are.
_HEX_TOKEN = re.compile(r"^[0-9a-f]{32,}$")
_BCRYPT = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
# Caddy upstream addresses: unix/PATH, unix/@ABSTRACT, HOST:PORT.
_DIAL = re.compile(r"^(?:unix/@?[^\s]+|[^\s/]+:\d+)$")

UNAUTHORIZED_BODY = json.dumps(
    {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": None}]},
    separators=(",", ":"),
)


def derive_tokens(username, password):
    """The write and read tokens of a login, as hex strings.

    HMAC-SHA256 keyed by the password over a fixed label, the kind and the
    username: stable, so every node with the same login accepts the same
    tokens, and a new password or username gives new ones.
    """
    key = password.encode("utf-8")
    return {
        kind: hmac.new(
            key, TOKEN_LABEL + b"\0" + kind.encode("ascii") + b"\0" + username.encode("utf-8"), hashlib.sha256
        ).hexdigest()
        for kind in TOKEN_KINDS
    }


def front_config(
    *,
    port,
    push_port,
    push_dial,
    proxy_dial,
    cert_file,
    key_file,
    username,
    password_hash,
    tokens,
    anonymous_pull,
    service=SERVICE,
):
    """Return Caddy's JSON configuration of the front as a dict.

    push_dial and proxy_dial are Caddy upstream addresses ("unix/@NAME" for
    an abstract unix socket, "127.0.0.1:PORT"); password_hash is the bcrypt
    hash of the htpasswd line; tokens is derive_tokens()'s result (the read
    token is used only when anonymous_pull is on).
    """
    _check(port, push_port, push_dial, proxy_dial, username, password_hash, tokens, anonymous_pull, service)
    login = _login_routes(username, password_hash, tokens, anonymous_pull, service)
    endpoint_routes = _endpoint_routes(push_dial, proxy_dial)
    push = _proxy(push_dial)
    return {
        # No admin endpoint, and no autosave.json written at start.
        "admin": {"disabled": True, "config": {"persist": False}},
        "apps": {
            "http": {
                "servers": {
                    "endpoint": _server(port, login + endpoint_routes),
                    "push": _server(push_port, login + [_route(None, push)]),
                },
            },
            "tls": {
                "certificates": {
                    "load_files": [{"certificate": cert_file, "key": key_file, "tags": [CERT_TAG]}],
                },
            },
        },
    }


def _endpoint_routes(push_dial, proxy_dial):
    """The one endpoint's routes after the login, in order (the module's docstring)."""
    push = _proxy(push_dial)
    push_first = dict(
        _proxy(push_dial),
        handle_response=[{"match": {"status_code": [404]}, "routes": [{"handle": [_proxy(proxy_dial)]}]}],
    )
    return [
        _route([{"method": list(WRITE_METHODS)}, {"path_regexp": {"name": "upload", "pattern": UPLOAD_PATH}}], push),
        _route([{"method": ["HEAD"], "path_regexp": {"name": "blob", "pattern": BLOB_PATH}}], push),
        _route([{"path_regexp": {"name": "host", "pattern": HOST_NAME_PATH}}], push),
        _route([{"path": ["/v2", "/v2/", "/v2/_catalog"]}], push),
        _route(
            [{"method": list(READ_METHODS), "path_regexp": {"name": "shadowed", "pattern": SHADOWED_READ_PATH}}],
            push_first,
        ),
        _route(None, push),
    ]


def render_front_config(**kwargs):
    """front_config() as stable JSON text (sorted keys, a final newline)."""
    return json.dumps(front_config(**kwargs), indent=2, sort_keys=True) + "\n"


def _check(port, push_port, push_dial, proxy_dial, username, password_hash, tokens, anonymous_pull, service):
    for name, value in (("port", port), ("push_port", push_port)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise ValueError("%s must be a TCP port number, not %r" % (name, value))
    if port == push_port:
        raise ValueError("port and push_port must differ (both are %d)" % port)
    for name, value in (("push_dial", push_dial), ("proxy_dial", proxy_dial)):
        if not isinstance(value, str) or not _DIAL.match(value):
            raise ValueError("%s must be a Caddy dial address (unix/@NAME or HOST:PORT), not %r" % (name, value))
    if not username or ":" in username:
        raise ValueError("username must be non-empty and hold no colon, not %r" % (username,))
    if not isinstance(password_hash, str) or not _BCRYPT.match(password_hash):
        raise ValueError("password_hash must be a bcrypt hash ($2b$NN$...)")
    kinds = ("write", "read") if anonymous_pull else ("write",)
    for kind in kinds:
        if not _HEX_TOKEN.match(str(tokens.get(kind, ""))):
            raise ValueError("tokens[%r] must be a hex token from derive_tokens()" % kind)
    if anonymous_pull and tokens["read"] == tokens["write"]:
        raise ValueError("the read and write tokens must differ")
    if not service or '"' in service or "\\" in service or "{" in service:
        raise ValueError("service must be non-empty and hold no quote, backslash or brace, not %r" % (service,))


def _route(match, *handlers):
    route = {"handle": list(handlers)}
    if match:
        route["match"] = match
    return route


def _server(port, routes):
    return {
        # Every address, IPv4 and IPv6.
        "listen": [":%d" % port],
        "routes": routes,
        "automatic_https": {"disable": True},
        # HTTP/1.1 only. No HTTP/3: it would listen on UDP too, for clients
        # that do not use it. No HTTP/2: every client speaks 1.1, and layers
        # moved faster without it (bench, 60 MB through `port` against a
        # registry:2 straight, medians of 8 alternated rounds on 2 busy
        # cores: push 1.09x with 1.1 only, 1.14x with h2; pull 0.93x, 0.97x).
        "protocols": ["h1"],
        "tls_connection_policies": [
            {"certificate_selection": {"any_tag": [CERT_TAG]}, "protocol_min": MINIMUM_TLS},
        ],
    }


def _proxy(dial):
    # Caddy keeps the client's Host, so the registry builds Location URLs
    # for the address the client used; requests and responses stream (no
    # buffering, no timeout on a long transfer).
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": dial}],
        "headers": {"request": {"set": {"X-Forwarded-Proto": ["https"]}}},
    }


def _static(status, body=None, headers=None):
    handler = {"handler": "static_response", "status_code": status}
    if body is not None:
        handler["body"] = body
    if headers:
        handler["headers"] = headers
    return handler


def _token_body(token):
    # No issued_at: docker, skopeo and containerd take the time they got it.
    return json.dumps(
        {"token": token, "access_token": token, "expires_in": TOKEN_EXPIRES_IN},
        separators=(",", ":"),
        sort_keys=True,
    )


def _challenge(service):
    # The realm is the address the client used (an alias, an IPv6 name).
    return _static(
        401,
        UNAUTHORIZED_BODY,
        {
            "WWW-Authenticate": [
                'Bearer realm="https://{http.request.hostport}%s",service="%s"' % (TOKEN_PATH, service)
            ],
            "Docker-Distribution-Api-Version": ["registry/2.0"],
            "Content-Type": ["application/json; charset=utf-8"],
        },
    )


def _basic_auth(username, password_hash):
    return {
        "handler": "authentication",
        "providers": {
            "http_basic": {
                # Caddy takes the hash base64-encoded in JSON.
                "accounts": [
                    {"username": username, "password": base64.b64encode(password_hash.encode("ascii")).decode("ascii")}
                ],
                "hash": {"algorithm": "bcrypt"},
                # Checks each distinct credential once, not on every request.
                "hash_cache": {},
                "realm": SERVICE,
            },
        },
    }


def _login_routes(username, password_hash, tokens, anonymous_pull, service):
    """The routes both ports start with: the token endpoint, then the gate."""
    basic = {"Authorization": ["Basic *"]}
    json_type = {"Content-Type": ["application/json"]}
    routes = [
        # containerd posts an OAuth2 form first and falls back to a GET with
        # Basic credentials on 400, 401 or 404.
        _route([{"method": ["POST"], "path": [TOKEN_PATH]}], _static(404)),
        # Credentials that do not check get 401 from http_basic, even with
        # anonymous pull on.
        _route(
            [{"path": [TOKEN_PATH], "header": basic}],
            _basic_auth(username, password_hash),
            _static(200, _token_body(tokens["write"]), json_type),
        ),
        _route(
            [{"path": [TOKEN_PATH]}],
            _static(200, _token_body(tokens["read"]), json_type) if anonymous_pull else _challenge(service),
        ),
        # Basic credentials are checked (401 when wrong), then served.
        _route([{"header": basic}], _basic_auth(username, password_hash)),
    ]
    allowed = [{"header": {"Authorization": ["Bearer " + tokens["write"]]}}, {"header": basic}]
    if anonymous_pull:
        allowed.append({"header": {"Authorization": ["Bearer " + tokens["read"]]}, "method": list(READ_METHODS)})
    routes.append(_route([{"not": allowed}], _challenge(service)))
    return routes
