# -*- coding: utf-8 -*-

# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: buildset_registry_containers
short_description: Run the buildset registry's three containers
description:
  - Runs, with host networking and restart policy C(always), a push
    registry (pushed images in O(root)/data), a proxy registry caching
    O(proxy_remote_url) (in O(root)/cache), both of O(image) and listening
    only on abstract unix sockets of the node, and a front of
    O(front_image) (Caddy) holding TLS (minimum TLS 1.2) from
    O(root)/certs, the login (a token challenge; the bcrypt hash of
    O(root)/auth/htpasswd) and both public ports.
  - O(port) is the one endpoint; it takes pushes, serves pushed images
    first and everything else from the proxy. O(push_port) reaches the push
    registry only.
  - Each container's configuration is written to O(root)/config (mode
    0600) and mounted read-only, so credentials never appear in a
    container's environment.
  - A container is recreated only when its desired spec (image ID,
    command, mounts, configuration, ports, restart policy, network)
    changes, the front restarted when the certificate or key it serves
    changed, a container started when it is stopped.
  - Returns only when each registry answers on its socket and the front
    answers C(/v2/) over verified TLS on both ports (401, the login's
    challenge; 200 with the write token); a container that exits or
    restarts meanwhile fails the task with its last log lines and the
    likely cause.
  - A proxy whose upstream (O(proxy_remote_url)) refuses connections, does
    not resolve, does not answer, fails TLS or answers 401 to
    O(proxy_username)/O(proxy_password) is a warning, not a failure; see
    RV(upstreams).
  - Needs the C(docker) Python SDK and a running Docker engine on the target.
