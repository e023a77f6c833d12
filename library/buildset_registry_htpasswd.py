# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: buildset_registry_htpasswd
short_description: Keep the buildset registry's htpasswd file and password
description:
  - Writes O(root)C(/auth/htpasswd) (C(0600)) holding exactly one line,
    C(username:bcrypt-hash), for the registry's basic authentication.
  - With an empty O(password), uses the password stored in
    O(root)C(/auth/password) (C(0600)), or generates one (192 random bits)
    and stores it there, so later runs return the same password.
  - A password given in O(password) is used and never stored; a stored
    password file from an earlier run is left alone.
  - Changes the htpasswd file only when it is missing or garbled, holds
    another user or more than one entry, its hash does not verify the
    password (checked with bcrypt, never by comparing hashes) or has another
    cost than O(bcrypt_cost). File modes other than C(0600) are fixed.
  - Returns the password; the task calling this module must be C(no_log).
  - Part of the run-buildset-registry role; paths under O(root) come from
    its module_utils C(buildset_registry/common/layout.py).
options:
  root:
    description:
      - Directory of the registry (the role's C(buildset_registry_root)).
      - Made C(0700) when missing, with C(auth/) (C(0700)) below it.
    type: path
    required: true
  username:
    description:
      - Name clients log in with (the role's C(buildset_registry_username)).
      - Not empty, without C(:), line breaks, a leading C(#) or surrounding spaces.
    type: str
    required: true
  password:
    description:
      - Password clients log in with (the role's C(buildset_registry_password)).
      - Empty uses the stored password or generates one.
      - At most 72 bytes, without line breaks.
    type: str
    default: ""
  bcrypt_cost:
    description:
      - bcrypt cost of the hash, 4 to 31 (the role's C(buildset_registry_bcrypt_cost)).
      - The registry checks the hash on every request, so the cost bounds
        its request rate.
    type: int
    default: 4
attributes:
  check_mode:
    description:
      - Works out what would change and writes nothing.
      - When a password would be generated, the returned RV(password) is empty.
    support: full
  diff_mode:
    description:
      - Shows the user and bcrypt cost before and whether the hash is updated;
        never hashes or passwords.
    support: full
notes:
  - Files are written to a temporary file in the same directory and renamed
    into place, with their final mode set before the rename.
  - The hash is written with the C($2y$) prefix, as Apache's C(htpasswd -B)
    does; the registry's Go bcrypt accepts C($2a$), C($2b$) and C($2y$).
author:
  - run-buildset-registry developers
"""

EXAMPLES = r"""
- name: Give the registry an htpasswd entry with a generated password
  buildset_registry_htpasswd:
    root: /home/zuul/buildset_registry
    username: zuul
  register: __buildset_registry_htpasswd
  no_log: true

- name: Give the registry an htpasswd entry with the user's password
  buildset_registry_htpasswd:
    root: "{{ buildset_registry_root }}"
    username: "{{ buildset_registry_username }}"
    password: "{{ buildset_registry_password }}"
    bcrypt_cost: "{{ buildset_registry_bcrypt_cost }}"
  register: __buildset_registry_htpasswd
  no_log: true
"""

RETURN = r"""
password:
  description:
    - The password clients log in with. The module exists to return it, so
      run it with C(no_log).
    - Empty only in check mode when a password would be generated.
  returned: always
  type: str
  sample: "p0F4xRz2d7m3N9qKc1VbY8sT6wLhJ5aE"
password_generated:
  description: True when the password was generated, now or by an earlier run (read from the stored file).
  returned: always
  type: bool
  sample: true
htpasswd_path:
  description: Path of the htpasswd file.
  returned: always
  type: str
  sample: /home/zuul/buildset_registry/auth/htpasswd
username:
  description: The user in the htpasswd file.
  returned: always
  type: str
  sample: zuul
reasons:
  description: What was (or would be) written or fixed, and why; empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: ["bcrypt cost 10, want 4"]
"""

from ansible.module_utils.buildset_registry.common.options import part_spec
from ansible.module_utils.buildset_registry.common.shell import run_module
from ansible.module_utils.buildset_registry.registry.htpasswd import run


def main():
    run_module(part_spec("htpasswd"), run, needs=("bcrypt",), returns=("password",))


if __name__ == "__main__":
    main()
