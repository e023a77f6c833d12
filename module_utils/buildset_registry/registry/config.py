# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The configuration of each registry, rendered as YAML: pure.

The role writes the text to layout()["push_config"] / ["proxy_config"]
(0600) and mounts it at CONTAINER_REGISTRY_CONFIG, so upstream credentials
never reach the container's environment. Both registries listen on an
abstract unix socket of the node, without TLS or login: the front holds
those (registry/front.py).
"""

from __future__ import annotations

import json
import re

from ansible.module_utils.buildset_registry.common.layout import CONTAINER_DATA

REGISTRY_KINDS = ("push", "proxy")
PROXY = "proxy"


def is_proxy(kind):
    """Whether an endpoint kind is a proxy: docker.io's "proxy" or another
    namespace N's "proxy-N" (registry/endpoints.py)."""
    return kind == PROXY or kind.startswith(PROXY + "-")


def registry_config(kind, socket, remote_url=None, username="", password="", storage=None, http_secret=""):
    """Return the configuration of one registry as a dict.

    kind is "proxy" (a pull-through cache of remote_url) or "push" (a plain
    registry); socket the abstract unix socket it listens on ("@NAME");
    storage the storage driver section (default: the filesystem at
    CONTAINER_DATA), http_secret the registry's http.secret (default: none).
    """
    if kind not in REGISTRY_KINDS:
        raise ValueError("kind must be one of %s, not %r" % (", ".join(REGISTRY_KINDS), kind))
    config = {
        "version": "0.1",
        "log": {"fields": {"service": "registry", "endpoint": kind}},
        "storage": {
            "cache": {"blobdescriptor": "inmemory"},
            **(storage or {"filesystem": {"rootdirectory": CONTAINER_DATA}}),
        },
        "http": {
            "net": "unix",
            "addr": socket,
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "health": {
            "storagedriver": {"enabled": True, "interval": "10s", "threshold": 3},
        },
    }
    if http_secret:
        config["http"]["secret"] = http_secret
    if kind == "proxy":
        if not remote_url:
            raise ValueError("the proxy endpoint needs a remote_url")
        proxy = {"remoteurl": remote_url}
        # registry 2.8 logs in upstream only when both are given.
        if username or password:
            proxy["username"] = username or ""
            proxy["password"] = password or ""
        config["proxy"] = proxy
    return config


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # A JSON string is a valid YAML double-quoted scalar: every character a
    # password may hold (quotes, colons, #, backslashes) stays literal.
    return json.dumps(str(value), ensure_ascii=False)


_PLAIN_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _key(key):
    return key if _PLAIN_KEY.match(key) else _scalar(key)


def _emit(value, indent, lines):
    pad = "  " * indent
    for key, item in value.items():
        key = _key(key)
        if isinstance(item, dict):
            lines.append("%s%s:" % (pad, key))
            _emit(item, indent + 1, lines)
        elif isinstance(item, list):
            lines.append("%s%s: [%s]" % (pad, key, ", ".join(_scalar(i) for i in item)))
        else:
            lines.append("%s%s: %s" % (pad, key, _scalar(item)))


def to_yaml(config):
    """Block-style YAML of a dict of dicts, flat lists and scalars."""
    lines = []
    _emit(config, 0, lines)
    return "\n".join(lines) + "\n"


def render_config(kind, socket, remote_url=None, username="", password="", storage=None, http_secret=""):
    """Return the full configuration of one registry as YAML text."""
    header = "# Written by the run-buildset-registry role; changes are overwritten.\n"
    return header + to_yaml(registry_config(kind, socket, remote_url, username, password, storage, http_secret))
