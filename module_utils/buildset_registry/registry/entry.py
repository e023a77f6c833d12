# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The role's whole job in one module run: check, certificate, htpasswd,
containers.

Each module task costs about 0.3 s of Ansible overhead, more than the work
itself, so the role runs this once instead of the three part modules
(buildset_registry_cert, _htpasswd and _containers, which stay available on
their own). It validates every input and connects and preflights once,
changing nothing until every input is checked, the engine answers, the
image is here and both ports are free; then each part takes what was found.
"""

from __future__ import annotations

import os
import re

from ansible.module_utils.buildset_registry.common.errors import Outcome, RegistryError
from ansible.module_utils.buildset_registry.common.options import part_params
from ansible.module_utils.buildset_registry.registry import cert as certs
from ansible.module_utils.buildset_registry.registry import containers as containers
from ansible.module_utils.buildset_registry.registry import htpasswd as htpasswd
from ansible.module_utils.buildset_registry.registry.engine import Engine
from ansible.module_utils.buildset_registry.registry.spec import client_host, host_port


def validate(params):
    """Check every input, naming the option to change; pure."""
    if not os.path.isabs(params["root"]):
        raise RegistryError(
            "root",
            "{root}: %s is a relative path; give an absolute one such as /var/lib/buildset_registry "
            "(or leave it unset for ~/buildset_registry)",
            params["root"],
        )
    if not params["image"] or re.search(r"\s", params["image"]):
        raise RegistryError(
            "image",
            "{image}: %r is not an image reference (it is empty or holds white space); use for example registry:2",
            params["image"],
        )
    containers.validate(part_params("containers", params))
    if params["state"] == "present":
        htpasswd.validate(part_params("htpasswd", params))
        certs.validate(part_params("cert", params))


def facts(params, cert, auth):
    """The fact buildset_registry, as the README documents it.

    mirrors: the endpoints in the order a client pulls through them
    (separate: pushed images first). addresses: the names that only the
    use entry point makes resolve (an IPv6 host's name), name -> address.
    """
    name = client_host(params["host"])
    order = [params["push_port"], params["port"]] if params["storage_mode"] == "separate" else [params["port"]]
    return {
        "host": name,
        "port": params["port"],
        "push_host": name,
        "push_port": params["push_port"],
        "username": params["username"],
        "password": auth["password"],
        "cert": cert["cert"],
        "mirrors": [host_port(name, port) for port in order],
        "addresses": {name: params["host"]} if name != params["host"] else {},
    }


def cert_params(params):
    """The certificate's options; an IPv6 host's name is named too."""
    cparams = part_params("cert", params)
    name = client_host(params["host"])
    if name != params["host"] and name not in cparams["extra_names"]:
        cparams["extra_names"] = [*cparams["extra_names"], name]
    return cparams


def run(params, check_mode=False, result=None):
    """Bring the registry to params["state"]; return the module result.

    Raises RegistryError; result (when given) holds what was done so far.
    result["diff"] lists each part's before/after, without secrets.
    """
    result = {"changed": False, "containers": {}} if result is None else result
    validate(params)
    cparams = part_params("containers", params)
    engine = Engine.connect(params["docker_host"])
    outcomes = []
    try:
        with engine.errors():
            pre = containers.preflight(engine, cparams, check_mode)
        if params["state"] == "present":
            cert = certs.ensure(cert_params(params), check_mode)
            result["certificate"] = {k: v for k, v in cert.report().items() if k != "cert"}
            auth = htpasswd.ensure(part_params("htpasswd", params), check_mode)
            result["htpasswd"] = {k: v for k, v in auth.report().items() if k != "password"}
            outcomes += [cert, auth]
        # Shares result's containers dict: a failure still shows what was done.
        running = Outcome(header="containers", data={"containers": result["containers"]})
        outcomes.append(running)
        containers.ensure(engine, cparams, pre, check_mode, running)
        if params["state"] == "present" and not check_mode:
            containers.check_store(engine, cparams, params["username"], auth.data["password"], running)
    finally:
        engine.close()
        result["changed"] = any(o.changed for o in outcomes)
        result["diff"] = [o.diff() for o in outcomes]
    result.update(running.data)
    if params["state"] == "present":
        result["buildset_registry"] = facts(params, cert.data, auth.data)
    return result
