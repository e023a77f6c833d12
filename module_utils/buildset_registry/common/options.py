# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The one list of options, from which every module's argument spec comes.

Each part (cert, htpasswd, containers) has its options here; a part module
takes exactly its own, and the role's module takes them all, the
certificate's prefixed with ``cert_`` (as the role variables are). The
role variable of an option is ``buildset_registry_`` + its name in the
role's module. The `use` entry point's module has its options here too
(USE), with their role variables. tests/unit/test_options.py checks that
each module's DOCUMENTATION, tasks/main.yml, tasks/use.yml,
defaults/main.yml and meta/argument_specs.yml name the same options as
this file.
"""

from __future__ import annotations

from ansible.module_utils.buildset_registry.common.namespaces import default_value as default_namespaces

# The engine's API when none is given (DOCKER_HOST aside).
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# The public ports, both held by the front: the one endpoint, and push only.
PORT_OPTIONS = ("port", "push_port")

ROOT = {"root": dict(type="path", required=True)}
HOST = {"host": dict(type="str", required=True)}
STATE = {"state": dict(type="str", default="present", choices=["present", "absent"])}

PARTS = {
    "cert": dict(
        ROOT,
        **HOST,
        extra_names=dict(type="list", elements="str", default=[]),
        valid_days=dict(type="int", default=365),
        renew_days=dict(type="int", default=30),
    ),
    "htpasswd": dict(
        ROOT,
        username=dict(type="str", required=True),
        password=dict(type="str", default="", no_log=True),
        bcrypt_cost=dict(type="int", default=4),
    ),
    "containers": dict(
        ROOT,
        **HOST,
        port=dict(type="int", default=5000),
        push_port=dict(type="int", default=5001),
        image=dict(type="str", default="registry:2"),
        front_image=dict(type="str", default="caddy:2"),
        # The front's login: the htpasswd part's user; its password (empty:
        # the stored one) keys the tokens. The role's module defaults it.
        username=dict(type="str"),
        password=dict(type="str", default="", no_log=True),
        anonymous_pull=dict(type="bool", default=False),
        # Required with state=present; the role's module defaults it (ROLE_DEFAULTS).
        proxy_remote_url=dict(type="str"),
        proxy_username=dict(type="str", default=""),
        proxy_password=dict(type="str", default="", no_log=True),
        # The namespaces served (common/namespaces.py): hosts, [host, url]
        # pairs or dicts; each with a URL gets a cache of its own. Not
        # no_log (it holds host names); the module masks the passwords.
        namespaces=dict(type="list", elements="raw", default=default_namespaces()),
        proxy_container=dict(type="str", default="buildset_proxy"),
        push_container=dict(type="str", default="buildset_registry"),
        front_container=dict(type="str", default="buildset_front"),
        wait_timeout=dict(type="int", default=60),
        # Not no_log: Ansible would mask every value (a bucket named "b"
        # masks each b in the output); mask_store_secrets() masks the secrets.
        object_storage=dict(type="dict", default={}),
        http_secret=dict(type="str", default="", no_log=True),
        # Default: DOCKER_HOST, else Docker's socket; the role's module: Docker's socket.
        docker_host=dict(type="str"),
        **STATE,
    ),
}

# The use entry point's module (buildset_registry_use).
USE = dict(
    # Not no_log: Ansible would then mask every value of the dict (host
    # names and ports too) wherever it appears; use/entry.py's secrets()
    # gives what to mask.
    registry=dict(type="dict"),
    # The fact's namespaces when it has them (what the registry serves),
    # else these; the same shapes as the role's (common/namespaces.py).
    namespaces=dict(type="list", elements="raw", default=default_namespaces()),
    **STATE,
    home=dict(type="path", default=""),
)
# Its options' role variables where they are not buildset_registry_ + the name.
USE_VARIABLES = {"registry": "buildset_registry", "home": "buildset_registry_use_home"}

# Options named differently in the role's module (and role variables).
ROLE_PREFIX = {"cert": "cert_"}
# Defaults of the role's module where a part module has none.
ROLE_DEFAULTS = {
    "proxy_remote_url": "https://registry-1.docker.io",
    "username": "zuul",
    "docker_host": DEFAULT_DOCKER_HOST,
}


def _role_name(part, option):
    if option in ("root", "host", "state"):
        return option
    return ROLE_PREFIX.get(part, "") + option


def part_spec(part):
    """The argument spec of one part module (a fresh copy)."""
    return {name: dict(spec) for name, spec in PARTS[part].items()}


def role_spec():
    """The argument spec of the role's module: every part's options."""
    spec = {}
    for part, options in PARTS.items():
        for name, option in options.items():
            spec[_role_name(part, name)] = dict(option)
    for name, default in ROLE_DEFAULTS.items():
        spec[name].pop("required", None)
        spec[name]["default"] = default
    return spec


def part_params(part, params):
    """The part's options, taken from the role module's params."""
    return {name: params[_role_name(part, name)] for name in PARTS[part]}


def role_variables():
    """Option name -> role variable, for RegistryError.render().

    Both a part's own names (extra_names) and the role module's
    (cert_extra_names) map to the role variable
    (buildset_registry_cert_extra_names); no two parts share a name that
    means something else.
    """
    names = {}
    for part, options in PARTS.items():
        for name in options:
            role = _role_name(part, name)
            names[name] = names[role] = "buildset_registry_" + role
    return names


def use_spec():
    """The argument spec of the use entry point's module (a fresh copy)."""
    return {name: dict(spec) for name, spec in USE.items()}


def use_variables():
    """The use module's option name -> role variable, for RegistryError.render()."""
    return {name: USE_VARIABLES.get(name, "buildset_registry_" + name) for name in USE}


STORE_SECRETS = ("secretkey", "password", "accesskey", "sessiontoken", "secret")


def mask_store_secrets(module):
    """Mask the object store's credentials wherever they appear in output."""
    for options in (module.params.get("object_storage") or {}).values():
        if isinstance(options, dict):
            module.no_log_values.update(str(v) for k, v in options.items() if k in STORE_SECRETS and v)
