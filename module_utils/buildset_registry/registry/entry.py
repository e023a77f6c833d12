# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The role's whole job in one module run: check, certificate, htpasswd,
containers.

Each module task costs about 0.3 s of Ansible overhead, more than the work
itself, so the role runs this once instead of the three part modules
(buildset_registry_cert, _htpasswd and _containers, which stay available on
their own). It validates every input and connects and preflights once,
changing nothing until every input is checked, the engine answers, the
images are here and both ports are free; then each part takes what was found.
"""

from __future__ import annotations

import os

from ansible.module_utils.buildset_registry.common.address import ZUUL_JOBS_ALIAS, client_host, host_port, is_ip
from ansible.module_utils.buildset_registry.common.errors import Outcome, RegistryError
from ansible.module_utils.buildset_registry.common.options import part_params
from ansible.module_utils.buildset_registry.registry import cert_check as cert_check
from ansible.module_utils.buildset_registry.registry import containers as containers
from ansible.module_utils.buildset_registry.registry import htpasswd as htpasswd
from ansible.module_utils.buildset_registry.registry.endpoints import served_namespaces
from ansible.module_utils.buildset_registry.registry.engine import Engine


def validate(params):
    """Check every input, naming the option to change; pure."""
    if not os.path.isabs(params["root"]):
        raise RegistryError(
            "root",
            "{root}: %s is a relative path; give an absolute one such as /var/lib/buildset_registry "
            "(or leave it unset for ~/buildset_registry)",
            params["root"],
        )
    containers.validate(part_params("containers", params))
    if params["state"] == "present":
        htpasswd.validate(part_params("htpasswd", params))
        cert_check.validate(part_params("cert", params))


def facts(params, cert, auth):
    """The fact buildset_registry, as the README documents it.

    mirrors: the one endpoint clients pull through (pushed images first,
    then the upstream's). addresses: the names that only the use entry
    point makes resolve (an IPv6 host's name), name -> address.
    anonymous_pull: whether clients may pull without the login (the use
    entry point then gives dockerd no credentials for Docker Hub).
    namespaces: those served, as {name, url} (no credentials): the use
    entry point configures these, on any node, in any later job.
    """
    name = client_host(params["host"])
    return {
        "host": name,
        "port": params["port"],
        "push_host": name,
        "push_port": params["push_port"],
        "username": params["username"],
        "password": auth["password"],
        "cert": cert["cert"],
        "mirrors": [host_port(name, params["port"])],
        "addresses": {name: params["host"]} if name != params["host"] else {},
        "anonymous_pull": params["anonymous_pull"],
        "namespaces": [ns.public() for ns in served_namespaces(part_params("containers", params))],
    }


def cert_params(params):
    """The certificate's options. An IPv6 host's name is named too, and an
    IP address host's zuul-jobs alias: use-buildset-registry reaches such a
    registry as zuul-jobs.buildset-registry (an /etc/hosts line)."""
    cparams = part_params("cert", params)
    names = [client_host(params["host"])] if client_host(params["host"]) != params["host"] else []
    if is_ip(params["host"]):
        names.append(ZUUL_JOBS_ALIAS)
    cparams["extra_names"] = [*cparams["extra_names"], *(n for n in names if n not in cparams["extra_names"])]
    return cparams


def ensure_cert(cparams, check_mode=False):
    """The certificate part's Outcome. A key and certificate that need
    nothing are told by cert_check (the standard library); anything else
    goes to cert.ensure(), which imports cryptography, says why and acts."""
    outcome = cert_check.kept(cparams)
    if outcome is None:
        from ansible.module_utils.buildset_registry.registry import cert as certs

        outcome = certs.ensure(cparams, check_mode)
    return outcome


def run(params, check_mode, result):
    """Bring the registry to params["state"], filling result (the module's,
    which starts with an empty "containers" dict) as it goes.

    Raises RegistryError; result then holds what was done so far.
    result["diff"] lists each part's before/after, without secrets.
    """
    validate(params)
    cparams = part_params("containers", params)
    engine = Engine.connect(params["docker_host"])
    outcomes = []
    try:
        with engine.errors():
            pre = containers.preflight(engine, cparams, check_mode)
        if params["state"] == "present":
            cert = ensure_cert(cert_params(params), check_mode)
            result["certificate"] = {k: v for k, v in cert.report().items() if k != "cert"}
            auth = htpasswd.ensure(part_params("htpasswd", params), check_mode)
            result["htpasswd"] = {k: v for k, v in auth.report().items() if k != "password"}
            # The front's tokens are keyed by the password, generated or given.
            cparams["password"] = auth.data["password"]
            outcomes += [cert, auth]
        # Shares result's containers dict: a failure still shows what was done.
        running = Outcome(header="containers", data={"containers": result["containers"]})
        outcomes.append(running)
        containers.ensure(engine, cparams, pre, check_mode, running)
        if params["state"] == "present" and not check_mode:
            containers.check_store(cparams, running)
    finally:
        engine.close()
        result["changed"] = any(o.changed for o in outcomes)
        result["diff"] = [o.diff() for o in outcomes]
    result.update(running.data)
    if params["state"] == "present":
        result["buildset_registry"] = facts(params, cert.data, auth.data)
