# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What containerd's clients (ctr --hosts-dir, nerdctl, the CRI plugin
with config_path) need, in its hosts directory /etc/containerd/certs.d:

- per endpoint (E = host:port): E/ca.crt, and E/hosts.toml with the
  credentials, so that E/name pulls and pushes work directly;
- per namespace N: N/hosts.toml, the buildset's endpoints as hosts in
  pull order before N's own server. docker.io at the endpoints' root; any
  other N at the first mirror's prefix N (/v2/N/NAME/...), where the front
  serves pushed images first, then N's cache. containerd adds ?ns=N to
  every request to a mirror, also with override_path.

As measured with containerd 1.6.20: a host URL's path replaces the default
/v2 only with override_path = true, so the first mirror's path for a
namespace is written as https://E/v2/PATH. Credentials go in as a static
Authorization header: the files are 0600.

Pure: Targets and bytes out, no I/O.
"""

from __future__ import annotations

from ansible.module_utils.buildset_registry.common.namespaces import DOCKER_IO
from ansible.module_utils.buildset_registry.use.state import in_certs_d, toml_string

ETC = "/etc/containerd"
CERTS_D = ETC + "/certs.d"
# containerd's own name for Docker Hub's registry host.
SERVERS = {DOCKER_IO: "https://registry-1.docker.io"}


def ca_path(endpoint):
    return "%s/%s/ca.crt" % (CERTS_D, endpoint)


def _header(table, auth):
    return "  [%s.header]\n    Authorization = %s\n" % (table, toml_string("Basic " + auth))


def namespace_hosts(wanted, namespace):
    """hosts.toml of namespace: its mirrors in order, then its server."""
    out = [
        "# Written by run-buildset-registry (tasks_from: use); buildset_registry_state: absent removes it.\n",
        "server = %s\n" % toml_string(SERVERS.get(namespace, "https://" + namespace)),
    ]
    if namespace == DOCKER_IO:
        hosts = [(m, "https://" + m, False) for m in wanted.mirrors]
    else:
        path = wanted.push_path(namespace)
        hosts = [(wanted.push, "https://%s/v2/%s" % tuple(path.split("/", 1)), True)]
    for endpoint, url, override in hosts:
        table = "host.%s" % toml_string(url)
        out.append(
            '\n[%s]\n  capabilities = ["pull", "resolve"]\n  ca = %s\n' % (table, toml_string(ca_path(endpoint)))
        )
        if override:
            out.append("  override_path = true\n")
        out.append(_header(table, wanted.auth))
    return "".join(out).encode()


def endpoint_hosts(wanted, endpoint):
    """hosts.toml of one endpoint: its cert and credentials. containerd
    1.6 ignores a hosts.toml without a host table, hence one for itself."""
    table = "host.%s" % toml_string("https://" + endpoint)
    return (
        "# Written by run-buildset-registry (tasks_from: use); buildset_registry_state: absent removes it.\n"
        'server = %s\n\n[%s]\n  capabilities = ["pull", "resolve", "push"]\n  ca = %s\n%s'
        % (toml_string("https://" + endpoint), table, toml_string(ca_path(endpoint)), _header(table, wanted.auth))
    ).encode()


def targets(wanted):
    out = []
    for endpoint in wanted.endpoints:
        out.append(in_certs_d(ETC, endpoint, "ca.crt", wanted.cert.encode()))
        out.append(in_certs_d(ETC, endpoint, "hosts.toml", endpoint_hosts(wanted, endpoint), mode=0o600, secret=True))
    for ns in wanted.namespaces:
        out.append(in_certs_d(ETC, ns, "hosts.toml", namespace_hosts(wanted, ns), mode=0o600, secret=True))
    return out
