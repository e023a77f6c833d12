# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What to do with each container, decided before acting: pure.

Each container's desired spec (image ID, entrypoint and command, mounts,
hash of its configuration file, ports, restart policy, network) is hashed
into a label; a different hash recreates the container. Files a container
reads only at start (registry/served.py) restart it when they change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.registry.config import is_proxy
from ansible.module_utils.buildset_registry.registry.served import files_changed, files_digest

SPEC_VERSION = 2
# Podman's policy for a proxy: a few tries, then it waits stopped.
PODMAN_PROXY_POLICY = "on-failure:2"

_WHY = {
    "created": "no container yet",
    "recreated": "its spec changed (image, configuration, mounts or ports), or it is not usable",
    "restarted": "the files it serves changed",
    "started": "it was stopped",
}


def desired_spec(endpoint, image_id, restart_policy="always"):
    """Everything that, when it changes, needs a new container."""
    return {
        "version": SPEC_VERSION,
        "kind": endpoint.kind,
        "image": image_id,
        "entrypoint": list(endpoint.entrypoint),
        "command": list(endpoint.command),
        "env": [],
        "binds": [*endpoint.binds, "%s:%s:ro" % (endpoint.config_path, endpoint.mount)],
        "config_sha256": hashlib.sha256(endpoint.config.encode("utf-8")).hexdigest(),
        "ports": [port for _, port in endpoint.ports],
        "restart_policy": restart_policy,
        "network_mode": "host",
    }


def spec_hash(spec):
    """A stable hash of a desired spec (key order does not matter)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()


def restart_policy(kind, podman):
    """The restart policy of one container. Docker restarts a crashing
    container with a back-off (0.1 s doubling to a minute); Podman 4.3 at
    once, about ten times a second. A proxy panics at start while its
    upstream is down, so under Podman it gets a few tries, not a loop."""
    return PODMAN_PROXY_POLICY if podman and is_proxy(kind) else "always"


def decide_action(existing, desired_hash, files_changed_, waiting=False):
    """What to do with one container.

    existing is None (no such container) or a dict with "status" and
    "spec_hash"; desired_hash is None when it cannot be known yet (check mode
    with the image still to pull); waiting: it is a proxy whose upstream
    does not answer, so crashing or stopped is how it waits (no change).
    Returns created, recreated, started, restarted or unchanged.
    """
    if existing is None:
        return "created"
    if desired_hash is None or existing.get("spec_hash") != desired_hash:
        return "recreated"
    status = existing.get("status")
    if waiting and not files_changed_ and status in ("running", "restarting", "created", "exited"):
        return "unchanged"
    if status == "running":
        return "restarted" if files_changed_ else "unchanged"
    if status in ("created", "exited"):
        # Starting binds and reads the files anew.
        return "started"
    # restarting (a crash loop), paused, dead, removing: start afresh.
    return "recreated"


@dataclass(frozen=True)
class EndpointPlan:
    """What to do with one container, decided before acting."""

    endpoint: object  # registry/endpoints.py Endpoint
    action: str
    existing: dict | None
    spec: dict
    hash: str | None
    served_digest: str
    stale_config: bool

    @property
    def kind(self):
        return self.endpoint.kind

    @property
    def name(self):
        return self.endpoint.name

    @property
    def reasons(self):
        out = []
        if self.action in _WHY:
            out.append("%s container %s %s: %s" % (self.kind, self.name, self.action, _WHY[self.action]))
        if self.stale_config:
            out.append("%s configuration file written" % self.kind)
        return out

    def report(self):
        report = {
            "name": self.name,
            "action": self.action,
            "id": self.existing["id"] if self.existing else None,
        }
        if self.endpoint.ports:
            report["ports"] = [port for _, port in self.endpoint.ports]
        return report


def plan_endpoints(endpoints, image_ids, found, served, contents, on_disk, podman=False, waiting=()):
    """Decide what to do with each container; pure.

    image_ids: image reference -> ID (None: still to pull); found: container
    name -> engine summary ({id, status, spec_hash, ports}); served: the
    served-state; contents: layout() name -> bytes of the served files;
    on_disk: config path -> its text now (None if missing); podman: the
    engine is Podman; waiting: names of the proxies whose upstream does
    not answer. Returns the plans in the order of endpoints.
    """
    plans = []
    for endpoint in endpoints:
        image_id = image_ids.get(endpoint.image)
        spec = desired_spec(endpoint, image_id, restart_policy(endpoint.kind, podman))
        digest = spec_hash(spec) if image_id else None
        existing = found.get(endpoint.name)
        served_digest = files_digest({name: contents.get(name) for name in endpoint.served})
        # A configuration file rewritten under a kept container counts as a
        # served file: the container read the old one at start.
        stale_config = on_disk.get(endpoint.config_path) != endpoint.config
        reload_files = bool(existing) and (
            stale_config or files_changed(served, endpoint.name, existing["id"], served_digest)
        )
        plans.append(
            EndpointPlan(
                endpoint=endpoint,
                action=decide_action(existing, digest, reload_files, endpoint.name in waiting),
                existing=existing,
                spec=spec,
                hash=digest,
                served_digest=served_digest,
                stale_config=stale_config,
            )
        )
    return plans


def ports_to_check(found, ports):
    """(option, port) of the ports that must be free before acting; pure.

    found: container name -> engine summary of our containers; ports:
    option -> port. A port our own running containers hold is not checked:
    a recreated container frees it first, a kept one keeps it.
    """
    ours = {
        port
        for existing in found.values()
        if existing.get("status") in ("running", "restarting")
        for port in existing.get("ports") or ()
    }
    return [(option, port) for option, port in ports.items() if port not in ours]
