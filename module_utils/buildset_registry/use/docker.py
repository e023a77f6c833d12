# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What the Docker engine and the docker CLI need to pull through the
buildset registry: the cert per endpoint in /etc/docker/certs.d, the
mirrors in /etc/docker/daemon.json, the credentials in the user's
~/.docker/config.json.

The engine applies registry-mirrors to docker.io images only, and sends its
mirrors the credentials the CLI holds for docker.io: so the buildset's
credentials go under docker.io's key too (HUB_KEY), unless the registry
lets anyone pull (anonymous_pull).

Pure: Targets and bytes out, no I/O.
"""

from __future__ import annotations

import os

from ansible.module_utils.buildset_registry.common.namespaces import DOCKER_IO
from ansible.module_utils.buildset_registry.use import jsonfile as jsonedit
from ansible.module_utils.buildset_registry.use.state import Target, in_certs_d

ETC = "/etc/docker"
DAEMON_JSON = ETC + "/daemon.json"
# The key the docker CLI files Docker Hub's credentials under.
HUB_KEY = "https://index.docker.io/v1/"
MIRRORS_KEY = "registry-mirrors"


def mirror_urls(mirrors):
    return ["https://" + m for m in mirrors]


def config_path(home):
    return os.path.join(home, ".docker", "config.json")


def daemon_keys(wanted):
    """daemon.json keys we set (none when docker.io is not shadowed)."""
    if DOCKER_IO not in wanted.namespaces:
        return []
    return [([MIRRORS_KEY], mirror_urls(wanted.mirrors))]


def config_keys(wanted):
    """config.json keys we set: every endpoint, and docker.io's key when
    docker.io is shadowed and pulls need the login (the engine hands those
    to its mirrors)."""
    keys = [(["auths", endpoint], {"auth": wanted.auth}) for endpoint in wanted.endpoints]
    if DOCKER_IO in wanted.namespaces and not wanted.anonymous_pull:
        keys.append((["auths", HUB_KEY], {"auth": wanted.auth}))
    return keys


def targets(wanted, home, owner=None):
    out = [in_certs_d(ETC, endpoint, "ca.crt", wanted.cert.encode()) for endpoint in wanted.endpoints]
    keys = daemon_keys(wanted)
    if keys:
        out.append(Target(path=DAEMON_JSON, kind="json", content=keys, dirs=[(ETC, 0o755)], indent="  "))
    out.append(
        Target(
            path=config_path(home),
            kind="json",
            content=config_keys(wanted),
            mode=0o600,
            secret=True,
            dirs=[(os.path.join(home, ".docker"), 0o700)],
            owner=owner,
        )
    )
    return out


def mirrors_in(data):
    """registry-mirrors that daemon.json bytes set, or None when it sets none."""
    try:
        value = jsonedit.load(DAEMON_JSON, data).get(MIRRORS_KEY)
    except Exception:
        return None
    return value if isinstance(value, list) else None
