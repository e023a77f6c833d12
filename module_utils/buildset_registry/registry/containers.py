# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The two registry containers, as a story: check, plan, act, wait.

validate() and preflight() change nothing; ensure() takes what they found,
plans each endpoint (registry/spec.py), writes the configuration
files, acts through the engine (registry/engine.py) and waits until
both endpoints answer (registry/ready.py); a failure names its cause
(registry/diagnose.py). run() is the containers module's whole job;
the role's module calls the same steps between its other parts.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common.errors import Outcome, RegistryError
from ansible.module_utils.buildset_registry.common.layout import ensure_dirs, layout, read_optional, write_file
from ansible.module_utils.buildset_registry.registry import storage as storage
from ansible.module_utils.buildset_registry.registry.config import KINDS
from ansible.module_utils.buildset_registry.registry.diagnose import PORT_OPTIONS, failure, port_in_use
from ansible.module_utils.buildset_registry.registry.engine import Engine
from ansible.module_utils.buildset_registry.registry.ready import (
    Started,
    port_free,
    probe_storage,
    tls_context,
    wait_ready,
)
from ansible.module_utils.buildset_registry.registry.spec import (
    SERVED_FILES,
    config_path,
    endpoints,
    files_digest,
    parse_served_state,
    plan_endpoints,
    ports_to_check,
    render_served_state,
)

PRIVATE = 0o600
_URL = re.compile(r"^https?://[^/\s?#]+(/\S*)?$")


def validate(params):
    """Check the containers' options; pure."""
    for option in PORT_OPTIONS.values():
        if not 0 < params[option] < 65536:
            raise RegistryError(
                option, "{" + option + "}: %s is not a port; use a number from 1 to 65535", params[option]
            )
    if params["port"] == params["push_port"]:
        raise RegistryError(
            "push_port",
            "{port} and {push_port} are both %d; the proxy and push endpoints need two different ports",
            params["port"],
        )
    if params["proxy_container"] == params["push_container"]:
        raise RegistryError(
            "push_container",
            "{proxy_container} and {push_container} are both %s; give the two containers different names",
            params["proxy_container"],
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


def container_names(params):
    return [params["proxy_container"], params["push_container"]]


@dataclass(frozen=True)
class Preflight:
    """What the engine said before anything changed."""

    image_id: str | None
    pulled: bool
    found: dict


def preflight(engine, params, check_mode):
    """The image is here (pulled when missing, unless in check mode) and no
    other program holds a port our own containers do not hold already."""
    found = engine.find(container_names(params))
    if params["state"] == "absent":
        return Preflight(None, False, found)
    image_id, pulled = engine.image_id(params["image"], check_mode)
    for kind, port in ports_to_check(found, {kind: params[option] for kind, option in PORT_OPTIONS.items()}):
        free, cause = port_free(port)
        if free is False:
            raise port_in_use(kind, port, cause)
    return Preflight(image_id, pulled, found)


def ensure(engine, params, pre, check_mode=False, outcome=None):
    """Bring both containers to params["state"]; return the Outcome.

    outcome (when given) is filled as the work goes, so that a failure
    still reports what was done.
    """
    outcome = Outcome(header="containers") if outcome is None else outcome
    outcome.data.setdefault("containers", {})
    outcome.data["endpoints"] = endpoints(params["host"], params)
    with engine.errors():
        if params["state"] == "absent":
            _absent(engine, params, pre, check_mode, outcome)
        else:
            _present(engine, params, pre, check_mode, outcome)
    return outcome


def _absent(engine, params, pre, check_mode, outcome):
    ports = {"proxy": params["port"], "push": params["push_port"]}
    for kind, name in zip(KINDS, container_names(params)):
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
            "port": ports[kind],
        }


