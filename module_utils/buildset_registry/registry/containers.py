# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The registry's containers, as a story: check, plan, act, wait.

validate() and preflight() change nothing; ensure() takes what they found,
plans each container of registry/endpoints.py (registry/plan.py), writes
the configuration files, acts through the engine (registry/engine.py) and
waits until every container answers (registry/ready.py); a failure names
its cause (registry/diagnose.py). run() is the containers module's whole
job; the role's module calls the same steps between its other parts.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common.address import client_host, host_port
from ansible.module_utils.buildset_registry.common.errors import Outcome, RegistryError
from ansible.module_utils.buildset_registry.common.layout import ensure_dirs, layout, read_optional, write_file
from ansible.module_utils.buildset_registry.common.options import PORT_OPTIONS
from ansible.module_utils.buildset_registry.registry import storage, upstream
from ansible.module_utils.buildset_registry.registry.act import act
from ansible.module_utils.buildset_registry.registry.config import is_proxy
from ansible.module_utils.buildset_registry.registry.endpoints import (
    SERVED_FILES,
    base_names,
    container_names,
    data_dirs,
    endpoint_list,
    registry_endpoints,
)
from ansible.module_utils.buildset_registry.registry.engine import Engine
from ansible.module_utils.buildset_registry.registry.htpasswd import parse_htpasswd, parse_stored_password
from ansible.module_utils.buildset_registry.registry.login import derive_tokens
from ansible.module_utils.buildset_registry.registry.plan import plan_endpoints, ports_to_check
from ansible.module_utils.buildset_registry.registry.ready import Check, port_free, request, wait_ready
from ansible.module_utils.buildset_registry.registry.served import parse_served_state, render_served_state

PRIVATE = 0o600
_URL = re.compile(r"^https?://[^/\s?#]+(/\S*)?$")
CHECK_MODE_HASH = "$2y$04$" + "." * 53


def validate(params):
    """Check the containers' options; pure."""
    for option in PORT_OPTIONS:
        if not 0 < params[option] < 65536:
            raise RegistryError(
                option, "{" + option + "}: %s is not a port; use a number from 1 to 65535", params[option]
            )
    if params["port"] == params["push_port"]:
        raise RegistryError(
            "push_port",
            "{port} and {push_port} are both %d; the one endpoint and the push endpoint need two different ports",
            params["port"],
        )
    # With the namespaces' proxies: a RegistryError on a bad entry.
    names = container_names(params) if params["state"] == "present" else base_names(params)
    for kind, name in names.items():
        if list(names.values()).count(name) > 1:
            raise RegistryError(
                "%s_container" % ("proxy" if is_proxy(kind) else kind),
                "{push_container}, {proxy_container} (and the other namespaces' proxies, named after it) and "
                "{front_container} must be different names; %s is given twice",
                name,
            )
    for option in ("image", "front_image"):
        if not params[option] or re.search(r"\s", params[option]):
            raise RegistryError(
                option,
                "{" + option + "}: %r is not an image reference (it is empty or holds white space); use for example %s",
                params[option],
                "caddy:2" if option == "front_image" else "registry:2",
            )
    if not isinstance(params["anonymous_pull"], bool):
        raise RegistryError(
            "anonymous_pull", "{anonymous_pull}: %r is not a boolean; use true or false", params["anonymous_pull"]
        )
    if params["state"] == "present" and not _URL.match(params.get("proxy_remote_url") or ""):
        raise RegistryError(
            "proxy_remote_url",
            "{proxy_remote_url}: %r is not an http(s) URL; use for example https://registry-1.docker.io",
            params.get("proxy_remote_url"),
        )
    if params["wait_timeout"] <= 0:
        raise RegistryError(
            "wait_timeout", "{wait_timeout}: %s must be a positive number of seconds", params["wait_timeout"]
        )
    storage.validate(params)


@dataclass(frozen=True)
class Preflight:
    """What the engine said before anything changed."""

    image_ids: dict  # image reference -> ID (None: to pull, in check mode)
    pulled: tuple  # the images pulled
    found: dict


def preflight(engine, params, check_mode):
    """The images are here (pulled when missing, unless in check mode) and no
    other program holds a port our own containers do not hold already."""
    found = engine.find(list(container_names(params).values()))
    if params["state"] == "absent":
        return Preflight({}, (), found)
    image_ids, pulled = {}, []
    for option in ("image", "front_image"):
        image = params[option]
        if image not in image_ids:
            image_ids[image], was_pulled = engine.image_id(image, check_mode, option)
            if was_pulled:
                pulled.append(image)
    for option, port in ports_to_check(found, {option: params[option] for option in PORT_OPTIONS}):
        free, cause = port_free(port)
        if free is False:
            # Imported where a failure is made: a run that goes well never needs it.
            from ansible.module_utils.buildset_registry.registry.diagnose import port_in_use

            raise port_in_use(option, port, cause)
    return Preflight(image_ids, tuple(pulled), found)


