# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The containers the registry is made of, as data: pure.

- push: a registry:2 holding what the buildset pushed;
- a proxy per namespace with a URL (common/namespaces.py): a registry:2 in
  proxy mode caching that upstream, its storage apart from the pushed data
  and from the other caches. docker.io's is kind "proxy" (its names, paths
  and socket as before namespaces), another namespace N's "proxy-N" (a
  port's colon as "_");
- front: Caddy, holding both public ports, the TLS certificate and the
  login, routing to the two registries (registry/front.py).

The two registries listen only on the node, on abstract unix sockets
(no file to go stale when a container dies; with host networking every
container shares the node's network namespace, so the front reaches them),
without TLS or login of their own. Adding a container is one more entry
in endpoint_list(). The list is in start order: the front comes last.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common.layout import (
    CONTAINER_CERTS,
    CONTAINER_DATA,
    CONTAINER_FRONT_CONFIG,
    CONTAINER_REGISTRY_CONFIG,
)
from ansible.module_utils.buildset_registry.common.namespaces import DOCKER_IO, HUB_URL, parse
from ansible.module_utils.buildset_registry.common.options import PORT_OPTIONS
from ansible.module_utils.buildset_registry.registry import front, storage
from ansible.module_utils.buildset_registry.registry.config import PROXY, REGISTRY_KINDS, render_config

KINDS = (*REGISTRY_KINDS, "front")
# The files under the root the front reads only at start (layout() names).
SERVED_FILES = ("cert", "key")
# Abstract socket names hold at most 107 bytes.
_SOCKET_MAX = 100


@dataclass(frozen=True)
class Endpoint:
    """One container of the registry: what it runs, reads and holds."""

    kind: str
    name: str  # container name
    image: str  # image reference
    image_option: str  # the option naming the image
    ports: tuple  # (option, port) of each public port it holds
    socket: str  # abstract unix socket it listens on, "" for none
    config_path: str  # its configuration file on the host (0600)
    config: str  # that file's text
    mount: str  # where the container reads the file
    entrypoint: tuple  # () keeps the image's
    command: tuple
    binds: tuple  # more binds, "SRC:DST:MODE"
    served: tuple  # layout() names of files it reads only at start
    option: str  # the option a failure to start is about
    namespace: str = ""  # a proxy's namespace
    upstream: tuple = ()  # a proxy's (url, username, password)


def socket_name(root, kind):
    """The abstract socket of one registry: readable, unique per root."""
    name = "@buildset-registry%s/%s" % (root.rstrip("/"), kind)
    if len(name.encode("utf-8")) > _SOCKET_MAX:
        name = "@buildset-registry-%s/%s" % (hashlib.sha256(root.encode("utf-8")).hexdigest()[:20], kind)
    return name


def served_namespaces(params):
    """Every namespace served, docker.io first, checked (RegistryError)."""
    own = ["%s:%s" % (params["host"], params[option]) for option in PORT_OPTIONS]
    hub = (params.get("proxy_remote_url") or HUB_URL, params.get("proxy_username"), params.get("proxy_password"))
    return parse(params.get("namespaces") or [], docker_io=hub, registry=own)


def cached_namespaces(params):
    """The namespaces with an upstream to cache: one proxy each."""
    return [ns for ns in served_namespaces(params) if ns.cached]


def proxy_kind(namespace):
    return PROXY if namespace.name == DOCKER_IO else "%s-%s" % (PROXY, namespace.path)


def base_names(params):
    """The three containers' names, the namespaces' proxies left out."""
    return {kind: container_name(params, kind) for kind in ("push", PROXY, "front")}


def container_name(params, kind):
    """A container's name: its option's, a namespace's proxy named after docker.io's."""
    if kind.startswith(PROXY + "-"):
        return params["proxy_container"] + kind[len(PROXY) :]
    return params["%s_container" % kind]


def container_names(params):
    """kind -> container name of every container (the proxies' from the namespaces)."""
    kinds = ["push", *(proxy_kind(ns) for ns in cached_namespaces(params)), "front"]
    return {kind: container_name(params, kind) for kind in kinds}


def _registry_endpoint(kind, namespace, params, paths):
    socket = socket_name(paths["root"], kind)
    upstream = (namespace.url, namespace.username, namespace.password) if namespace else ()
    role = PROXY if namespace else kind
    config = render_config(
        role,
        socket,
        *(upstream or (None, "", "")),
        storage=storage.storage_config(role, params, _cache_name(kind, namespace)),
        http_secret=storage.http_secret(params),
    )
    data_dir = _data_dir(kind, namespace, params, paths)
    config_path = paths["%s_config" % role] if kind in REGISTRY_KINDS else os.path.join(
        paths["config_dir"], "%s.yml" % kind
    )  # fmt: skip
    return Endpoint(
        kind=kind,
        name=container_name(params, kind),
        image=params["image"],
        image_option="image",
        ports=(),
        socket=socket,
        config_path=config_path,
        config=config,
        mount=CONTAINER_REGISTRY_CONFIG,
        entrypoint=(),
        command=(CONTAINER_REGISTRY_CONFIG,),
        binds=("%s:%s:rw" % (data_dir, CONTAINER_DATA),) if data_dir else (),
        served=(),
        option=("proxy_remote_url" if kind == PROXY else "namespaces") if namespace else "image",
        namespace=namespace.name if namespace else "",
        upstream=upstream,
    )


def data_dirs(params, paths):
    """The host directories the registries keep their data in (none with an object store)."""
    return [d for d in (_data_dir(kind, ns, params, paths) for kind, ns in _registries(params)) if d]


def _registries(params):
    return [("push", None)] + [(proxy_kind(ns), ns) for ns in cached_namespaces(params)]


def _data_dir(kind, namespace, params, paths):
    return storage.data_dir(PROXY if namespace else kind, params, paths, _cache_name(kind, namespace))


def _cache_name(kind, namespace):
    """docker.io's cache keeps the name it had before namespaces: none."""
    return namespace.path if namespace and kind != PROXY else ""


def registry_endpoints(params, paths):
    """The push registry, then a proxy per cached namespace."""
    return [_registry_endpoint(kind, ns, params, paths) for kind, ns in _registries(params)]


def front_endpoint(params, paths, password_hash, tokens):
    """The front; password_hash and tokens go into its 0600 configuration."""
    config = front.render_front_config(
        port=params["port"],
        push_port=params["push_port"],
        push_dial="unix/" + socket_name(paths["root"], "push"),
        namespaces=[
            (ns.name, ns.path, "unix/" + socket_name(paths["root"], proxy_kind(ns)) if ns.cached else None)
            for ns in served_namespaces(params)
        ],
        cert_file=CONTAINER_CERTS + "/domain.crt",
        key_file=CONTAINER_CERTS + "/domain.key",
        username=params["username"],
        password_hash=password_hash,
        tokens=tokens,
        anonymous_pull=params["anonymous_pull"],
    )
    return Endpoint(
        kind="front",
        name=container_name(params, "front"),
        image=params["front_image"],
        image_option="front_image",
        ports=tuple((option, params[option]) for option in PORT_OPTIONS),
        socket="",
        config_path=paths["front_config"],
        config=config,
        mount=CONTAINER_FRONT_CONFIG,
        # Both the caddy:2 image and the one built offline have it on PATH.
        entrypoint=("caddy",),
        command=("run", "--config", CONTAINER_FRONT_CONFIG),
        binds=("%s:%s:ro" % (paths["certs_dir"], CONTAINER_CERTS),),
        served=SERVED_FILES,
        option="front_image",
    )


def endpoint_list(params, paths, password_hash, tokens):
    """Every container of the registry, in start order."""
    return registry_endpoints(params, paths) + [front_endpoint(params, paths, password_hash, tokens)]
