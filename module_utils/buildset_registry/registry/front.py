# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The front (Caddy) of the buildset registry: its JSON configuration.

Pure functions, standard library only: no Docker, no files. Caddy holds TLS
and both public ports, does the login (the token challenge Docker Hub and
zuul-registry use) and routes to the two registries, which listen on the
node only (abstract unix sockets or loopback), without TLS or login:

- `port`: writes, blob HEADs, names under a registry host, /v2/ and the
  catalog go to the push registry; so does everything a client does with
  a push token or the anonymous token of pushed content. Other manifest,
  blob and tag reads go to the push registry (asked with every manifest
  type accepted, so a pushed manifest is found whatever the client's
  Accept) and, on its 404 only, to the proxy registry. What the proxy
  cannot give (an error, no answer, not running) is a 404 with
  distribution's error body: clients move on to their next mirror;
- `push_port`: everything to the push registry.

The login and its tokens are registry/login.py's; the pieces of Caddy's
JSON, registry/caddy.py's.

render_front_config() gives stable text: the role hashes it to decide
restarts.
"""

from __future__ import annotations

import json
import re

from ansible.module_utils.buildset_registry.common.namespaces import DOCKER_IO
from ansible.module_utils.buildset_registry.registry.caddy import (
    READ_METHODS,
    WRITE_METHODS,
    error_body,
    registry_headers,
    route,
    static,
)
from ansible.module_utils.buildset_registry.registry.login import (
    SERVICE,
    check_tokens,
    login_routes,
    push_only_tokens,
)

# The TLS certificate's tag; the connection policies select it by that tag.
CERT_TAG = "buildset-registry"
MINIMUM_TLS = "tls1.2"
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
# Every manifest type the push registry stores: asked with all of them, it
# serves a pushed manifest as it is (with the client's Accept it answers 404
# for a type left out, which would send the client to upstream's image).
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
# What the proxy fails with that a client must take as "not here": upstream
# refusing the proxy's credentials or its rate, any server error (registry
# 2.8's proxy wraps upstream's 404 for a digest in a 500), no answer.
PROXY_FAILURES = (401, 403, 429, 5)
PROXY_HEADER_TIMEOUT = "30s"
# An ns nobody configured, as a repository prefix (a port's colon as "_").
_OTHER_NS = (
    (r"^([a-z0-9][a-z0-9.-]*)$", "{http.regexp.ns.1}"),
    (r"^([a-z0-9][a-z0-9.-]*):([0-9]+)$", "{http.regexp.ns.1}_{http.regexp.ns.2}"),
)
# Set on a request the proxy is asked, so that an error (the proxy not
# running, no answer in time) is told from the push registry's.
_FALLBACK_VAR = "buildset_fallback"
_NOT_FOUND = (
    (r"/manifests/[^/]+$", "MANIFEST_UNKNOWN", "manifest unknown"),
    (r"/blobs/[^/]+$", "BLOB_UNKNOWN", "blob unknown to registry"),
    (r"/tags/list$", "NAME_UNKNOWN", "repository name not known to registry"),
)

# Tokens go into header matchers and JSON bodies as they are.
_BCRYPT = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
# Caddy upstream addresses: unix/PATH, unix/@ABSTRACT, HOST:PORT.
_NS_PATH = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_DIAL = re.compile(r"^(?:unix/@?[^\s]+|[^\s/]+:\d+)$")


def front_config(
    *,
    port,
    push_port,
    push_dial,
    namespaces,
    cert_file,
    key_file,
    username,
    password_hash,
    tokens,
    anonymous_pull,
    service=SERVICE,
):
    """Return Caddy's JSON configuration of the front as a dict.

    push_dial is a Caddy upstream address ("unix/@NAME" for an abstract unix
    socket, "127.0.0.1:PORT"); namespaces lists each namespace served as
    (name, path, dial): its host, its repository prefix (a port's colon as
    "_") and its proxy's address, None when it has no cache; docker.io
    first. password_hash is the bcrypt
    hash of the htpasswd line; tokens is derive_tokens()'s result (of the
    two anonymous tokens, "read" is used only when anonymous_pull is on,
    "pushed" only when it is off).
    """
    _check(port, push_port, push_dial, namespaces, username, password_hash, tokens, anonymous_pull, service)
    login = login_routes(username, password_hash, tokens, anonymous_pull, service)
    endpoint = _server(port, login + _endpoint_routes(push_dial, namespaces, tokens, anonymous_pull))
    # The proxy's failures the routes could not answer (not running, no
    # answer in time) come here as errors: a 404 like any other miss.
    endpoint["errors"] = {"routes": [route([{"vars": {_FALLBACK_VAR: ["proxy"]}}], *_not_found_handlers())]}
    return {
        # No admin endpoint, and no autosave.json written at start.
        "admin": {"disabled": True, "config": {"persist": False}},
        "apps": {
            "http": {
                "servers": {
                    "endpoint": endpoint,
                    "push": _server(push_port, login + [route(None, _proxy(push_dial))]),
                },
            },
            "tls": {
                "certificates": {
                    "load_files": [{"certificate": cert_file, "key": key_file, "tags": [CERT_TAG]}],
                },
            },
        },
    }


def _endpoint_routes(push_dial, namespaces, tokens, anonymous_pull):
    """The one endpoint's routes after the login, in order (the module's docstring)."""
    push = _proxy(push_dial)
    reads = {"method": list(READ_METHODS), "path_regexp": {"name": "shadowed", "pattern": SHADOWED_READ_PATH}}
    (_, _, hub_dial), others = namespaces[0], namespaces[1:]
    hub = _push_first(push_dial, hub_dial) if hub_dial else push
    routes = [
        route([{"method": list(WRITE_METHODS)}, {"path_regexp": {"name": "upload", "pattern": UPLOAD_PATH}}], push),
        route([{"header": {"Authorization": ["Bearer " + t]}} for t in push_only_tokens(tokens, anonymous_pull)], push),
        route([{"method": ["HEAD"], "path_regexp": {"name": "blob", "pattern": BLOB_PATH}}], push),
        route([{"path": ["/v2", "/v2/", "/v2/_catalog"]}], push),
    ]
    # /v2/N/NAME/...: pushed at N/NAME first, then N's cache at NAME.
    for _, path, dial in others:
        prefix = "/v2/%s/" % path
        routes.append(
            route([dict(reads, path=[prefix + "*"])], _push_first(push_dial, dial, strip=prefix) if dial else push)
        )
    # docker.io spelled out (microk8s): the same image as without it.
    routes.append(route([dict(reads, path=["/v2/docker.io/*"])], _rewrite_strip("/v2/docker.io/"), hub))
    # Any other host: pushed images only.
    routes.append(route([{"path_regexp": {"name": "host", "pattern": HOST_NAME_PATH}}], push))
    # containerd's ?ns=N on a bare path: the same as /v2/N/NAME/....
    bare = dict(reads, path_regexp={"name": "bare", "pattern": r"^/v2/(.+)$"})
    for name, path, dial in others:
        target = _push_first(push_dial, dial, strip="/v2/%s/" % path) if dial else push
        routes.append(route([dict(bare, query={"ns": [name]})], _rewrite_into(path), target))
    routes.append(route([dict(bare, query={"ns": [DOCKER_IO]})], hub))
    # An ns nobody configured: pushed images under it only, never a dial.
    for pattern, into in _OTHER_NS:
        matcher = dict(bare, vars_regexp={"{http.request.uri.query.ns}": {"name": "ns", "pattern": pattern}})
        routes.append(route([matcher], _rewrite_into(into), push))
    routes.append(route([dict(bare, query={"ns": ["*"]})], _not_found_handlers()[0]))
    routes += [route([reads], hub), route(None, push)]
    return routes


def _push_first(push_dial, proxy_dial, strip=None):
    """The push registry, asked with every manifest type; on its 404 the
    proxy at proxy_dial (the path's strip prefix taken off), whose own
    failures become 404s (and its dial errors and time-outs too, through
    the server's error routes, which _FALLBACK_VAR selects)."""
    once = _proxy_or_404(proxy_dial)
    # registry 2.8's proxy now and then answers 500 for a blob another
    # client is fetching at the same time, and 200 a moment later: a blob
    # is asked once more before the client gets a 404.
    proxy = dict(
        once,
        handle_response=[
            {
                "match": {"status_code": [5]},
                "routes": [
                    route([{"path_regexp": {"name": "again", "pattern": BLOB_PATH}}], _proxy_or_404(proxy_dial)),
                    route(None, *_not_found_handlers()),
                ],
            },
            {"match": {"status_code": [code for code in PROXY_FAILURES if code != 5]}, "routes": _not_found_routes()},
        ],
    )
    fallback = [{"handler": "vars", _FALLBACK_VAR: "proxy"}]
    if strip:
        fallback.append(_rewrite_strip(strip))
    return dict(
        _proxy(push_dial, Accept=[", ".join(MANIFEST_TYPES)]),
        handle_response=[{"match": {"status_code": [404]}, "routes": [{"handle": fallback + [proxy]}]}],
    )


def _proxy_or_404(dial):
    """A proxy registry whose failures are 404s."""
    return dict(
        _proxy(dial),
        transport={"protocol": "http", "response_header_timeout": PROXY_HEADER_TIMEOUT},
        handle_response=[{"match": {"status_code": list(PROXY_FAILURES)}, "routes": _not_found_routes()}],
    )


def _rewrite_strip(prefix):
    """/v2/PREFIX/NAME/... -> /v2/NAME/... (the query kept)."""
    return {"handler": "rewrite", "uri_substring": [{"find": prefix, "replace": "/v2/", "limit": 1}]}


def _rewrite_into(path):
    """/v2/NAME/... -> /v2/PATH/NAME/... (path_regexp "bare" holds NAME/...)."""
    return {"handler": "rewrite", "uri": "/v2/%s/{http.regexp.bare.1}?{http.request.uri.query}" % path}


def _not_found_routes():
    return [{"handle": _not_found_handlers()}]


def _not_found_handlers():
    """distribution's 404 for what the request asked (a manifest, a blob, tags)."""
    routes = [
        route(
            [{"path_regexp": {"name": "missing", "pattern": pattern}}],
            static(404, error_body(code, message), registry_headers()),
        )
        for pattern, code, message in _NOT_FOUND
    ]
    routes.append(route(None, static(404, error_body("NOT_FOUND", "not found"), registry_headers())))
    return [{"handler": "subroute", "routes": routes}]


def render_front_config(**kwargs):
    """front_config() as stable JSON text (sorted keys, a final newline)."""
    return json.dumps(front_config(**kwargs), indent=2, sort_keys=True) + "\n"


def _check(port, push_port, push_dial, namespaces, username, password_hash, tokens, anonymous_pull, service):
    for name, value in (("port", port), ("push_port", push_port)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise ValueError("%s must be a TCP port number, not %r" % (name, value))
    if port == push_port:
        raise ValueError("port and push_port must differ (both are %d)" % port)
    if not namespaces or namespaces[0][0] != DOCKER_IO:
        raise ValueError("namespaces must start with docker.io")
    dials = [("push_dial", push_dial)] + [("%s's dial" % ns, dial) for ns, _, dial in namespaces if dial is not None]
    for name, value in dials:
        if not isinstance(value, str) or not _DIAL.match(value):
            raise ValueError("%s must be a Caddy dial address (unix/@NAME or HOST:PORT), not %r" % (name, value))
    for ns, path, _ in namespaces:
        if not _NS_PATH.match(path) or path != ns.replace(":", "_"):
            raise ValueError("namespace %r must be a registry host, with the path %r" % (ns, path))
    if not username or ":" in username:
        raise ValueError("username must be non-empty and hold no colon, not %r" % (username,))
    if not isinstance(password_hash, str) or not _BCRYPT.match(password_hash):
        raise ValueError("password_hash must be a bcrypt hash ($2b$NN$...)")
    check_tokens(tokens, anonymous_pull)
    if not service or '"' in service or "\\" in service or "{" in service:
        raise ValueError("service must be non-empty and hold no quote, backslash or brace, not %r" % (service,))


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


def _proxy(dial, **request_headers):
    # Caddy keeps the client's Host, so the registry builds Location URLs
    # for the address the client used; requests and responses stream (no
    # buffering, no timeout on a long transfer).
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": dial}],
        "headers": {"request": {"set": {"X-Forwarded-Proto": ["https"], **request_headers}}},
    }
