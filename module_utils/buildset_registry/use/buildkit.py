# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What standalone buildkit needs: /etc/buildkit/buildkitd.toml, the file
buildkitd reads by default and the one zuul-jobs' buildx builder is
created with (``docker buildx create --config /etc/buildkit/buildkitd.toml``,
which fails when it is missing), and the cert per endpoint.

- per namespace N, ``[registry."N"] mirrors``: the buildset's endpoints
  for docker.io, ``HOST:PORT/N`` (a port's colon as ``_``) for any other.
  buildkit resolves through containerd's resolver: a mirror's path goes
  after /v2 (``/v2/N/NAME/...``) and every request to a mirror carries
  ``?ns=N``; the front serves both forms.
- per endpoint E, ``[registry."E"] ca``: buildkit takes a mirror's TLS
  settings from the table of the mirror's host. buildx copies the files
  named there into its builder container.

Credentials come from the client's docker config.json (buildx and
buildctl hand them to buildkitd per request), where the docker family's
part of `use` puts them: none go into this file.

Our tables live in a block of our own (tomlblock); the rest of the file
keeps its bytes. Pure: Targets out, no I/O.
"""

from __future__ import annotations

from ansible.module_utils.buildset_registry.common.namespaces import DOCKER_IO
from ansible.module_utils.buildset_registry.use.state import Target, in_certs_d

ETC = "/etc/buildkit"
CONFIG = ETC + "/buildkitd.toml"
TOP = "registry"


def ca_path(endpoint):
    return "%s/certs.d/%s/ca.crt" % (ETC, endpoint)


def mirrors(wanted, namespace):
    return list(wanted.mirrors) if namespace == DOCKER_IO else [wanted.push_path(namespace)]


def tables(wanted):
    """Our [registry."..."] tables: name -> {key: value}, in file order."""
    out = {ns: {"mirrors": mirrors(wanted, ns)} for ns in wanted.namespaces}
    out.update((endpoint, {"ca": [ca_path(endpoint)]}) for endpoint in wanted.endpoints)
    return out


def targets(wanted):
    out = [in_certs_d(ETC, endpoint, "ca.crt", wanted.cert.encode()) for endpoint in wanted.endpoints]
    out.append(Target(path=CONFIG, kind="toml", content=tables(wanted), dirs=[(ETC, 0o755)]))
    return out
