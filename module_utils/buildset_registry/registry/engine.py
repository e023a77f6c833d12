# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The container engine: every call to the docker SDK, and only that.

The one file that imports the docker SDK. Engine wraps a low-level
APIClient (Docker's engine, or Podman's service, which speaks the same
API) in the few verbs the role needs, and turns the SDK's errors into a
RegistryError that names the engine and what to do.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.options import DEFAULT_DOCKER_HOST

try:
    import docker
    import docker.errors
    import requests.exceptions
    from docker.utils import kwargs_from_env
except ImportError:  # reported by the module with missing_required_lib
    docker = None

CONNECT_TIMEOUT = 5
API_TIMEOUT = 120
LOG_LINES = 200
REMOVE_ATTEMPTS = 30

SPEC_LABEL = "org.buildset-registry.spec"
KIND_LABEL = "org.buildset-registry.endpoint"
# The public ports a container holds, comma-separated ("" for none).
PORT_LABEL = "org.buildset-registry.port"


def create_args(spec, name, image, digest):
    """Keyword arguments of APIClient.create_container, minus host_config."""
    args = {
        "image": image,
        "name": name,
        "command": list(spec["command"]),
        "environment": list(spec["env"]),
        "labels": {
            SPEC_LABEL: digest,
            KIND_LABEL: spec["kind"],
            PORT_LABEL: ",".join(str(port) for port in spec["ports"]),
        },
        "detach": True,
    }
    if spec["entrypoint"]:
        args["entrypoint"] = list(spec["entrypoint"])
    return args


def host_config_args(spec):
    """Keyword arguments of APIClient.create_host_config."""
    return {
        "binds": list(spec["binds"]),
        "network_mode": spec["network_mode"],
        "restart_policy": {"Name": spec["restart_policy"]},
    }


def docker_url(environ=None):
    environ = os.environ if environ is None else environ
    return environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def root_cause(exc):
    """The innermost operating-system error behind exc (e.g. "Connection
    refused"), else str(exc): requests wraps it several layers deep."""
    found, seen, stack = None, set(), [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            found = e
        stack.extend([e.__cause__, e.__context__, getattr(e, "reason", None)])
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    if found is None:
        return str(exc)
    if isinstance(found, socket.timeout) or "timed out" in found.strerror:
        return "no answer (timed out)"
    return found.strerror


class Engine:
    """The verbs the role needs from a Docker-compatible engine."""

    def __init__(self, client, url):
        self.client = client
        self.url = url

    @classmethod
    def connect(cls, url=None, timeout=CONNECT_TIMEOUT):
        """Connect; fails within about `timeout` seconds when the engine does not answer."""
        url = url or docker_url()
        kwargs = kwargs_from_env()
        kwargs["base_url"] = url
        try:
            # version="auto" asks the engine its API version: the reachability check.
            client = docker.APIClient(version="auto", timeout=timeout, **kwargs)
        except Exception as e:  # DockerException wraps requests' errors
            raise RegistryError(
                "docker_host",
                "Docker engine not reachable at %s: %s; start it (e.g. `service docker start`, or the Podman "
                "service of that socket) or set {docker_host} to the engine's API socket",
                url,
                root_cause(e),
            ) from e
        client.timeout = API_TIMEOUT
        return cls(client, url)

    def close(self):
        self.client.close()

    @contextlib.contextmanager
    def errors(self):
        """Turn the SDK's errors into a RegistryError that says what to do."""
        try:
            yield
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise RegistryError(
                "docker_host",
                "Docker engine at %s failed a request: %s; check the engine (`docker info`) and run again",
                self.url,
                e,
            ) from e

    def image_id(self, image, check_mode, option="image"):
        """(image ID or None, pulled?): pulls a missing image unless in check
        mode; a failure names option, the variable that names the image."""
        try:
            return self.client.inspect_image(image)["Id"], False
        except docker.errors.ImageNotFound:
            pass
        if check_mode:
            return None, True
        cause = None
        try:
            for message in self.client.pull(image, stream=True, decode=True):
                if isinstance(message, dict) and message.get("error"):
                    cause = message["error"]
                    break
        except docker.errors.APIError as e:
            cause = e.explanation or str(e)
        except docker.errors.DockerException as e:
            cause = str(e)
        if cause is None:
            try:
                return self.client.inspect_image(image)["Id"], True
            except docker.errors.ImageNotFound:
                cause = "the pull ended without the image"
        script = "provide-front-image" if option == "front_image" else "provide-registry-image"
        raise RegistryError(
            option,
            "Image %s is not on this host and cannot be pulled: %s. Set {" + option + "} to an image that can "
            "be pulled, or provide it beforehand; on an air-gapped host scripts/%s builds one offline",
            image,
            str(cause).strip(),
            script,
        )

    def find(self, names):
        """name -> {"id", "status", "spec_hash", "port"} for those of names that exist (one API call)."""
        # Docker matches the name with its leading slash, Podman without.
        patterns = ["^/?%s$" % re.escape(name) for name in names]
        found = {}
        for summary in self.client.containers(all=True, filters={"name": patterns}):
            for full in summary.get("Names") or []:
                name = full.lstrip("/")
                if name in names:
                    found[name] = existing_of(summary)
        return found

    def run(self, spec, name, image, digest):
        """Create and start a container of spec; return its ID."""
        host_config = self.client.create_host_config(**host_config_args(spec))
        created = self.client.create_container(host_config=host_config, **create_args(spec, name, image, digest))
        self.client.start(created["Id"])
        return created["Id"]

    def start(self, container_id):
        self.client.start(container_id)

    def restart(self, container_id):
        self.client.restart(container_id, timeout=10)

    def remove(self, container_id, attempts=REMOVE_ATTEMPTS):
        """Remove a container, and make sure it is gone.

        Podman 4.3 fails a forced removal of a crash-looping container now
        and then (500, "container state improper") and may restart one it
        just stopped; it gives in on a retry.
        """
        for attempt in range(attempts):
            try:
                self.client.remove_container(container_id, force=True, v=True)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as e:
                if e.status_code != 500 or attempt == attempts - 1:
                    raise
            try:
                self.client.inspect_container(container_id)
            except docker.errors.NotFound:
                return
            time.sleep(0.1)

    def state(self, container_id):
        """(status, restart count, exit code) of a container."""
        info = self.client.inspect_container(container_id)
        state = info.get("State") or {}
        return state.get("Status"), info.get("RestartCount", 0), state.get("ExitCode")

    def logs(self, container_id):
        try:
            raw = self.client.logs(container_id, tail=LOG_LINES)
        except docker.errors.DockerException as e:
            return "(cannot read the log: %s)" % e
        return raw.decode("utf-8", "replace")


def existing_of(summary):
    """What the role needs of a container listing entry."""
    labels = summary.get("Labels") or {}
    ports = [int(p) for p in (labels.get(PORT_LABEL) or "").split(",") if p.strip().isdigit()]
    return {"id": summary["Id"], "status": summary.get("State"), "spec_hash": labels.get(SPEC_LABEL), "ports": ports}