def endpoints_report(params):
    """Where clients reach the registry: the one endpoint and the push endpoint."""
    host = client_host(params["host"])
    return {
        kind: {"host": host, "port": params[option], "address": host_port(host, params[option])}
        for kind, option in (("registry", "port"), ("push", "push_port"))
    }


def ensure(engine, params, pre, check_mode=False, outcome=None):
    """Bring every container to params["state"]; return the Outcome.

    outcome (when given) is filled as the work goes, so that a failure
    still reports what was done.
    """
    outcome = Outcome(header="containers") if outcome is None else outcome
    outcome.data.setdefault("containers", {})
    outcome.data["endpoints"] = endpoints_report(params)
    with engine.errors():
        if params["state"] == "absent":
            _absent(engine, params, pre, check_mode, outcome)
        else:
            _present(engine, params, pre, check_mode, outcome)
    return outcome


def _absent(engine, params, pre, check_mode, outcome):
    for kind, name in container_names(params).items():
        existing = pre.found.get(name)
        outcome.before += "%s container %s: %s\n" % (kind, name, existing["status"] if existing else "absent")
        outcome.after += "%s container %s: absent\n" % (kind, name)
        if existing:
            outcome.changed = True
            outcome.reasons.append("%s container %s removed" % (kind, name))
            if not check_mode:
                engine.remove(existing["id"])
        outcome.data["containers"][kind] = {
            "name": name,
            "id": existing["id"] if existing else None,
            "action": "removed" if existing else "absent",
        }


def front_login(params, paths, check_mode):
    """(bcrypt hash, tokens) of the front's login: the hash from the
    htpasswd file, the tokens keyed by the password (given, or stored)."""
    data = read_optional(paths["htpasswd"])
    hashed = dict(parse_htpasswd(data)[0]).get(params["username"]) if data else None
    password = params.get("password") or parse_stored_password(read_optional(paths["password"]))
    if (hashed is None or not password) and not check_mode:
        raise RegistryError(
            "root",
            "%s holds no entry for %s, or no password was given or stored in %s; the role's htpasswd part "
            "makes them before the containers: run the whole role, or check {root}",
            paths["htpasswd"],
            params["username"],
            paths["password"],
        )
    # Check mode before the htpasswd part wrote anything: a stand-in hash
    # (the front's configuration is then reported as to be written).
    return hashed or CHECK_MODE_HASH, derive_tokens(params["username"], password or "")


def _present(engine, params, pre, check_mode, outcome):
    paths = layout(params["root"])
    contents = {name: read_optional(paths[name]) for name in SERVED_FILES}
    missing = [paths[name] for name in SERVED_FILES if contents[name] is None]
    if missing and not check_mode:
        raise RegistryError(
            "root",
            "%s %s missing; the role's certificate part makes them before the containers: "
            "run the whole role, or check {root}",
            " and ".join(missing),
            "is" if len(missing) == 1 else "are",
        )
    hashed, tokens = front_login(params, paths, check_mode)
    endpoints = endpoint_list(params, paths, hashed, tokens)
    outcome.data.update(image_ids=dict(pre.image_ids), images_pulled=list(pre.pulled))
    waiting = upstream.check(endpoints, engine.podman, outcome)
    served_text = read_optional(paths["served_state"])
    on_disk = {e.config_path: _text(read_optional(e.config_path)) for e in endpoints}
    plans = plan_endpoints(
        endpoints, pre.image_ids, pre.found, parse_served_state(served_text), contents, on_disk, engine.podman, waiting
    )
    _report(plans, pre, outcome)
    if not check_mode:
        _act_and_wait(engine, params, paths, plans, tokens, served_text, outcome, waiting)


def _report(plans, pre, outcome):
    """What each container's plan says, as the result, reasons and diff."""
    for item in plans:
        outcome.data["containers"][item.kind] = item.report()
        outcome.reasons += item.reasons
        state = item.existing["status"] if item.existing else "absent"
        outcome.before += "%s container %s: %s\n" % (item.kind, item.name, state)
        outcome.after += "%s container %s: %s\n" % (item.kind, item.name, item.action)
    outcome.reasons[:0] = ["image %s pulled" % image for image in pre.pulled]
    outcome.changed |= bool(pre.pulled) or any(p.action != "unchanged" or p.stale_config for p in plans)


