# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The front's login: the token challenge Docker Hub and zuul-registry use.

A request without a valid token gets 401 and a Bearer challenge whose realm
is the address the client used; the token endpoint hands out (tokens from
derive_tokens()):

- "write" for the login (Basic credentials, checked by Caddy's http_basic
  with a hash cache);
- "push" for the login when the scope asks to push: containerd, buildkit,
  crane and docker ask it for every request of a push, and with it every
  request goes to the push registry (registry/front.py), so a pusher's
  manifest HEADs before an index see only what was pushed;
- without credentials, "read" (reads of everything) when anonymous pull is
  on, else "pushed" (reads of what the buildset pushed, as zuul-registry
  allows).

Requests with Basic credentials are served too. Pure: Caddy JSON out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

from ansible.module_utils.buildset_registry.registry.caddy import READ_METHODS, registry_headers, route, static

SERVICE = "buildset-registry"
TOKEN_KINDS = ("write", "push", "read", "pushed")
# What derive_tokens() signs; changing it changes every token.
TOKEN_LABEL = b"run-buildset-registry front token v1"
TOKEN_PATH = "/token"
# Clients reuse a token until it expires; they get a new one the same way.
TOKEN_EXPIRES_IN = 3600
# A token request whose scope asks to push (or everything): in the raw
# query, encoded or not. Docker sends "pull,push", containerd sorts its
# scopes and may send several.
PUSH_SCOPE_QUERY = r"(?:^|&)scope=[^&]*(?::|%3[aA])(?:[^&]*(?:,|%2[cC]))?(?:push|\*|%2[aA])(?:$|&|,|%2[cC])"

_HEX_TOKEN = re.compile(r"^[0-9a-f]{32,}$")

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


def check_tokens(tokens, anonymous_pull):
    """The tokens login_routes() uses are hex tokens of derive_tokens(), all different."""
    kinds = ("write", "push", "read" if anonymous_pull else "pushed")
    for kind in kinds:
        if not _HEX_TOKEN.match(str(tokens.get(kind, ""))):
            raise ValueError("tokens[%r] must be a hex token from derive_tokens()" % kind)
    if len({tokens[kind] for kind in kinds}) != len(kinds):
        raise ValueError("the %s tokens must differ" % ", ".join(kinds))


def push_only_tokens(tokens, anonymous_pull):
    """The tokens whose requests go to the push registry alone."""
    return [tokens["push"]] + ([] if anonymous_pull else [tokens["pushed"]])


def login_routes(username, password_hash, tokens, anonymous_pull, service):
    """The routes both ports start with: the token endpoint, then the gate."""
    basic = {"Authorization": ["Basic *"]}
    json_type = {"Content-Type": ["application/json"]}
    anonymous = tokens["read"] if anonymous_pull else tokens["pushed"]
    push_scope = {"vars_regexp": {"{http.request.uri.query}": {"name": "push", "pattern": PUSH_SCOPE_QUERY}}}
    routes = [
        # containerd posts an OAuth2 form first and falls back to a GET with
        # Basic credentials on 400, 401 or 404.
        route([{"method": ["POST"], "path": [TOKEN_PATH]}], static(404)),
        # Credentials that do not check get 401 from http_basic, whatever
        # an anonymous client would get.
        route(
            [dict({"path": [TOKEN_PATH], "header": basic}, **push_scope)],
            _basic_auth(username, password_hash),
            static(200, _token_body(tokens["push"]), json_type),
        ),
        route(
            [{"path": [TOKEN_PATH], "header": basic}],
            _basic_auth(username, password_hash),
            static(200, _token_body(tokens["write"]), json_type),
        ),
        # Without credentials: a token that reads (everything, or what
        # was pushed), never writes. /v2/ still challenges, so docker and
        # skopeo send the credentials they have.
        route([{"path": [TOKEN_PATH]}], static(200, _token_body(anonymous), json_type)),
        # Basic credentials are checked (401 when wrong), then served.
        route([{"header": basic}], _basic_auth(username, password_hash)),
    ]
    allowed = [{"header": {"Authorization": ["Bearer " + tokens[kind]]}} for kind in ("write", "push")]
    allowed += [{"header": basic}, {"header": {"Authorization": ["Bearer " + anonymous]}, "method": list(READ_METHODS)}]
    routes.append(route([{"not": allowed}], _challenge(service)))
    return routes


def _token_body(token):
    # No issued_at: docker, skopeo and containerd take the time they got it.
    return json.dumps(
        {"token": token, "access_token": token, "expires_in": TOKEN_EXPIRES_IN},
        separators=(",", ":"),
        sort_keys=True,
    )


def _challenge(service):
    # The realm is the address the client used (an alias, an IPv6 name).
    return static(
        401,
        UNAUTHORIZED_BODY,
        dict(
            registry_headers(),
            **{
                "WWW-Authenticate": [
                    'Bearer realm="https://{http.request.hostport}%s",service="%s"' % (TOKEN_PATH, service)
                ]
            },
        ),
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
