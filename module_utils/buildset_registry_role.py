# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The role's whole job in one module run: check, certificate, htpasswd,
containers.

Each module task costs about 0.3 s of Ansible overhead, more than the work
itself, so the role runs this once instead of the three part modules
(buildset_registry_cert, _htpasswd and _containers, which stay available on
their own). It calls the same functions they do, in an order that changes
nothing until every input is checked, the Docker engine answers, the image
is here and both ports are free.
"""

from __future__ import annotations

import os
import re

from ansible.module_utils import buildset_registry_cert as certs
from ansible.module_utils import buildset_registry_containers as containers
from ansible.module_utils import buildset_registry_htpasswd as htpasswd

# Options passed on to the containers part under the same names.
CONTAINER_OPTIONS = (
    "root", "host", "port", "push_port", "image", "proxy_remote_url", "proxy_username",
    "proxy_password", "proxy_container", "push_container", "state", "wait_timeout",
)


class RoleError(Exception):
    """Bad input found before anything changed; str() is the whole message."""


ERRORS = (RoleError, certs.CertError, htpasswd.HtpasswdError, containers.ContainersError)


def validate(params):
    """Check every input, naming the role variable to change; pure."""
    if not os.path.isabs(params["root"]):
        raise RoleError(
            "buildset_registry_root: %s is a relative path; give an absolute one such as "
            "/var/lib/buildset_registry (or leave it unset for ~/buildset_registry)." % params["root"]
        )
    if not params["image"] or re.search(r"\s", params["image"]):
        raise RoleError(
            "buildset_registry_image: %r is not an image reference (it is empty or holds "
            "white space); use for example registry:2." % params["image"]
        )
    containers.validate(container_params(params))
    if params["state"] == "present":
        htpasswd.validate(params["username"], params["password"], params["bcrypt_cost"])
        certs.requested_sans(params["host"], params["cert_extra_names"])
        certs.check_days(params["cert_valid_days"], params["cert_renew_days"])


def container_params(params):
    return {name: params[name] for name in CONTAINER_OPTIONS}


def facts(params, cert, auth):
    """The fact buildset_registry, as the README documents it."""
    return {
        "host": params["host"],
        "port": params["port"],
        "push_host": params["host"],
        "push_port": params["push_port"],
        "username": params["username"],
        "password": auth["password"],
        "cert": cert["cert"],
    }


def run(params, check_mode=False, result=None):
    """Bring the registry to params["state"]; return the module result.

    Raises one of ERRORS; result (when given) holds what was done so far.
    """
    result = {"changed": False, "containers": {}} if result is None else result
    validate(params)
    cparams = container_params(params)
    client = containers.connect()
    try:
        with containers.docker_errors():
            if params["state"] == "absent":
                return containers.ensure(cparams, check_mode, result, client=client)
            pre = containers.preflight(client, cparams, check_mode)
            cert = certs.ensure(
                params["root"], params["host"], params["cert_extra_names"],
                params["cert_valid_days"], params["cert_renew_days"], check_mode=check_mode,
            )
            result["certificate"] = {
                key: cert[key] for key in ("changed", "reasons", "cert_path", "sans", "not_after", "fingerprint")
            }
            result["changed"] |= cert["changed"]
            auth = htpasswd.ensure(
                params["root"], params["username"], params["password"], params["bcrypt_cost"],
                check_mode=check_mode,
            )
            result["htpasswd"] = {
                key: auth[key] for key in ("changed", "reasons", "htpasswd_path", "password_generated")
            }
            result["changed"] |= auth["changed"]
            containers.ensure(cparams, check_mode, result, client=client, pre=pre)
    finally:
        client.close()
    result["buildset_registry"] = facts(params, cert, auth)
    return result