def _act_and_wait(engine, params, paths, plans, tokens, served_text, outcome, waiting=frozenset()):
    """Carry the plans out, record what each container loaded, wait until
    all answer (not a proxy waiting for its upstream: nothing to wait for)."""
    # Made here, not by the engine: Podman refuses a missing bind source,
    # and Docker would make it root-owned 0755.
    ensure_dirs(data_dirs(params, paths))
    started = act(engine, plans, lambda endpoint: checks(endpoint, tokens))
    for item in started:
        outcome.data["containers"][item.kind]["id"] = item.id
    digests = {p.name: p.served_digest for p in plans}
    served = parse_served_state(served_text)
    served.update({item.name: {"id": item.id, "files": digests[item.name]} for item in started})
    new_served = render_served_state(served)
    if new_served.encode("utf-8") != served_text:
        write_file(paths["served_state"], new_served, PRIVATE)
    by_name = {p.name: p.endpoint for p in plans}

    def fail(item, what, check, last):
        from ansible.module_utils.buildset_registry.registry import diagnose

        logs = engine.logs(item.id)
        remote_url = (by_name[item.name].upstream or (None,))[0]
        panic = diagnose.upstream_panic(logs, item.kind, remote_url)
        if panic:
            # The upstream went away after the probe: a warning, and the
            # proxy waits under its restart policy, as when the probe saw it.
            outcome.data.setdefault("warnings", []).append(
                upstream.warning(item.name, remote_url, upstream.OTHER, panic, engine.podman)
            )
            gave_up.add(item.name)
            return None
        # Else it crash-loops under its restart policy until the next run
        # (Podman restarts it about ten times a second).
        engine.remove(item.id)
        return diagnose.failure(by_name[item.name], what, logs, remote_url, paths, check, last)

    gave_up = set()
    to_wait = [item for item in started if item.name not in waiting]
    waited = wait_ready(engine, to_wait, paths["cert"], params["wait_timeout"], fail)
    outcome.data["ready_seconds"] = round(waited, 3)
    sockets = {p.name: p.endpoint.socket for p in plans}
    upstream.leave_waiters(engine, started, sockets, waiting | gave_up, outcome)


def checks(endpoint, tokens):
    """What a container answers once it serves: a registry 200 on its
    socket; the front 401 (the login's challenge) on both ports, and 200
    with the write token on the one endpoint (it reaches the push registry)."""
    if endpoint.socket:
        return (Check(expect=200, socket=endpoint.socket),)
    port, push_port = (port for _, port in endpoint.ports)
    return (
        Check(expect=401, port=port),
        Check(expect=401, port=push_port),
        Check(expect=200, port=port, authorization="Bearer " + tokens["write"]),
    )


def check_store(params, outcome):
    """With object storage: wait until both registries read their storage
    (an s3 registry starts and answers /v2/ while its store is down), else
    fail naming the store, with what the registry answered."""
    if storage.driver_of(params) is None:
        return
    paths = layout(params["root"])
    deadline = time.monotonic() + params["wait_timeout"]
    for endpoint in registry_endpoints(params, paths):
        check = Check(expect=200, socket=endpoint.socket, path="/v2/_catalog?n=1")
        while True:
            status, body = request(check, None, timeout=5.0)
            if status == 200:
                break
            if time.monotonic() >= deadline:
                raise RegistryError(
                    "object_storage",
                    "The %s registry cannot use its object store at %s: GET /v2/_catalog answered %s %s; check "
                    "that the store runs and that {object_storage} holds its endpoint, bucket or container and "
                    "credentials (container %s's log: `docker logs %s`)",
                    endpoint.kind, storage.store_endpoint(params), status, body.strip()[:200], endpoint.name,
                    endpoint.name,
                )  # fmt: skip
            time.sleep(0.2)


def _text(data):
    return None if data is None else data.decode("utf-8", "replace")


def run(params, check_mode=False, outcome=None):
    """The containers module's whole job: check, connect, preflight, ensure."""
    validate(params)
    engine = Engine.connect(params.get("docker_host"))
    try:
        with engine.errors():
            pre = preflight(engine, params, check_mode)
        outcome = ensure(engine, params, pre, check_mode, outcome)
        if params["state"] == "present" and not check_mode:
            check_store(params, outcome)
        return outcome
    finally:
        engine.close()
