"""Run a module's main() with arguments, the way Ansible would, and read
its JSON result."""

import json

import pytest

from ansible.module_utils.testing import patch_module_args


def run_main(main, args, capsys):
    """Return (exit code, result dict) of main() run with args."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            main()
    return exc.value.code, json.loads(capsys.readouterr().out)
