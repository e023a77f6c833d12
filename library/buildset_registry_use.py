# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: buildset_registry_use
short_description: Make every container client on a node pull through the buildset registry
description:
  - The module of the role's C(use) entry point. It makes the Docker engine
    and CLI, containers-image tools (podman, buildah, skopeo, cri-o) and
    containerd's clients (ctr, nerdctl, the CRI plugin with C(config_path))
    pull through the buildset registry, its endpoints in the order of
    O(registry.mirrors) (pushed images first), and trust its certificate.
  - Docker (when C(/etc/docker) exists or C(dockerd) is installed) gets the
    certificate in C(/etc/docker/certs.d/HOST:PORT/ca.crt) per endpoint, the
    mirrors as C(registry-mirrors) in C(/etc/docker/daemon.json) (other keys
    kept; a running dockerd reloads them on SIGHUP, without restarting
    containers), and credentials in the user's C(~/.docker/config.json) for
    every endpoint and under Docker Hub's key, which the engine hands to its
    mirrors.
  - containers-image tools (when C(/etc/containers) exists or one is
    installed) get the certificate in C(/etc/containers/certs.d), a drop-in
    C(/etc/containers/registries.conf.d/90-buildset-registry.conf) with one
    C([[registry]]) per namespace, and credentials in the user's
    C(~/.config/containers/auth.json), with a C(docker.io) entry that keeps
    them from sending the buildset's credentials to Docker Hub.
  - containerd (when C(/etc/containerd) exists or it is installed) gets
    C(/etc/containerd/certs.d/NAMESPACE/hosts.toml) per namespace and
    C(/etc/containerd/certs.d/HOST:PORT/) with the certificate and a
    C(hosts.toml) per endpoint, credentials as an C(Authorization) header
    (files C(0600)).
  - Standalone buildkit (when C(/etc/buildkit) exists or C(buildkitd),
    C(buildctl) or the C(docker) CLI, whose plugin buildx is, is
    installed) gets C(/etc/buildkit/buildkitd.toml), the file zuul-jobs'
    buildx builder is created with. It holds C([registry."N"]) with C(mirrors) per
    namespace (C(HOST:PORT) for C(docker.io), C(HOST:PORT/N) for any other)
    and C([registry."HOST:PORT"]) with C(ca) per endpoint, the certificate in
    C(/etc/buildkit/certs.d/HOST:PORT/ca.crt). Our tables are one block
    between C(# BEGIN run-buildset-registry) and C(# END) lines; the rest of
    the file keeps its bytes. A C([registry."N"]) table of the file's own
    moves into the block, our mirrors first and its other keys kept, and
    goes back on O(state=absent).
  - Host names in O(registry.addresses) get a line in C(/etc/hosts), marked
    C(# buildset-registry), written in place (C(/etc/hosts) may be a bind
    mount in a container).
  - Remembers in C(/var/lib/buildset-registry/use-state.json) (C(0600)) what
    each file held before it first changed it. O(state=absent) takes back
    exactly what it added, restoring each file byte for byte when nobody
    changed it since, and removes the files and directories it made.
  - Refuses bad input, a C(daemon.json), C(config.json) or C(auth.json) that
    is not JSON, a C(buildkitd.toml) that is not TOML, and a dockerd
    started with C(--registry-mirror), before it changes anything. Run it
    as root.
options:
  registry:
    description:
      - The fact C(buildset_registry) the role's main entry point returns
        (C(host), C(port), C(push_host), C(push_port), C(username),
        C(password), C(cert), C(mirrors), optionally C(addresses)).
      - Required when O(state=present). The task should be C(no_log); the
        module masks the password and credentials in its result.
    type: dict
  namespaces:
    description:
      - "The namespaces to pull through the registry when O(registry) lists
        none in its C(namespaces) (the registry's fact lists what it
        serves). The same shapes as the role's C(buildset_registry_namespaces):
        C([host, url]) pairs, plain hosts, or dicts with C(name)."
      - C(docker.io) goes through every endpoint of O(registry.mirrors);
        any other namespace N through the first mirror's repository prefix
        C(N) (a port's colon written as C(_)), where the registry serves
        pushed images first, then its cache of N, then N itself.
    type: list
    elements: raw
    default:
      - [docker.io, "https://registry-1.docker.io"]
      - [quay.io, "https://quay.io"]
      - [gcr.io, "https://gcr.io"]
      - [registry.k8s.io, "https://registry.k8s.io"]
      - [ghcr.io, "https://ghcr.io"]
  state:
    description:
      - C(present) configures the clients; C(absent) takes back what an
        earlier run added.
    type: str
    choices: [present, absent]
    default: present
  home:
    description:
      - Home directory of the user whose C(~/.docker/config.json) and
        C(~/.config/containers/auth.json) get the credentials; files and
        directories made there belong to the owner of this directory.
      - "Empty: the home of the user Ansible connects as (C(SUDO_USER) under
        sudo, else the user running the module)."
    type: path
    default: ""
attributes:
  check_mode:
    description: Works out what would change, dockerd's reload included, and writes nothing.
    support: full
  diff_mode:
    description: Shows each file before and after; credentials masked.
    support: full
notes:
  - Part of the run-buildset-registry role; its C(use) entry point runs it
    once with C(buildset_registry), C(buildset_registry_namespaces),
    C(buildset_registry_state) and C(buildset_registry_use_home).
author:
  - run-buildset-registry developers
"""

EXAMPLES = r"""
- name: Make this node pull through the buildset registry
  buildset_registry_use:
    registry: "{{ buildset_registry }}"
    namespaces: [docker.io, quay.io]
  become: true
  no_log: true

- name: Take back what using the buildset registry changed
  buildset_registry_use:
    state: absent
  become: true
"""

RETURN = r"""
files:
  description: Every file planned, with what happened to it (or would, in check mode) and why.
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /etc/docker/daemon.json, action: updated, changed: true, reasons: ["registry-mirrors added"]}
    - {path: /etc/hosts, action: unchanged, changed: false, reasons: []}
clients:
  description: Which client families were found on the node, and so configured.
  returned: always
  type: dict
  sample: {docker: true, containers: true, containerd: true, buildkit: true}
dockerd:
  description:
    - The running dockerd, if any, and whether it was (or would be) sent SIGHUP.
    - C(mirrors) are those it runs with after the reload (from its API);
      C(confirmed) says the reload was seen to take effect.
  returned: always
  type: dict
  sample: {pid: 3070, reloaded: true, confirmed: true, mirrors: ["https://registry.example.org:5001"]}
home:
  description: The home directory whose docker and containers credentials were set.
  returned: always
  type: str
  sample: /home/zuul
state_file:
  description: Where the module remembers what it changed.
  returned: always
  type: str
  sample: /var/lib/buildset-registry/use-state.json
"""

from ansible.module_utils.buildset_registry.common.options import use_spec, use_variables
from ansible.module_utils.buildset_registry.common.shell import run_module
from ansible.module_utils.buildset_registry.use.entry import run, secrets


def main():
    run_module(
        use_spec(),
        run,
        names=use_variables(),
        secrets=secrets,
        hidden=("registry",),
        os_hint="run the use entry point as root",
    )


if __name__ == "__main__":
    main()
