# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The container engine: every call to the docker SDK, and only that.

The one file that imports the docker SDK. Engine wraps a low-level
APIClient (Docker's engine, or Podman's service, which speaks the same
API) in the few verbs the role needs, and turns the SDK's errors into a
RegistryError that names the engine and what to do.

The SDK is imported only when the engine is asked to change something
(pull, create, start, restart, remove) or to give a log: importing it
(requests, urllib3) costs more than a re-run's whole work. Over a unix
socket, the reads a re-run makes (is the engine there, which containers,
which image IDs, a container's state) go through EngineReader, one
HTTP/1.0 GET each on that socket (registry/engine_reader.py), with the same answers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import sys
import time
from urllib.parse import quote

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.options import DEFAULT_DOCKER_HOST
from ansible.module_utils.buildset_registry.registry.engine_reader import (
    API_TIMEOUT,
    EngineReader,
    EngineReadError,
    root_cause,
)

# The docker SDK's import spec, None when it is not installed (the modules
# report that with missing_required_lib); _sdk() imports it.
DOCKER_SDK = importlib.util.find_spec("docker")

CONNECT_TIMEOUT = 5
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
        "restart_policy": restart_policy(spec["restart_policy"]),
    }


def restart_policy(text):
    """The engine's RestartPolicy of "always" or "on-failure:N"."""
    name, _, count = text.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count)} if count else {"Name": name}


def docker_url(environ=None):
    environ = os.environ if environ is None else environ
    return environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _sdk():
    """The docker SDK, imported on first use."""
    import docker
    import docker.errors
    import requests.exceptions  # noqa: F401 (errors() names them)
    from docker.utils import kwargs_from_env  # noqa: F401

    return docker


def _sdk_errors():
    """The SDK's error classes errors() translates; () before it is imported."""
    errors, requests = sys.modules.get("docker.errors"), sys.modules.get("requests.exceptions")
    return tuple(c for c in (errors and errors.DockerException, requests and requests.RequestException) if c)


def _unreachable(url, cause):
    return RegistryError(
        "docker_host",
        "Docker engine not reachable at %s: %s; start it (e.g. `service docker start`, or the Podman "
        "service of that socket) or set {docker_host} to the engine's API socket",
        url,
        root_cause(cause),
    )


def _sdk_client(url, timeout):
    """A docker.APIClient for url; RegistryError when the engine does not answer."""
    docker = _sdk()
    kwargs = docker.utils.kwargs_from_env()
    kwargs["base_url"] = url
    try:
        # version="auto" asks the engine its API version: the reachability check.
        client = docker.APIClient(version="auto", timeout=timeout, **kwargs)
    except Exception as e:  # DockerException wraps requests' errors
        raise _unreachable(url, e) from e
    client.timeout = API_TIMEOUT
    return client