options:
  root:
    description:
      - Directory holding certs/, auth/, config/, data/ and cache/ (see the role's
        module_utils buildset_registry/common/layout.py).
      - With O(state=absent) nothing under it is touched.
    type: path
    required: true
  host:
    description:
      - Address clients use; only reported in RV(endpoints).
    type: str
    required: true
  port:
    description: Port of the one endpoint.
    type: int
    default: 5000
  push_port:
    description: Port of the push-only endpoint; not O(port).
    type: int
    default: 5001
  image:
    description:
      - Image of both registries; pulled when missing.
    type: str
    default: registry:2
  front_image:
    description:
      - Image of the front (Caddy 2, C(caddy) on its PATH); pulled when missing.
    type: str
    default: caddy:2
  username:
    description:
      - The login's user, whose bcrypt hash O(root)/auth/htpasswd holds.
        Required with O(state=present).
    type: str
  password:
    description:
      - The login's password, which keys the front's tokens; empty reads the
        one stored in O(root)/auth/password.
    type: str
    default: ""
  anonymous_pull:
    description:
      - What clients read without the login (a read-only token). false, what the
        buildset pushed; true, everything, the upstreams' caches included.
      - Pushes always need the login.
    type: bool
    default: false
  proxy_remote_url:
    description:
      - The proxy's upstream, an http(s) URL. Required with O(state=present).
    type: str
  proxy_username:
    description: Username for the upstream; empty for none.
    type: str
    default: ""
  proxy_password:
    description: Password for the upstream; written only to the proxy's 0600 configuration file.
    type: str
    default: ""
  namespaces:
    description:
      - The namespaces served; each with a URL gets a proxy registry (a
        cache) of its own. Entries are C([host, url]) pairs (zuul-jobs'
        shape), plain hosts (pushed images only) or dicts with C(name) and
        optional C(url), C(username), C(password).
      - docker.io is always served; O(proxy_remote_url) changed from Docker
        Hub's, and O(proxy_username) and O(proxy_password), apply to it.
    type: list
    elements: raw
    default:
      - [docker.io, "https://registry-1.docker.io"]
      - [quay.io, "https://quay.io"]
      - [gcr.io, "https://gcr.io"]
      - [registry.k8s.io, "https://registry.k8s.io"]
      - [ghcr.io, "https://ghcr.io"]
  proxy_container:
    description:
      - Name of docker.io's proxy registry's container; another namespace N's
        is C(<this>-N) (a port's colon as C(_)).
    type: str
    default: buildset_proxy
  push_container:
    description: Name of the push registry's container.
    type: str
    default: buildset_registry
  front_container:
    description: Name of the front's container.
    type: str
    default: buildset_front
  state:
    description:
      - V(present) runs the three containers and waits until they answer.
      - V(absent) removes them and keeps every file under O(root).
    type: str
    choices: [present, absent]
    default: present
  wait_timeout:
    description: Seconds to wait until every container answers.
    type: int
    default: 60
  object_storage:
    description:
      - Empty for the filesystem under O(root); otherwise one key, the
        registry's storage driver (V(s3) or V(swift)), with its parameters.
    type: dict
    default: {}
  http_secret:
    description:
      - The registry's http.secret; empty derives one from O(object_storage)
        (none for the filesystem).
    type: str
    default: ""
  docker_host:
    description:
      - The engine's Docker-compatible API, e.g. a Podman service's socket.
      - "Default: E(DOCKER_HOST), else C(unix:///var/run/docker.sock)."
    type: str
attributes:
  check_mode:
    support: full
    details: Reports what would be done to each container; pulls, writes and starts nothing.
  diff_mode:
    support: full
    details: Shows each container's state before and the action after; never the configuration's secrets.
  platform:
    platforms: posix
requirements:
  - docker (the Docker SDK for Python) >= 5.0.3; before 7.1.0, with requests < 2.32 and urllib3 < 2
author:
  - run-buildset-registry developers
"""

EXAMPLES = r"""
- name: Run the buildset registry's containers
  buildset_registry_containers:
    root: /var/lib/buildset_registry
    host: 192.0.2.10
    proxy_remote_url: https://registry-1.docker.io

- name: Run them on other ports, with upstream credentials
  buildset_registry_containers:
    root: /var/lib/buildset_registry
    host: registry.example.org
    port: 15000
    push_port: 15001
    proxy_remote_url: https://registry-1.docker.io
    proxy_username: ci
    proxy_password: "{{ upstream_password }}"
  no_log: true

- name: Remove the three containers, keeping the data
  buildset_registry_containers:
    root: /var/lib/buildset_registry
    host: 192.0.2.10
    state: absent
"""

RETURN = r"""
containers:
  description: What was done to each container (or would be, in check mode).
  returned: always
  type: dict
  contains:
    push:
      description: The push registry's container.
      type: dict
      contains:
        name: {description: Container name., type: str}
        id: {description: Container ID; null when it does not exist (yet)., type: str}
        action:
          description: One of created, recreated, restarted, started, unchanged, removed, absent.
          type: str
    proxy:
      description: The proxy registry's container, as RV(containers.push).
      type: dict
    front:
      description: The front's container, as RV(containers.push), with the public C(ports) it holds.
      type: dict
  sample:
    push: {name: buildset_registry, id: 9b2e07..., action: unchanged}
    proxy: {name: buildset_proxy, id: 3f1c9a..., action: created}
    front: {name: buildset_front, id: 5d0a3c..., action: created, ports: [5000, 5001]}
upstreams:
  description:
    - Each proxy's upstream as the module found it before starting the proxy
      (a probe of its C(/v2/) with a 4 s timeout). One that is not usable is
      a warning, not a failure; the proxy is not waited for, and a waiter
      process starts it once the upstream answers.
  returned: state is present
  type: dict
  sample:
    buildset_proxy:
      url: https://registry-1.docker.io
      usable: false
      cause: refused
      detail: "ConnectionRefusedError: [Errno 111] Connection refused"
      waiter: 4242
image_ids:
  description:
    - Image reference -> ID of the images the containers run; an ID is null
      in check mode when it is still to be pulled.
  returned: state is present
  type: dict
  sample: {"registry:2": "sha256:3c3913ad2fac", "caddy:2": "sha256:9b1e3d0c4a55"}
images_pulled:
  description: The images pulled (or that would be, in check mode).
  returned: state is present
  type: list
  elements: str
  sample: []
endpoints:
  description: Where clients reach the one endpoint (registry) and the push-only endpoint (push).
  returned: always
  type: dict
  sample:
    registry: {host: 192.0.2.10, port: 5000, address: "192.0.2.10:5000"}
    push: {host: 192.0.2.10, port: 5001, address: "192.0.2.10:5001"}
ready_seconds:
  description: Seconds spent waiting until every container answered.
  returned: state is present and not in check mode
  type: float
  sample: 0.21
"""

from ansible.module_utils.buildset_registry.common.errors import Outcome
from ansible.module_utils.buildset_registry.common.options import part_spec
from ansible.module_utils.buildset_registry.common.shell import run_module
from ansible.module_utils.buildset_registry.registry.containers import run


def job(params, check_mode, result):
    outcome = Outcome(header="containers", data={"containers": {}})
    try:
        run(params, check_mode, outcome)
    finally:
        # A failure still shows what was done.
        result.update(outcome.report(), diff=outcome.diff())
        # Warnings name this module's options (str() of a RegistryError).
        result["warnings"] = [str(w) for w in result.get("warnings", [])]


def main():
    run_module(
        part_spec("containers"),
        job,
        required_if=[("state", "present", ["proxy_remote_url", "username"])],
        needs=("docker",),
        start={"containers": {}, "reasons": []},
    )


if __name__ == "__main__":
    main()
