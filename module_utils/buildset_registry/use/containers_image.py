# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What containers-image tools (podman, buildah, skopeo, cri-o) need: the
cert per endpoint in /etc/containers/certs.d, a registries.conf.d drop-in
of ours with the mirrors per namespace, and credentials in the user's
~/.config/containers/auth.json.

Credentials, as measured with skopeo 1.9.3 (containers-image 5.23.1):
the files are searched in order ${XDG_RUNTIME_DIR}/containers/auth.json
(else /run/containers/UID/auth.json), ~/.config/containers/auth.json,
~/.docker/config.json, ~/.dockercfg, and the first entry that decodes to
anything but empty credentials wins; docker's "https://index.docker.io/v1/"
key counts for docker.io. Each mirror is looked up under its own
host:port. We write the second file: it outlives a reboot (the first is
on tmpfs) and is still read before docker's, where the buildset's
credentials sit under docker.io's key for the Docker engine. Without more,
skopeo would send them to Docker Hub when it falls back to docker.io. So
auth.json gets a docker.io entry of its own: the user's Docker Hub
credentials from docker's config.json as they were before us, else an
entry with an empty user name (ANONYMOUS), which wins the lookup and makes
containers-image ask for an anonymous token (it sends a user name and
password only when both are set).

Pure: Targets and bytes out, no I/O.
"""

from __future__ import annotations

import base64
import os

from ansible.module_utils.buildset_registry.common.namespaces import DOCKER_IO
from ansible.module_utils.buildset_registry.use import jsonfile as jsonedit
from ansible.module_utils.buildset_registry.use.state import Target, in_certs_d, toml_string

ETC = "/etc/containers"
DROP_IN_DIR = ETC + "/registries.conf.d"
# Read after the distribution's drop-ins, so that ours decides for the
# namespaces it names.
DROP_IN = DROP_IN_DIR + "/90-buildset-registry.conf"
ANONYMOUS = {"auth": base64.b64encode(b":anonymous").decode()}
_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def auth_path(home):
    return os.path.join(home, ".config", "containers", "auth.json")


def registries_conf(wanted):
    """The drop-in: per namespace, the buildset's endpoints first, then the
    namespace itself (its location). docker.io's images live at the
    endpoints' root; any other namespace N under the first mirror's prefix
    N, where the front serves pushed images first, then N's cache. A
    mirror with a path gets the path before the image's name (HOST:PORT/N/NAME)."""
    out = ["# Written by run-buildset-registry (tasks_from: use); buildset_registry_state: absent removes it.\n"]
    for ns in wanted.namespaces:
        mirrors = wanted.mirrors if ns == DOCKER_IO else [wanted.push_path(ns)]
        out.append("\n[[registry]]\nprefix = %s\nlocation = %s\n" % (toml_string(ns), toml_string(ns)))
        out.extend("\n[[registry.mirror]]\nlocation = %s\n" % toml_string(m) for m in mirrors)
    return "".join(out).encode()


def _hub_key(key):
    """True when containers-image files key under docker.io."""
    stripped = key.split("://", 1)[-1]
    if stripped != key:
        stripped = stripped.split("/", 1)[0]
    return stripped in _HUB_HOSTS


def _has_credentials(entry):
    if not isinstance(entry, dict):
        return False
    try:
        user, _, password = base64.b64decode(entry.get("auth") or "").decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return bool(user or password.strip("\x00") or entry.get("identitytoken"))


def hub_entry(docker_config, auth_json, ours=()):
    """The docker.io entry auth.json needs, or None when it has one of its own.

    docker_config: docker's config.json as it was before us (bytes or None);
    auth_json: auth.json now; ours: auth.json keys we set.
    """
    auths = jsonedit.load("auth.json", auth_json).get("auths") or {}
    if any(_hub_key(k) and k not in ours and _has_credentials(v) for k, v in auths.items()):
        return None
    try:
        docker_auths = jsonedit.load("config.json", docker_config).get("auths") or {}
    except Exception:
        docker_auths = {}
    for key, entry in docker_auths.items():
        if _hub_key(key) and _has_credentials(entry):
            return entry
    return ANONYMOUS


def auth_keys(wanted, hub=None):
    keys = [(["auths", endpoint], {"auth": wanted.auth}) for endpoint in wanted.endpoints]
    if hub is not None:
        keys.append((["auths", DOCKER_IO], hub))
    return keys


def targets(wanted, home, owner=None, hub=None):
    """hub: the docker.io entry for auth.json (see hub_entry), None for none."""
    out = [in_certs_d(ETC, endpoint, "ca.crt", wanted.cert.encode()) for endpoint in wanted.endpoints]
    if wanted.namespaces:
        out.append(
            Target(
                path=DROP_IN, kind="file", content=registries_conf(wanted), dirs=[(ETC, 0o755), (DROP_IN_DIR, 0o755)]
            )
        )
    config = os.path.join(home, ".config")
    out.append(
        Target(
            path=auth_path(home),
            kind="json",
            content=auth_keys(wanted, hub),
            mode=0o600,
            secret=True,
            dirs=[(config, 0o700), (os.path.join(config, "containers"), 0o700)],
            owner=owner,
        )
    )
    return out
