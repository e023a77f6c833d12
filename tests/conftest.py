"""One way to import the role's code in every test.

Modules import their logic as ``ansible.module_utils.<name>``, which is how
Ansible ships a role's module_utils; extending that package's path lets the
tests import the very same files the same way. Modules in library/ are
loaded with tests/unit/module_runner.load_library().
"""

import os

import ansible.module_utils

ROLE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_MODULE_UTILS = os.path.join(ROLE_DIR, "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
