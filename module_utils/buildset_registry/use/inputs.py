# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The input of the `use` entry point: checked, and turned into what every
client family needs (endpoints, mirrors, credentials, namespaces, names).

Pure: validate() raises RegistryError naming the option; the use module
reports the role variable (common/options.py's use_variables()) instead.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.namespaces import host_error, parse

REQUIRED_KEYS = ("host", "port", "push_host", "push_port", "username", "password", "cert", "mirrors")


@dataclass
class Wanted:
    """What the node should use, derived from valid input."""

    endpoints: list  # host:port of every endpoint (certs and credentials for each)
    mirrors: list  # host:port in pull order (one: the registry's one endpoint)
    cert: str
    auth: str  # base64 of username:password, as docker's config.json holds it
    namespaces: list = field(default_factory=list)
    addresses: dict = field(default_factory=dict)  # host name -> IP address for /etc/hosts
    # Reads need no login: dockerd gets no credentials under Docker Hub's key.
    anonymous_pull: bool = False

    @property
    def push(self):
        """host:port that serves pushed images of other namespaces: the first mirror."""
        return self.mirrors[0]

    def push_path(self, namespace):
        """The repository prefix that shadows namespace
        (a port's colon is not allowed in a repository name: '_' instead)."""
        return "%s/%s" % (self.push, namespace.replace(":", "_"))


def _port(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 0 < value < 65536 else None


def _endpoint(value):
    """(host, port) of a "host:port" string, or None."""
    if not isinstance(value, str) or ":" not in value:
        return None
    host, port = value.rsplit(":", 1)
    return (host, _port(port)) if host_error(host) is None and _port(port) else None


def _check_fact(registry):
    """Refuse a fact that is missing, incomplete or holds values clients reject."""
    if not isinstance(registry, dict) or not registry:
        raise RegistryError(
            "registry",
            "{registry} is not set: set it to the fact the main entry point of run-buildset-registry "
            "returns (or that a parent job returned), with keys %s",
            ", ".join(REQUIRED_KEYS),
        )
    missing = [key for key in REQUIRED_KEYS if registry.get(key) in (None, "", [])]
    if missing:
        raise RegistryError(
            "registry", "{registry} lacks %s: pass the whole fact the main entry point returns", ", ".join(missing)
        )
    for key in ("host", "push_host"):
        why = host_error(registry[key])
        if why:
            raise RegistryError("registry", "{registry}.%s: %r %s", key, registry[key], why)
    for key in ("port", "push_port"):
        if not _port(registry[key]):
            raise RegistryError("registry", "{registry}.%s: %r is not a port (1 to 65535)", key, registry[key])
    user, password = registry["username"], registry["password"]
    if not isinstance(user, str) or ":" in user or not isinstance(password, str):
        raise RegistryError("registry", "{registry}.username must be a string without a colon, and password a string")
    if "-----BEGIN CERTIFICATE-----" not in str(registry["cert"]):
        raise RegistryError("registry", "{registry}.cert is not a PEM certificate")
    anonymous = registry.get("anonymous_pull", False)
    if not isinstance(anonymous, bool):
        raise RegistryError("registry", "{registry}.anonymous_pull: %r is not a boolean", anonymous)


def _check_mirrors(mirrors, endpoints):
    if not isinstance(mirrors, list) or not all(_endpoint(m) for m in mirrors):
        raise RegistryError("registry", "{registry}.mirrors: %r is not a list of host:port strings", mirrors)
    strange = [m for m in mirrors if m not in endpoints]
    if strange or len(set(mirrors)) != len(mirrors):
        raise RegistryError(
            "registry",
            "{registry}.mirrors: %r must list endpoints of this registry (%s), each once",
            mirrors,
            ", ".join(endpoints),
        )


def _check_addresses(addresses):
    if not isinstance(addresses, dict):
        raise RegistryError("registry", "{registry}.addresses: %r is not a dict of host name -> IP address", addresses)
    for name, address in addresses.items():
        try:
            ipaddress.ip_address(address)
        except (TypeError, ValueError):
            raise RegistryError(
                "registry", "{registry}.addresses: %r is not an IP address (for %s)", address, name
            ) from None
        if host_error(name) is not None or not re.search("[a-z]", str(name).lower()):
            raise RegistryError("registry", "{registry}.addresses: %r is not a host name", name)


def basic_auth(username, password):
    """base64 of username:password, as docker's config.json holds it (and
    as entry.secrets() masks it)."""
    return base64.b64encode(("%s:%s" % (username, password)).encode()).decode()


def validate(registry, namespaces):
    """Check the fact and the namespaces; return a Wanted. Changes nothing."""
    _check_fact(registry)
    push_only = "%s:%d" % (registry["push_host"], _port(registry["push_port"]))
    one = "%s:%d" % (registry["host"], _port(registry["port"]))
    endpoints = list(dict.fromkeys([push_only, one]))
    mirrors = registry["mirrors"]
    _check_mirrors(mirrors, endpoints)
    addresses = registry.get("addresses") or {}
    _check_addresses(addresses)
    # What the registry serves, when its fact says; else the option
    # (checked either way: bad input is refused, wherever it is).
    names = [ns.name for ns in parse(namespaces, registry=endpoints, served=False)]
    served = registry.get("namespaces")
    if served:
        if not isinstance(served, list):
            raise RegistryError("registry", "{registry}.namespaces: %r is not a list of namespaces", served)
        names = [ns.name for ns in parse(served, registry=endpoints, served=False)]
    return Wanted(
        endpoints=endpoints,
        mirrors=list(mirrors),
        cert=str(registry["cert"]),
        auth=basic_auth(registry["username"], registry["password"]),
        namespaces=names,
        addresses=dict(addresses),
        anonymous_pull=registry.get("anonymous_pull", False),
    )