class Engine:
    """The verbs the role needs from a Docker-compatible engine.

    client: a docker.APIClient, or None to connect one when a verb needs
    it; reader: an EngineReader for the reads, or None to read through
    the client.
    """

    def __init__(self, client, url, reader=None):
        self._client = client
        self.url = url
        self.reader = reader
        self._podman = None

    @property
    def podman(self):
        """Whether the engine is Podman's service (its restart policy has no back-off)."""
        if self._podman is None:
            version = self.reader.get("/version") if self.reader is not None else self.client.version()
            names = [str(c.get("Name", "")) for c in version.get("Components") or ()]
            self._podman = any("podman" in name.lower() for name in names)
        return self._podman

    @classmethod
    def connect(cls, url=None, timeout=CONNECT_TIMEOUT):
        """Connect; fails within about `timeout` seconds when the engine does not answer."""
        url = url or docker_url()
        path = url[len("unix://") :] if url.startswith("unix://") else ""
        if not path.startswith("/"):
            return cls(_sdk_client(url, timeout), url)
        reader = EngineReader(path, timeout)
        try:
            reader.request("/_ping")
        except EngineReadError as e:
            raise _unreachable(url, e) from e
        reader.timeout = API_TIMEOUT
        return cls(None, url, reader)

    @property
    def client(self):
        """The docker SDK's APIClient, connected on first use."""
        if self._client is None:
            self._client = _sdk_client(self.url, CONNECT_TIMEOUT)
        return self._client

    def close(self):
        if self._client is not None:
            self._client.close()

    @contextlib.contextmanager
    def errors(self):
        """Turn the SDK's and the reader's errors into a RegistryError that says what to do."""
        try:
            yield
        except Exception as e:
            if not isinstance(e, (EngineReadError, *_sdk_errors())):
                raise
            raise RegistryError(
                "docker_host",
                "Docker engine at %s failed a request: %s; check the engine (`docker info`) and run again",
                self.url,
                e,
            ) from e

    def _inspect_image(self, image):
        """The image's ID, None when the engine does not have it."""
        if self.reader is not None:
            info = self.reader.get("/images/%s/json" % quote(image, safe="/:@"), missing_ok=True)
            return info["Id"] if info else None
        try:
            return self.client.inspect_image(image)["Id"]
        except _sdk().errors.ImageNotFound:
            return None

    def image_id(self, image, check_mode, option="image"):
        """(image ID or None, pulled?): pulls a missing image unless in check
        mode; a failure names option, the variable that names the image."""
        found = self._inspect_image(image)
        if found is not None:
            return found, False
        if check_mode:
            return None, True
        docker = _sdk()
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
            found = self._inspect_image(image)
            if found is not None:
                return found, True
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
        """name -> {"id", "status", "spec_hash", "ports"} for those of names that exist (one API call)."""
        # Docker matches the name with its leading slash, Podman without.
        filters = {"name": ["^/?%s$" % re.escape(name) for name in names]}
        if self.reader is not None:
            listing = self.reader.get("/containers/json", {"all": "1", "filters": json.dumps(filters)})
        else:
            listing = self.client.containers(all=True, filters=filters)
        found = {}
        for summary in listing:
            for full in summary.get("Names") or []:
                name = full.lstrip("/")
                if name in names:
                    found[name] = existing_of(summary)
        return found

    def run(self, spec, name, image, digest, option="image"):
        """Create and start a container of spec; return its ID. A start the
        engine refuses (the image cannot run that command) removes the
        container and names option, the variable that names the image."""
        docker = _sdk()
        host_config = self.client.create_host_config(**host_config_args(spec))
        created = self.client.create_container(host_config=host_config, **create_args(spec, name, image, digest))
        try:
            self.client.start(created["Id"])
        except docker.errors.APIError as e:
            self.remove(created["Id"])
            raise RegistryError(
                option,
                "Container %s of image %s does not start: %s; set {" + option + "} to an image that runs %s",
                name,
                image,
                (e.explanation or str(e)).strip(),
                " ".join([*spec["entrypoint"], *spec["command"]]) or "its own command",
            ) from e
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
        errors = _sdk().errors
        for attempt in range(attempts):
            try:
                self.client.remove_container(container_id, force=True, v=True)
            except errors.NotFound:
                return
            except errors.APIError as e:
                if e.status_code != 500 or attempt == attempts - 1:
                    raise
            try:
                self.client.inspect_container(container_id)
            except errors.NotFound:
                return
            time.sleep(0.1)

    def state(self, container_id):
        """(status, restart count, exit code) of a container."""
        if self.reader is not None:
            info = self.reader.get("/containers/%s/json" % quote(container_id, safe=""))
        else:
            info = self.client.inspect_container(container_id)
        state = info.get("State") or {}
        return state.get("Status"), info.get("RestartCount", 0), state.get("ExitCode")

    def logs(self, container_id):
        try:
            raw = self.client.logs(container_id, tail=LOG_LINES)
        except (RegistryError, *_sdk_errors()) as e:
            return "(cannot read the log: %s)" % e
        return raw.decode("utf-8", "replace")


def existing_of(summary):
    """What the role needs of a container listing entry."""
    labels = summary.get("Labels") or {}
    ports = [int(p) for p in (labels.get(PORT_LABEL) or "").split(",") if p.strip().isdigit()]
    return {"id": summary["Id"], "status": summary.get("State"), "spec_hash": labels.get(SPEC_LABEL), "ports": ports}
