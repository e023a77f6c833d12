"""What the unit tests share: running a module's main() the way Ansible
would, loading a module file of library/, the role's wording of an error,
a module's params at their defaults, and the inputs several test files
build (a use fact, the containers part's params, an unwritable root)."""

import contextlib
import importlib.util
import json
import os
import stat

import pytest

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19: the unit tests on Python 3.9 (README.rst, Support matrix)

    @contextlib.contextmanager
    def patch_module_args(args):
        """The module arguments AnsibleModule reads, as ansible-core 2.19's helper sets them."""
        from ansible.module_utils import basic

        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved


ROLE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Any text the use entry point takes as a PEM certificate.
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def run_main(main, args, capsys):
    """Return (exit code, result dict) of main() run with args."""
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def load_library(name):
    """The module file library/NAME.py, loaded under a name of its own (the
    module_utils of the same name stay importable)."""
    path = os.path.join(ROLE_DIR, "library", name + ".py")
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


def containers_params(**over):
    """The containers part's params: its defaults, a root, a host, an upstream
    and a user; docker.io the one namespace (three containers)."""
    from ansible.module_utils.buildset_registry.common.options import part_spec

    given = dict(root="/srv/bsr", host="127.0.0.1", proxy_remote_url="https://registry-1.docker.io", username="zuul",
                 namespaces=["docker.io"])  # fmt: skip
    return option_params(part_spec("containers"), **dict(given, **over))


def use_fact(port=5000, password="s3cret", **over):
    """A buildset_registry fact with the one endpoint on port, push on
    port + 1 and both as mirrors (push first), as facts before the front had
    them and `use` still takes; the main entry point now returns one mirror,
    mirrors=[host:port] (tests pass it as an override)."""
    fact = dict(
        host="registry.example.org",
        port=port,
        push_host="registry.example.org",
        push_port=port + 1,
        username="zuul",
        password=password,
        cert=CERT,
        mirrors=["registry.example.org:%d" % (port + 1), "registry.example.org:%d" % port],
    )
    fact.update(over)
    return fact


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def refuse_chmod(monkeypatch):
    """Every os.chmod fails as on a file the user does not own."""

    def chmod(path, mode):
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr(os, "chmod", chmod)


def unwritable_root(tmp_path):
    """A root below a file: no directory can be made there."""
    (tmp_path / "file").write_text("x")
    return str(tmp_path / "file" / "registry")