def _present(engine, params, pre, check_mode, outcome):
    paths = layout(params["root"])
    contents = {name: read_optional(paths[name]) for name in SERVED_FILES}
    missing = [paths[name] for name in SERVED_FILES if contents[name] is None]
    if missing and not check_mode:
        raise RegistryError(
            "root",
            "%s %s missing; the role's certificate and htpasswd parts make them before the containers: "
            "run the whole role, or check {root}",
            " and ".join(missing),
            "is" if len(missing) == 1 else "are",
        )
    served_digest = files_digest(contents)
    outcome.data.update(image_id=pre.image_id, image_pulled=pre.pulled)

    served_text = read_optional(paths["served_state"])
    served = parse_served_state(served_text)
    on_disk = {kind: _text(read_optional(config_path(paths, kind))) for kind in KINDS}
    plan = plan_endpoints(params, paths, pre.image_id, pre.found, served, served_digest, on_disk)

    for kind, item in plan.items():
        outcome.data["containers"][kind] = item.report()
        outcome.reasons += item.reasons
        state = item.existing["status"] if item.existing else "absent"
        outcome.before += "%s container %s: %s\n" % (kind, item.name, state)
        outcome.after += "%s container %s: %s\n" % (kind, item.name, item.action)
    if pre.pulled:
        outcome.reasons.insert(0, "image %s pulled" % params["image"])
    outcome.changed |= pre.pulled or any(p.action != "unchanged" or p.stale_config for p in plan.values())
    if check_mode:
        return

    # Made here, not by the engine: Podman refuses a missing bind source,
    # and Docker would make it root-owned 0755.
    ensure_dirs(sorted({d for kind in KINDS if (d := storage.data_dir(kind, params, paths))}))
    started = _apply(engine, plan, params["image"], paths)
    for item in started:
        outcome.data["containers"][item.kind]["id"] = item.id
    served.update({item.name: {"id": item.id, "files": served_digest} for item in started})
    new_served = render_served_state(served)
    if new_served.encode("utf-8") != served_text:
        write_file(paths["served_state"], new_served, PRIVATE)

    def fail(item, what, last):
        logs = engine.logs(item.id)
        # Else it crash-loops under its restart policy until the next run
        # (Podman restarts it about ten times a second).
        engine.remove(item.id)
        return failure(item.name, item.kind, item.port, what, logs, params["proxy_remote_url"], paths, last)

    waited = wait_ready(engine, started, paths["cert"], params["wait_timeout"], fail)
    outcome.data["ready_seconds"] = round(waited, 3)


def check_store(engine, params, username, password, outcome):
    """With object storage: wait until both endpoints read their storage
    (an s3 registry starts and answers /v2/ while its store is down), else
    fail naming the store, with what the registry answered."""
    if storage.driver_of(params) is None:
        return
    paths = layout(params["root"])
    context = tls_context(paths["cert"])
    token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
    deadline = time.monotonic() + params["wait_timeout"]
    for kind, option in PORT_OPTIONS.items():
        while True:
            status, body = probe_storage(params[option], context, "Basic " + token)
            if status == 200:
                break
            if time.monotonic() >= deadline:
                name = outcome.data["containers"][kind]["name"]
                raise RegistryError(
                    "object_storage",
                    "The %s endpoint cannot use its object store at %s: GET /v2/_catalog answered %s %s; check that "
                    "the store runs and that {object_storage} holds its endpoint, bucket or container and "
                    "credentials (container %s's log: `docker logs %s`)",
                    kind, storage.store_endpoint(params), status, body.strip()[:200], name, name,
                )  # fmt: skip
            time.sleep(0.2)


def _text(data):
    return None if data is None else data.decode("utf-8", "replace")


def _apply(engine, plan, image, paths):
    """Write the configuration files and act on the engine; return what to wait for."""
    for kind, item in plan.items():
        if item.stale_config:
            write_file(config_path(paths, kind), item.config, PRIVATE)
    # Remove first: a recreated container may free the other one's port.
    for item in plan.values():
        if item.action == "recreated":
            engine.remove(item.existing["id"])
    started = []
    for kind in KINDS:
        item = plan[kind]
        if item.action in ("created", "recreated"):
            started.append(Started(kind, item.name, engine.run(item.spec, item.name, image, item.hash), item.port, 0))
            continue
        cid = item.existing["id"]
        if item.action == "started":
            engine.start(cid)
        elif item.action == "restarted":
            engine.restart(cid)
        started.append(Started(kind, item.name, cid, item.port, None))
    return started


def run(params, check_mode=False, outcome=None):
    """The containers module's whole job: check, connect, preflight, ensure."""
    validate(params)
    engine = Engine.connect(params.get("docker_host"))
    try:
        with engine.errors():
            pre = preflight(engine, params, check_mode)
        return ensure(engine, params, pre, check_mode, outcome)
    finally:
        engine.close()
