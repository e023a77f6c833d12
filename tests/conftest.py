"""Make the role's module_utils and library importable without Ansible.

Modules import their logic as ``ansible.module_utils.<name>``, which is how
Ansible ships a role's module_utils; extending that package's path lets the
unit tests import the very same files.
"""

import os
import sys

import ansible.module_utils

ROLE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

for sub in ("module_utils", "library"):
    path = os.path.join(ROLE_DIR, sub)
    if path not in sys.path:
        sys.path.insert(0, path)
mu = os.path.join(ROLE_DIR, "module_utils")
if mu not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(mu)
