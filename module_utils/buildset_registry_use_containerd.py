# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What containerd's clients (ctr --hosts-dir, nerdctl, the CRI plugin
with config_path) need, in its hosts directory /etc/containerd/certs.d:

- per endpoint (E = host:port): E/ca.crt, and E/hosts.toml with the
  credentials, so that E/name pulls and pushes work directly;
- per namespace N: N/hosts.toml, the buildset's endpoints as hosts in
  pull order before N's own server.

As measured with containerd 1.6.20: a host URL's path replaces the default
/v2 only with override_path = true, so the push endpoint's path for a
namespace is written as https://E/v2/PATH. Credentials go in as a static
Authorization header: the files are 0600.

Pure: Targets and bytes out, no I/O.
"""

from __future__ import annotations

import json

from ansible.module_utils.buildset_registry_use_input import DOCKER_IO
from ansible.module_utils.buildset_registry_use_state import Target

ETC = "/etc/containerd"
CERTS_D = ETC + "/certs.d"
# containerd's own name for Docker Hub's registry host.
SERVERS = {DOCKER_IO: "https://registry-1.docker.io"}


def _quote(text):
    return json.dumps(text)


def ca_path(endpoint):
    return "%s/%s/ca.crt" % (CERTS_D, endpoint)


def _header(table, auth):
    return "  [%s.header]\n    Authorization = %s\n" % (table, _quote("Basic " + auth))


def namespace_hosts(wanted, namespace):
    """hosts.toml of namespace: its mirrors in order, then its server."""
    out = [
        "# Written by run-buildset-registry (tasks_from: use); buildset_registry_state: absent removes it.\n",
        "server = %s\n" % _quote(SERVERS.get(namespace, "https://" + namespace)),
    ]
    if namespace == DOCKER_IO:
        hosts = [(m, "https://" + m, False) for m in wanted.mirrors]
    else:
        path = wanted.push_path(namespace)
        hosts = [(wanted.push, "https://%s/v2/%s" % tuple(path.split("/", 1)), True)]
    for endpoint, url, override in hosts:
        table = "host.%s" % _quote(url)
        out.append('\n[%s]\n  capabilities = ["pull", "resolve"]\n  ca = %s\n' % (table, _quote(ca_path(endpoint))))
        if override:
            out.append("  override_path = true\n")
        out.append(_header(table, wanted.auth))
    return "".join(out).encode()


def endpoint_hosts(wanted, endpoint):
    """hosts.toml of one endpoint: its cert and credentials. containerd
    1.6 ignores a hosts.toml without a host table, hence one for itself."""
    table = "host.%s" % _quote("https://" + endpoint)
    return (
        "# Written by run-buildset-registry (tasks_from: use); buildset_registry_state: absent removes it.\n"
        'server = %s\n\n[%s]\n  capabilities = ["pull", "resolve", "push"]\n  ca = %s\n%s'
        % (_quote("https://" + endpoint), table, _quote(ca_path(endpoint)), _header(table, wanted.auth))
    ).encode()


def targets(wanted):
    out = []
    for endpoint in wanted.endpoints:
        dirs = [(ETC, 0o755), (CERTS_D, 0o755), ("%s/%s" % (CERTS_D, endpoint), 0o755)]
        out.append(Target(path=ca_path(endpoint), kind="file", content=wanted.cert.encode(), dirs=dirs))
        out.append(
            Target(
                path="%s/%s/hosts.toml" % (CERTS_D, endpoint),
                kind="file",
                content=endpoint_hosts(wanted, endpoint),
                mode=0o600,
                secret=True,
                dirs=dirs,
            )
        )
    for ns in wanted.namespaces:
        out.append(
            Target(
                path="%s/%s/hosts.toml" % (CERTS_D, ns),
                kind="file",
                content=namespace_hosts(wanted, ns),
                mode=0o600,
                secret=True,
                dirs=[(ETC, 0o755), (CERTS_D, 0o755), ("%s/%s" % (CERTS_D, ns), 0o755)],
            )
        )
    return out
