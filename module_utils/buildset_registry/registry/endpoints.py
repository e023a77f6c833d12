# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The containers the registry is made of, as data: pure.

- push: a registry:2 holding what the buildset pushed;
- proxy: a registry:2 in proxy mode caching the upstream, its storage
  apart from the pushed data;
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
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common.layout import (
    CONTAINER_CERTS,
    CONTAINER_DATA,
    CONTAINER_FRONT_CONFIG,
    CONTAINER_REGISTRY_CONFIG,
)
from ansible.module_utils.buildset_registry.common.options import PORT_OPTIONS
from ansible.module_utils.buildset_registry.registry import front, storage
from ansible.module_utils.buildset_registry.registry.config import REGISTRY_KINDS, render_config

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


def socket_name(root, kind):
    """The abstract socket of one registry: readable, unique per root."""
    name = "@buildset-registry%s/%s" % (root.rstrip("/"), kind)
    if len(name.encode("utf-8")) > _SOCKET_MAX:
        name = "@buildset-registry-%s/%s" % (hashlib.sha256(root.encode("utf-8")).hexdigest()[:20], kind)
    return name


def container_names(params):
    return {"push": params["push_container"], "proxy": params["proxy_container"], "front": params["front_container"]}


def registry_endpoint(kind, params, paths):
    socket = socket_name(paths["root"], kind)
    config = render_config(
        kind,
        socket,
        params["proxy_remote_url"],
        params["proxy_username"],
        params["proxy_password"],
        storage.storage_config(kind, params),
        storage.http_secret(params),
    )
    data_dir = storage.data_dir(kind, params, paths)
    return Endpoint(
        kind=kind,
        name=container_names(params)[kind],
        image=params["image"],
        image_option="image",
        ports=(),
        socket=socket,
        config_path=paths["%s_config" % kind],
        config=config,
        mount=CONTAINER_REGISTRY_CONFIG,
        entrypoint=(),
        command=(CONTAINER_REGISTRY_CONFIG,),
        binds=("%s:%s:rw" % (data_dir, CONTAINER_DATA),) if data_dir else (),
        served=(),
        option="proxy_remote_url" if kind == "proxy" else "image",
    )


def front_endpoint(params, paths, password_hash, tokens):
    """The front; password_hash and tokens go into its 0600 configuration."""
    config = front.render_front_config(
        port=params["port"],
        push_port=params["push_port"],
        push_dial="unix/" + socket_name(paths["root"], "push"),
        proxy_dial="unix/" + socket_name(paths["root"], "proxy"),
        cert_file=CONTAINER_CERTS + "/domain.crt",
        key_file=CONTAINER_CERTS + "/domain.key",
        username=params["username"],
        password_hash=password_hash,
        tokens=tokens,
        anonymous_pull=params["anonymous_pull"],
    )
    return Endpoint(
        kind="front",
        name=container_names(params)["front"],
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
    return [registry_endpoint(kind, params, paths) for kind in REGISTRY_KINDS] + [
        front_endpoint(params, paths, password_hash, tokens)
    ]
