# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What each container should be, and what to do about it: pure.

How a container is kept in step:
- its desired spec (image ID, command, environment, mounts, hash of its
  configuration file, port, restart policy, network) is hashed into the
  label SPEC_LABEL; a different hash recreates the container;
- the files it serves (certificate, key, htpasswd) are read only at start.
  Labels cannot change on a live container, so the hash of those files is
  kept per container ID in layout()["served_state"] (0600): when it
  differs, the container is restarted (a start binds the files anew, so
  even a file replaced by rename is seen).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common.layout import (
    CONTAINER_CERTS,
    CONTAINER_CONFIG,
    CONTAINER_DATA,
    CONTAINER_HTPASSWD,
)
from ansible.module_utils.buildset_registry.registry import storage as storage
from ansible.module_utils.buildset_registry.registry.config import KINDS, render_config

SPEC_LABEL = "org.buildset-registry.spec"
KIND_LABEL = "org.buildset-registry.endpoint"
PORT_LABEL = "org.buildset-registry.port"
SPEC_VERSION = 1
SERVED_FILES = ("cert", "key", "htpasswd")

_WHY = {
    "created": "no container yet",
    "recreated": "its spec changed (image, configuration, mounts or port), or it is not usable",
    "restarted": "the files it serves changed",
    "started": "it was stopped",
}


def config_path(paths, kind):
    return paths["%s_config" % kind]


def desired_spec(kind, port, image_id, config_text, paths, data_dir=None):
    """Everything that, when it changes, needs a new container.

    data_dir: the host directory mounted as the registry's storage (default
    root/data), or "" when the data is in an object store.
    """
    data_dir = paths["data_dir"] if data_dir is None else data_dir
    spec = {
        "version": SPEC_VERSION,
        "kind": kind,
        "image": image_id,
        "command": [CONTAINER_CONFIG],
        # Visible in docker inspect, harmless: the config file says the same.
        "env": ["REGISTRY_HTTP_ADDR=:%d" % port],
        "binds": [
            "%s:%s:rw" % (data_dir, CONTAINER_DATA),
            "%s:%s:ro" % (paths["certs_dir"], CONTAINER_CERTS),
            # The file alone: auth/ also holds the plain password.
            "%s:%s:ro" % (paths["htpasswd"], CONTAINER_HTPASSWD),
            "%s:%s:ro" % (config_path(paths, kind), CONTAINER_CONFIG),
        ],
        "config_sha256": hashlib.sha256(config_text.encode("utf-8")).hexdigest(),
        "port": port,
        "restart_policy": "always",
        "network_mode": "host",
    }
    if not data_dir:
        spec["binds"] = spec["binds"][1:]
    return spec


def spec_hash(spec):
    """A stable hash of a desired spec (key order does not matter)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()


def create_args(spec, name, image, digest):
    """Keyword arguments of APIClient.create_container, minus host_config."""
    return {
        "image": image,
        "name": name,
        "command": list(spec["command"]),
        "environment": list(spec["env"]),
        "labels": {SPEC_LABEL: digest, KIND_LABEL: spec["kind"], PORT_LABEL: str(spec["port"])},
        "detach": True,
    }


def host_config_args(spec):
    """Keyword arguments of APIClient.create_host_config."""
    return {
        "binds": list(spec["binds"]),
        "network_mode": spec["network_mode"],
        "restart_policy": {"Name": spec["restart_policy"]},
    }


def files_digest(contents):
    """Hash of the served files; contents maps name -> bytes or None (missing)."""
    outer = hashlib.sha256()
    for name in sorted(contents):
        data = contents[name]
        inner = b"missing" if data is None else hashlib.sha256(data).hexdigest().encode()
        outer.update(name.encode() + b"=" + inner + b"\n")
    return outer.hexdigest()


def files_changed(served, name, container_id, digest):
    """True unless the state file says this very container loaded these files."""
    entry = served.get(name) or {}
    return entry.get("id") != container_id or entry.get("files") != digest


def parse_served_state(text):
    """The served-state file's text (or None) -> {container name: {"id", "files"}}."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    containers = data.get("containers") if isinstance(data, dict) else None
    return containers if isinstance(containers, dict) else {}


