# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The namespaces both entry points serve: `buildset_registry_namespaces`,
checked and made one shape. Pure.

Each entry is one of:
- a registry host alone (``quay.io``): pushed images only, no cache;
- zuul-jobs' shape, a ``[host, url]`` pair: a cache of url too;
- a dict ``{name, url, username, password}``, url and credentials optional.

docker.io is always served (bare names are its names); its cache's URL and
credentials are its entry's, unless `buildset_registry_proxy_remote_url`
is changed from Docker Hub's or `buildset_registry_proxy_username` or
`_password` is set (the main entry point passes them as docker_io). A bad entry raises
RegistryError naming the entry and the fix, before anything changes.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from ansible.module_utils.buildset_registry.common.errors import RegistryError

DOCKER_IO = "docker.io"
# Other spellings of Docker Hub; clients file them under docker.io.
DOCKER_IO_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
# zuul-jobs' four and ghcr.io, with their public URLs.
HUB_URL = "https://registry-1.docker.io"
DEFAULT = (
    (DOCKER_IO, HUB_URL),
    ("quay.io", "https://quay.io"),
    ("gcr.io", "https://gcr.io"),
    ("registry.k8s.io", "https://registry.k8s.io"),
    ("ghcr.io", "https://ghcr.io"),
)
DICT_KEYS = ("name", "url", "username", "password")

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(r"^%s(?:\.%s)*$" % (_LABEL, _LABEL))
_URL = re.compile(r"^https?://[^/\s?#@]+(/[^\s?#]*)?$")


@dataclass(frozen=True)
class Namespace:
    """One registry whose images the buildset may shadow (and cache)."""

    name: str
    url: str = ""  # "" serves pushed images only
    username: str = ""
    password: str = ""

    @property
    def path(self):
        """Its repository prefix at the registry (a port's colon is not
        allowed in a repository name: '_' instead)."""
        return self.name.replace(":", "_")

    @property
    def cached(self):
        return bool(self.url)

    def public(self):
        """What the fact says of it: no credentials."""
        return {"name": self.name, "url": self.url}


def host_error(value):
    """Why value is not a host a client accepts in an image reference, or None."""
    if not isinstance(value, str) or not value:
        return "is empty or not a string"
    try:
        addr = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        addr = None
    if addr is not None:
        if addr.version == 6:
            return (
                "is an IPv6 address, which docker, skopeo and podman reject in image references; "
                "give a host name and map it with the key addresses ({name: address})"
            )
        return None
    if len(value) > 253 or not _HOST.match(value.lower()) or value.split(".")[-1].isdigit():
        return "is not a DNS name or IPv4 address"
    return None


def _name_error(name):
    if not isinstance(name, str) or not name:
        return "is not a registry host name"
    if "://" in name:
        return "has a scheme; give the host name alone, and the URL as the second item ([host, url])"
    if "/" in name:
        return "has a path; give the registry's host name alone (the buildset shadows whole registries)"
    if name != name.lower():
        return "has upper-case letters; registry host names are lowercase here"
    if name in DOCKER_IO_ALIASES:
        return "names Docker Hub by another name; write docker.io"
    host, _, port = name.partition(":")
    if (
        host_error(host) is not None
        or (port and not (port.isdigit() and 0 < int(port) < 65536))
        or ("." not in host and not port and host != "localhost")
    ):
        return (
            "is not a registry host name such as quay.io, ghcr.io or registry.example.com:5000 "
            "(a DNS name with a dot, or with a port)"
        )
    return None


def _entry(item):
    """(name, url, username, password) of one entry, or raise."""
    if isinstance(item, str):
        return item, "", "", ""
    if isinstance(item, (list, tuple)):
        if len(item) != 2 or not all(isinstance(part, str) for part in item):
            raise RegistryError(
                "namespaces", "{namespaces}: %r is not a [host, url] pair (zuul-jobs' shape) of two strings", item
            )
        return item[0], item[1], "", ""
    if isinstance(item, dict):
        unknown = sorted(set(item) - set(DICT_KEYS))
        if unknown or "name" not in item:
            raise RegistryError(
                "namespaces",
                "{namespaces}: an entry %s; a dict takes name (required), url, username and password",
                "lacks name" if "name" not in item else "has unknown keys %s" % ", ".join(unknown),
            )
        values = [item.get(key) or "" for key in DICT_KEYS]
        if not all(isinstance(value, str) for value in values):
            raise RegistryError(
                "namespaces", "{namespaces}: the entry for %r holds a value that is not a string", values[0]
            )
        return tuple(values)
    raise RegistryError(
        "namespaces",
        "{namespaces}: %r is not a registry host name, a [host, url] pair or a dict with name and url",
        item,
    )


def parse(value, docker_io=("", "", ""), registry=(), served=True):
    """The namespaces of value, in order, docker.io first.

    docker_io: (url, username, password) for docker.io (see the module's
    docstring); registry: the registry's own host:port endpoints, never a
    namespace; served: the registry's list, where docker.io always is (the
    `use` entry point leaves out what the list leaves out).
    """
    if not isinstance(value, (list, tuple)):
        raise RegistryError("namespaces", "{namespaces}: %r is not a list of namespaces", value)
    found = {}
    for item in value:
        name, url, username, password = _entry(item)
        why = _name_error(name)
        if why:
            raise RegistryError("namespaces", "{namespaces}: %r %s", name, why)
        if name in found:
            raise RegistryError("namespaces", "{namespaces}: %r is given twice; list each registry once", name)
        if name in registry:
            raise RegistryError("namespaces", "{namespaces}: %r is the buildset registry itself; leave it out", name)
        if url and not _URL.match(url):
            raise RegistryError(
                "namespaces",
                "{namespaces}: the URL of %s, %r, is not an http(s) URL without credentials; write it as "
                "https://HOST[:PORT] (credentials go in username and password)",
                name,
                url,
            )
        if (username or password) and not url:
            raise RegistryError(
                "namespaces", "{namespaces}: %s has credentials but no URL; give the URL of its upstream", name
            )
        found[name] = Namespace(name, url.rstrip("/"), username, password)
    if not served and DOCKER_IO not in found:
        return list(found.values())
    hub = found.pop(DOCKER_IO, None) or Namespace(DOCKER_IO)
    url, username, password = (part or "" for part in docker_io)
    url = url.rstrip("/")
    # buildset_registry_proxy_remote_url changed from its default wins.
    if url and (not hub.url or url != HUB_URL):
        hub = replace(hub, url=url)
    if username or password:
        hub = replace(hub, username=username, password=password)
    return [hub, *found.values()]


def default_value():
    """The default of `buildset_registry_namespaces`, as zuul-jobs writes it."""
    return [list(pair) for pair in DEFAULT]
