# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The engine's API read with the standard library alone: one HTTP/1.0 GET
per request on its unix socket (common/http10.py). registry/engine.py
reads through it whenever the engine is a unix socket: importing the
docker SDK costs more than a re-run's whole work.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlencode

from ansible.module_utils.buildset_registry.common import http10
from ansible.module_utils.buildset_registry.common.errors import RegistryError

API_TIMEOUT = 120


def root_cause(exc):
    """The innermost operating-system error behind exc (e.g. "Connection
    refused"), else str(exc): requests wraps it several layers deep."""
    found, seen, stack = None, set(), [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and (e.strerror or isinstance(e, socket.timeout)):
            found = e
        stack.extend([e.__cause__, e.__context__, getattr(e, "reason", None)])
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    if found is None:
        return str(exc)
    if isinstance(found, socket.timeout) or "timed out" in found.strerror:
        return "no answer (timed out)"
    return found.strerror


class EngineReadError(RegistryError):
    """A read of EngineReader failed: the engine answered an error, or not
    at all. About {docker_host}, like every error of the engine's."""

    def __init__(self, message):
        super().__init__("docker_host", "%s", message)


class EngineReader:
    """GETs of the engine's API over its unix socket, standard library only
    (common/http10: one HTTP/1.0 request per connection).

    Unversioned paths: Docker and Podman answer them at their current API
    version, as the SDK's version="auto" does.
    """

    def __init__(self, path, timeout=API_TIMEOUT):
        self.path = path
        self.timeout = timeout

    def request(self, path, query=None, missing_ok=False):
        """The answer's body (bytes); None on a 404 when missing_ok."""
        url = path + ("?" + urlencode(query) if query else "")
        try:
            status, body = http10.get(url, unix=self.path, timeout=self.timeout)
        except (OSError, ValueError) as e:
            raise EngineReadError("GET %s: %s" % (path, root_cause(e))) from e
        if status == 404 and missing_ok:
            return None
        if not 200 <= status < 300:
            raise EngineReadError("GET %s: %d %s" % (path, status, body.decode("utf-8", "replace").strip()[:300]))
        return body

    def get(self, path, query=None, missing_ok=False):
        """The answer's JSON; None on a 404 when missing_ok."""
        body = self.request(path, query, missing_ok)
        if body is None:
            return None
        try:
            return json.loads(body)
        except ValueError as e:
            raise EngineReadError("GET %s: the answer is not JSON" % path) from e