def render_served_state(served):
    return json.dumps({"containers": served}, indent=2, sort_keys=True) + "\n"


def decide_action(existing, desired_hash, files_changed_):
    """What to do with one container.

    existing is None (no such container) or a dict with "status" and
    "spec_hash"; desired_hash is None when it cannot be known yet (check mode
    with the image still to pull). Returns created, recreated, started,
    restarted or unchanged.
    """
    if existing is None:
        return "created"
    if desired_hash is None or existing.get("spec_hash") != desired_hash:
        return "recreated"
    status = existing.get("status")
    if status == "running":
        return "restarted" if files_changed_ else "unchanged"
    if status in ("created", "exited"):
        # Starting binds and reads the files anew.
        return "started"
    # restarting (a crash loop), paused, dead, removing: start afresh.
    return "recreated"


@dataclass(frozen=True)
class EndpointPlan:
    """What to do with one endpoint's container, decided before acting."""

    kind: str
    name: str
    port: int
    action: str
    existing: dict | None
    config: str
    spec: dict
    hash: str | None
    stale_config: bool

    @property
    def reasons(self):
        out = []
        if self.action in _WHY:
            out.append("%s container %s %s: %s" % (self.kind, self.name, self.action, _WHY[self.action]))
        if self.stale_config:
            out.append("%s configuration file written" % self.kind)
        return out

    def report(self, container_id=None):
        return {
            "name": self.name,
            "action": self.action,
            "port": self.port,
            "id": container_id or (self.existing["id"] if self.existing else None),
        }


def plan_endpoints(params, paths, image_id, found, served, served_digest, on_disk):
    """Decide what to do with each container; pure.

    found: container name -> engine summary ({id, status, spec_hash, port});
    served: the served-state; on_disk: kind -> text of its configuration
    file now (None if missing). Returns kind -> EndpointPlan.
    """
    names = {"proxy": params["proxy_container"], "push": params["push_container"]}
    ports = {"proxy": params["port"], "push": params["push_port"]}
    plan = {}
    for kind in KINDS:
        config = render_config(
            kind,
            ports[kind],
            params["proxy_remote_url"],
            params["proxy_username"],
            params["proxy_password"],
            storage.storage_config(kind, params),
            storage.http_secret(params),
        )
        spec = desired_spec(kind, ports[kind], image_id, config, paths, storage.data_dir(kind, params, paths) or "")
        digest = spec_hash(spec) if image_id else None
        existing = found.get(names[kind])
        # A configuration file rewritten under a kept container counts as a
        # served file: the registry read the old one at start.
        stale_config = on_disk.get(kind) != config
        reload_files = bool(existing) and (
            stale_config or files_changed(served, names[kind], existing["id"], served_digest)
        )
        plan[kind] = EndpointPlan(
            kind=kind,
            name=names[kind],
            port=ports[kind],
            action=decide_action(existing, digest, reload_files),
            existing=existing,
            config=config,
            spec=spec,
            hash=digest,
            stale_config=stale_config,
        )
    return plan


def ports_to_check(found, ports):
    """(kind, port) of the ports that must be free before acting; pure.

    found: container name -> engine summary of our containers; ports: kind
    -> port. A port our own running containers hold is not checked: a
    recreated container frees it first, a kept one keeps it.
    """
    ours = {
        existing["port"]
        for existing in found.values()
        if existing.get("status") in ("running", "restarting") and existing.get("port")
    }
    return [(kind, port) for kind, port in sorted(ports.items()) if port not in ours]


def client_host(host):
    """The name clients use for host: host itself, except for an IPv6
    address, which docker, skopeo and podman reject in image references
    ([::1]:5000/x is "invalid reference format"); it gets a name of its own
    (the certificate names it; the use entry point makes it resolve)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 4:
        return host
    return "buildset-registry-v6-" + address.exploded.replace(":", "")


def host_port(host, port):
    """host:port with an IPv6 address in brackets."""
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "%s:%d" % (host, port)


def endpoints(host, params):
    return {
        kind: {"host": host, "port": port, "address": host_port(host, port)}
        for kind, port in (("proxy", params["port"]), ("push", params["push_port"]))
    }
