# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: buildset_registry_cert
short_description: Keep the buildset registry's self-signed TLS certificate
description:
  - Makes a private key (EC P-256) and a self-signed certificate under
    O(root)C(/certs) for the buildset registry, and keeps both while they
    remain usable.
  - The certificate is its own CA (C(basicConstraints CA:TRUE), C(keyCertSign)),
    so clients such as docker, skopeo and curl can trust it as a CA file.
  - Its subjectAltName covers O(host), C(127.0.0.1), C(::1), C(localhost) and
    O(extra_names); each name is an IP SAN when it parses as an IPv4 or IPv6
    address, a DNS SAN otherwise.
  - The certificate is regenerated only when it is missing or unparsable,
    does not match the key, lacks a requested name, or expires within
    O(renew_days); never just because time passed. A missing or unparsable
    key means a new key and certificate.
  - Part of the run-buildset-registry role; paths under O(root) come from
    its module_utils C(buildset_registry/common/layout.py).
options:
  root:
    description:
      - Directory of the registry (the role's C(buildset_registry_root)).
      - Made C(0700) when missing, with C(certs/) (C(0700)) below it.
    type: path
    required: true
  host:
    description:
      - Address clients use (the role's C(buildset_registry_host)); it goes
        into the subjectAltName and, truncated to 64 characters, the common name.
      - An IPv4 or IPv6 address, or a DNS name of labels of 1-63 letters,
        digits and C(-) (not at either end), 253 characters at most.
    type: str
    required: true
  extra_names:
    description:
      - More subjectAltNames, IP addresses or DNS names as for O(host)
        (the role's C(buildset_registry_cert_extra_names)).
    type: list
    elements: str
    default: []
  valid_days:
    description:
      - Validity of a newly made certificate, in days.
    type: int
    default: 365
  renew_days:
    description:
      - Make a new certificate when the current one expires within this many
        days. Must be less than O(valid_days).
    type: int
    default: 30
attributes:
  check_mode:
    description: Works out what would change and writes nothing.
    support: full
  diff_mode:
    description:
      - Shows subject, subjectAltNames, expiry and SHA-256 fingerprint of the
        certificate before and after; never key material.
    support: full
notes:
  - The key file is C(0600), the certificate C(0644). Both are written to a
    temporary file in the same directory and renamed into place.
author:
  - run-buildset-registry developers
"""

EXAMPLES = r"""
- name: Make sure the registry has a certificate for its address
  buildset_registry_cert:
    root: /home/zuul/buildset_registry
    host: 203.0.113.10
  register: __buildset_registry_cert

- name: Make sure the certificate also names the node's DNS name
  buildset_registry_cert:
    root: "{{ buildset_registry_root }}"
    host: "{{ buildset_registry_host }}"
    extra_names:
      - registry.example.org
    valid_days: 90
    renew_days: 10
"""

RETURN = r"""
cert:
  description:
    - The certificate, PEM text. Clients use it as their CA file.
    - Empty in check mode when a new certificate would be made.
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
cert_path:
  description: Path of the certificate file.
  returned: always
  type: str
  sample: /home/zuul/buildset_registry/certs/domain.crt
key_path:
  description: Path of the private key file (the key itself is never returned).
  returned: always
  type: str
  sample: /home/zuul/buildset_registry/certs/domain.key
sans:
  description:
    - subjectAltNames of the certificate; the requested ones in check mode
      when a new certificate would be made.
  returned: always
  type: list
  elements: str
  sample: ["IP:203.0.113.10", "IP:127.0.0.1", "IP:::1", "DNS:localhost"]
not_after:
  description:
    - End of validity, ISO 8601 in UTC. Empty in check mode when a new
      certificate would be made.
  returned: always
  type: str
  sample: "2026-07-01T12:00:00+00:00"
fingerprint:
  description:
    - SHA-256 fingerprint of the certificate, lowercase hex without colons.
      Empty in check mode when a new certificate would be made.
  returned: always
  type: str
  sample: 3f1c0c5e8a0d0b6a7d9f2e4c1b3a5d7e9f0a2c4e6b8d0f1a3c5e7b9d1f3a5c7e
reasons:
  description: Why the key or certificate was (or would be) made or fixed; empty when kept.
  returned: always
  type: list
  elements: str
  sample: ["subjectAltName lacks IP:203.0.113.10"]
"""

from ansible.module_utils.buildset_registry.common.options import part_spec
from ansible.module_utils.buildset_registry.common.shell import run_module


def job(params, check_mode, result):
    # Imported once run_module has checked that cryptography will do.
    from ansible.module_utils.buildset_registry.registry.cert import run

    run(params, check_mode, result)


def main():
    run_module(part_spec("cert"), job, needs=("cryptography",))


if __name__ == "__main__":
    main()
