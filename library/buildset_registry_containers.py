# -*- coding: utf-8 -*-

# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: buildset_registry_containers
short_description: Run the buildset registry's proxy and push containers
description:
  - Runs two containers of one registry image on one data directory, with
    host networking, restart policy C(always), TLS (minimum TLS 1.2) from
    O(root)/certs and htpasswd authentication from O(root)/auth/htpasswd.
  - The proxy container serves O(port) as a pull-through cache of
    O(proxy_remote_url); the push container serves O(push_port) as a plain
    registry.
  - Each container's registry configuration is written to O(root)/config
    (mode 0600) and mounted read-only, so upstream credentials never appear
    in the container's environment.
  - A container is recreated only when its desired spec (image ID,
    environment, mounts, configuration, port, restart policy, network)
    changes, restarted when the certificate, key or htpasswd it serves
    changed, started when it is stopped.
  - Returns only when both endpoints answer C(/v2/) with 401 over verified
    TLS; a container that exits or restarts meanwhile fails the task with
    its last log lines and the likely cause.
  - Needs the C(docker) Python SDK and a running Docker engine on the target.
options:
  root:
    description:
      - Directory holding certs/, auth/, config/ and data/ (see the role's
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
    description: Port of the proxy endpoint.
    type: int
    default: 5000
  push_port:
    description: Port of the push endpoint; not O(port).
    type: int
    default: 5001
  image:
    description:
      - Image of both containers; pulled when missing.
    type: str
    default: registry:2
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
  proxy_container:
    description: Name of the proxy container.
    type: str
    default: buildset_proxy
  push_container:
    description: Name of the push container.
    type: str
    default: buildset_registry
  state:
    description:
      - V(present) runs both containers and waits until both answer.
      - V(absent) removes both containers and keeps every file under O(root).
    type: str
    choices: [present, absent]
    default: present
  wait_timeout:
    description: Seconds to wait until both endpoints answer.
    type: int
    default: 60
  storage_mode:
    description:
      - V(shared) keeps both endpoints on one storage; V(separate) gives the
        proxy its own cache, so that pushed images shadow upstream ones.
    type: str
    choices: [shared, separate]
    default: shared
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
      - Default: E(DOCKER_HOST), else C(unix:///var/run/docker.sock).
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
  - docker (Python SDK) >= 7.0
author:
  - run-buildset-registry developers
"""

EXAMPLES = r"""
- name: Run the proxy and push endpoints of the buildset registry
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

- name: Remove both containers, keeping the data
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
    proxy:
      description: The proxy container.
      type: dict
      contains:
        name: {description: Container name., type: str}
        id: {description: Container ID; null when it does not exist (yet)., type: str}
        action:
          description: One of created, recreated, restarted, started, unchanged, removed, absent.
          type: str
        port: {description: Port of the endpoint., type: int}
    push:
      description: The push container, as RV(containers.proxy).
      type: dict
  sample:
    proxy: {name: buildset_proxy, id: 3f1c9a..., action: created, port: 5000}
    push: {name: buildset_registry, id: 9b2e07..., action: unchanged, port: 5001}
image_id:
  description: ID of the image both containers run; null in check mode when it is still to be pulled.
  returned: state is present
  type: str
  sample: sha256:3c3913ad2fac0a1fd2d2e3c5c4e1bd0bdfcc0e1e3b1d6d0b0e8a1e5c0f0e9a11
image_pulled:
  description: Whether the image was pulled (or would be, in check mode).
  returned: state is present
  type: bool
  sample: false
endpoints:
  description: Where clients reach each endpoint.
  returned: always
  type: dict
  sample:
    proxy: {host: 192.0.2.10, port: 5000, address: "192.0.2.10:5000"}
    push: {host: 192.0.2.10, port: 5001, address: "192.0.2.10:5001"}
ready_seconds:
  description: Seconds spent waiting until both endpoints answered 401.
  returned: state is present and not in check mode
  type: float
  sample: 0.21
"""

from ansible.module_utils.buildset_registry.common.errors import Outcome
from ansible.module_utils.buildset_registry.common.options import part_spec
from ansible.module_utils.buildset_registry.common.shell import run_module
from ansible.module_utils.buildset_registry.registry.containers import run
from ansible.module_utils.buildset_registry.registry.engine import docker


def job(params, check_mode, result):
    outcome = Outcome(header="containers", data={"containers": {}})
    try:
        run(params, check_mode, outcome)
    finally:
        # A failure still shows what was done.
        result.update(outcome.report(), diff=outcome.diff())


def main():
    run_module(
        part_spec("containers"),
        job,
        required_if=[("state", "present", ["proxy_remote_url"])],
        needs={"docker": docker},
        start={"containers": {}, "reasons": []},
    )


if __name__ == "__main__":
    main()
