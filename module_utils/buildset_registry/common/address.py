# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""How clients name the registry: host names and host:port strings; pure."""

from __future__ import annotations

import ipaddress

# The name zuul-jobs' use-buildset-registry gives an IP-address host in
# /etc/hosts; the certificate names it so that those nodes trust it.
ZUUL_JOBS_ALIAS = "zuul-jobs.buildset-registry"


def is_ip(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def client_host(host):
    """The name clients use for host: host itself, except for an IPv6
    address, which docker, skopeo and podman reject in image references
    ([::1]:5000/x is "invalid reference format"); it gets a name of its own
    (the certificate names it; the use entry point makes it resolve)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 4:
        return host
    return "buildset-registry-v6-" + address.exploded.replace(":", "")


def host_port(host, port):
    """host:port with an IPv6 address in brackets."""
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "%s:%d" % (host, port)
