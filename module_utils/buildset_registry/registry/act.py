# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Carrying the containers' plans out on the engine: the configuration
files written, the containers to recreate removed, then the registries
created or (re)started together, one thread each (each costs the engine
about 0.15 s, mostly waiting), and the front last.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.buildset_registry.common.layout import write_file
from ansible.module_utils.buildset_registry.registry.ready import Started

PRIVATE = 0o600


def act(engine, plans, checks_of):
    """Carry plans out; return a Started for each, in plan order. checks_of:
    endpoint -> what it answers once it serves (containers.checks)."""
    for item in plans:
        if item.stale_config:
            write_file(item.endpoint.config_path, item.endpoint.config, PRIVATE)
    # Remove first: a recreated container may free another one's port.
    for item in plans:
        if item.action == "recreated":
            engine.remove(item.existing["id"])
    registries = [item for item in plans if item.kind != "front"]
    front = [item for item in plans if item.kind == "front"]
    busy = [item for item in registries if item.action != "unchanged"]
    if len(busy) > 1:
        engine.client  # noqa: B018 - connect once, before the threads share it
        with ThreadPoolExecutor(max_workers=len(busy)) as pool:
            done = dict(zip((item.name for item in busy), pool.map(lambda item: _one(engine, item, checks_of), busy)))
    else:
        done = {item.name: _one(engine, item, checks_of) for item in busy}
    started = [done.get(item.name) or _one(engine, item, checks_of) for item in registries]
    return started + [_one(engine, item, checks_of) for item in front]


def _one(engine, item, checks_of):
    wanted = checks_of(item.endpoint)
    if item.action in ("created", "recreated"):
        cid = engine.run(item.spec, item.name, item.endpoint.image, item.hash, item.endpoint.image_option)
        return Started(item.kind, item.name, cid, wanted, 0)
    cid = item.existing["id"]
    if item.action == "started":
        engine.start(cid)
    elif item.action == "restarted":
        engine.restart(cid)
    return Started(item.kind, item.name, cid, wanted, None)
