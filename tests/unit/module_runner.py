"""Run a module's main() with arguments, the way Ansible would, and read
its JSON result."""

import importlib.util
import json
import os

import pytest

from ansible.module_utils.testing import patch_module_args


def run_main(main, args, capsys):
    """Return (exit code, result dict) of main() run with args."""
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def load_library(name):
    """The module file library/NAME.py, loaded under a name of its own (the
    module_utils of the same name stay importable)."""
    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "library", name + ".py"
    )
    spec = importlib.util.spec_from_file_location("library_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def role_message(error):
    """A RegistryError's message as the role's module words it (role variables)."""
    from ansible.module_utils.buildset_registry.common.options import role_variables

    return error.render(role_variables())


def option_params(spec, **given):
    """A module's params as AnsibleModule fills them: every option of spec
    (from module_utils/buildset_registry/common/options.py) at its default, then
    the given values."""
    params = {name: option.get("default") for name, option in spec.items()}
    params.update(given)
    return params
