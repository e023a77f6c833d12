# -*- coding: utf-8 -*-

# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: buildset_registry
short_description: Run a buildset registry in one step (the role's module)
description:
  - Does the role's whole job in one module run, since each module task
    costs more Ansible overhead than the work itself.
  - Checks every input, that the Docker engine answers, that the image is
    here (pulled when missing) and that no other program holds a port,
    before it changes anything.
  - Then does what M(buildset_registry_cert), M(buildset_registry_htpasswd)
    and M(buildset_registry_containers) do, with the same functions. It keeps
    or makes the key and self-signed certificate, keeps or writes the
    htpasswd entry (generating and storing a password when none is given),
    and keeps, creates, recreates or restarts the push registry, the proxy
    registry and the front, returning when they answer. A proxy whose
    upstream cannot be used is a warning, not a failure (RV(upstreams)).
  - Returns the registry's coordinates, the password included, in
    RV(buildset_registry), and sets them as the fact C(buildset_registry)
    (RV(ansible_facts)); the task that calls it must be C(no_log).
  - Needs the C(docker), C(cryptography) and C(bcrypt) Python packages and a
    running Docker engine on the target.
options:
  root:
    description: Directory holding certs/, auth/, config/, data/ and cache/; absolute.
    type: path
    required: true
  host:
    description: Address clients use; goes into the certificate and the result.
    type: str
    required: true
  port:
    description: Port of the one endpoint (push, pushed images first, the upstream cached).
    type: int
    default: 5000
  push_port:
    description: Port of the push-only endpoint; not O(port).
    type: int
    default: 5001
  image:
    description: Image of both registries; pulled when missing.
    type: str
    default: registry:2
  front_image:
    description: Image of the front (Caddy 2); pulled when missing.
    type: str
    default: caddy:2
  anonymous_pull:
    description:
      - What clients read without the login (a read-only token). false, what the
        buildset pushed; true, everything, the upstreams' caches included.
      - Pushes always need the login.
    type: bool
    default: false
  proxy_remote_url:
    description: The proxy's upstream, an http(s) URL.
    type: str
    default: https://registry-1.docker.io
  proxy_username:
    description: Username for the upstream; empty for none.
    type: str
    default: ""
  proxy_password:
    description: Password for the upstream; written only to the proxy's 0600 configuration file.
    type: str
    default: ""
  username:
    description: Username clients log in with.
    type: str
    default: zuul
  password:
    description:
      - Password clients log in with. Empty generates one (192 bits), stored
        0600 in O(root)/auth/password and reused on later runs.
    type: str
    default: ""
  state:
    description:
      - V(present) runs the registry and waits until its containers answer.
      - V(absent) removes the three containers and keeps every file under O(root).
    type: str
    choices: [present, absent]
    default: present
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
  cert_extra_names:
    description: More subjectAltNames (DNS names or IP addresses).
    type: list
    elements: str
    default: []
  cert_valid_days:
    description: Validity of a new certificate, in days.
    type: int
    default: 365
  cert_renew_days:
    description: Make a new certificate when the current one expires within this many days.
    type: int
    default: 30
  bcrypt_cost:
    description: bcrypt cost of the htpasswd entry, 4 to 31.
    type: int
    default: 4
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
    default: unix:///var/run/docker.sock
    type: str
attributes:
  check_mode:
    support: full
    details: Reports what would change; writes, pulls and starts nothing.
  diff_mode:
    support: full
    details: >-
      Shows what changes in the certificate, the htpasswd entry and each
      container; never a key, hash or password.
  platform:
    platforms: posix
requirements:
  - docker (the Docker SDK for Python) >= 5.0.3; before 7.1.0, with requests < 2.32 and urllib3 < 2
  - cryptography >= 3.4.8
  - bcrypt >= 3.2.0
author:
  - run-buildset-registry developers
"""

EXAMPLES = r"""
- name: Run the buildset registry and keep its coordinates
  buildset_registry:
    root: /var/lib/buildset_registry
    host: 192.0.2.10
    proxy_remote_url: https://registry-1.docker.io
  register: registry
  no_log: true

- name: Remove the containers, keep the data
  buildset_registry:
    root: /var/lib/buildset_registry
    host: 192.0.2.10
    state: absent
"""

RETURN = r"""
buildset_registry:
  description: The registry's coordinates, as the role's fact of the same name.
  returned: state is present
  type: dict
  sample:
    host: 192.0.2.10
    port: 5000
    push_host: 192.0.2.10
    push_port: 5001
    username: zuul
    password: (secret)
    cert: "-----BEGIN CERTIFICATE-----..."
    mirrors: ["192.0.2.10:5000"]
    addresses: {}
    anonymous_pull: false
ansible_facts:
  description: The fact C(buildset_registry), the same dict as RV(buildset_registry).
  returned: state is present
  type: dict
  sample: {buildset_registry: {host: 192.0.2.10, port: 5000, "...": "..."}}
certificate:
  description: What happened to the certificate (see M(buildset_registry_cert)).
  returned: state is present
  type: dict
  sample: {changed: false, reasons: [], cert_path: /var/lib/buildset_registry/certs/domain.crt,
           sans: ["IP:192.0.2.10", "IP:127.0.0.1"], not_after: "2027-11-28T00:00:00+00:00",
           fingerprint: 3f1c0c5e8a0d}
htpasswd:
  description: What happened to the htpasswd entry (see M(buildset_registry_htpasswd)).
  returned: state is present
  type: dict
  sample: {changed: false, reasons: [], htpasswd_path: /var/lib/buildset_registry/auth/htpasswd,
           password_generated: true}
containers:
  description: What happened to each container (see M(buildset_registry_containers)).
  returned: always
  type: dict
  sample:
    push: {name: buildset_registry, id: 3a4b5c, action: unchanged}
    proxy: {name: buildset_proxy, id: 0d1e2f, action: unchanged}
    front: {name: buildset_front, id: 7e8f9a, action: restarted, ports: [5000, 5001]}
endpoints:
  description: Where clients reach the one endpoint (registry) and the push-only endpoint (push).
  returned: always
  type: dict
  sample:
    registry: {host: 192.0.2.10, port: 5000, address: "192.0.2.10:5000"}
    push: {host: 192.0.2.10, port: 5001, address: "192.0.2.10:5001"}
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
  description: Image reference -> ID of the images the containers run (null in check mode when still to be pulled).
  returned: state is present
  type: dict
  sample: {"registry:2": "sha256:3c3913ad2fac", "caddy:2": "sha256:9b1e3d0c4a55"}
"""

from ansible.module_utils.buildset_registry.common.options import role_spec, role_variables
from ansible.module_utils.buildset_registry.common.shell import run_module
from ansible.module_utils.buildset_registry.registry.entry import run


def job(params, check_mode, result):
    try:
        run(params, check_mode, result)
    finally:
        # Warnings name the role's variables.
        result["warnings"] = [str(w) if isinstance(w, str) else w.render(NAMES) for w in result.get("warnings", [])]
    if "buildset_registry" in result:
        # The fact itself: a set_fact task would cost more than the module's work.
        result["ansible_facts"] = {"buildset_registry": result["buildset_registry"]}


NAMES = role_variables()


def main():
    run_module(
        role_spec(),
        job,
        names=NAMES,
        needs=("docker", "cryptography", "bcrypt"),
        start={"containers": {}},
        returns=("buildset_registry", "password"),
    )


if __name__ == "__main__":
    main()
