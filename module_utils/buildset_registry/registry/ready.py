# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Sockets: is a port free, does an endpoint answer, wait until both do.

No engine here: wait_ready() asks the caller's engine for a container's
state and the caller's failure() for the error to raise.
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
import time
from dataclasses import dataclass

POLL_INTERVAL = 0.025
INSPECT_INTERVAL = 0.5


@dataclass(frozen=True)
class Started:
    """A container just created, started or kept, to wait for."""

    kind: str
    name: str
    id: str
    port: int
    # RestartCount when known at start (0 for a new container), else None.
    restarts: int = None


def port_free(port):
    """(True, None) when a registry could listen on :port, (False, cause) when
    another socket holds it, (None, cause) when this cannot be told."""
    for family, addr in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 on this host
        try:
            # The registry (Go) listens with SO_REUSEADDR: TIME_WAIT is no conflict.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((addr, port))
            return True, None
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False, "bind: address already in use"
            if family == socket.AF_INET6 and e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                continue
            return None, e.strerror
        finally:
            sock.close()
    return None, "no socket family available"


def tls_context(cafile):
    return ssl.create_default_context(cafile=cafile)


def probe(port, context, timeout=2.0, address="127.0.0.1"):
    """GET https://ADDRESS:port/v2/; the HTTP status, or the error as text."""
    conn = http.client.HTTPSConnection(address, port, context=context, timeout=timeout)
    try:
        conn.request("GET", "/v2/")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        return "%s: %s" % (type(e).__name__, e)
    finally:
        conn.close()


def probe_storage(port, context, authorization, timeout=5.0, address="127.0.0.1"):
    """GET /v2/_catalog?n=1 with credentials, which reads the storage: the
    HTTP status and the body's start, or the error as text."""
    conn = http.client.HTTPSConnection(address, port, context=context, timeout=timeout)
    try:
        conn.request("GET", "/v2/_catalog?n=1", headers={"Authorization": authorization})
        response = conn.getresponse()
        return response.status, response.read(300).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as e:
        return None, "%s: %s" % (type(e).__name__, e)
    finally:
        conn.close()


def wait_ready(engine, started, cafile, timeout, failure, address="127.0.0.1"):
    """Return the seconds waited until every endpoint answers /v2/ with 401
    over TLS verified against cafile.

    engine.state(id) gives (status, restart count, exit code), checked every
    INSPECT_INTERVAL: a container that exited or restarted fails at once.
    failure(started, what, last answer) makes the error to raise.
    """
    context = tls_context(cafile)
    start = time.monotonic()
    deadline = start + timeout
    next_inspect = start + INSPECT_INTERVAL
    pending = list(started)
    baseline = {item.id: item.restarts for item in started}
    last = {}
    while True:
        for item in list(pending):
            last[item.id] = probe(item.port, context, address=address)
            if last[item.id] == 401:
                pending.remove(item)
        if not pending:
            return time.monotonic() - start
        now = time.monotonic()
        if now >= next_inspect:
            next_inspect = now + INSPECT_INTERVAL
            for item in pending:
                status, restarts, exit_code = engine.state(item.id)
                if baseline[item.id] is None:
                    baseline[item.id] = restarts
                if status != "running" or restarts > baseline[item.id]:
                    what = "exited" if status != "running" else "restarted"
                    if exit_code:
                        what += " (exit code %s)" % exit_code
                    raise failure(item, what + " while starting", last.get(item.id))
        if now >= deadline:
            item = pending[0]
            raise failure(item, "did not answer within %d s ({wait_timeout})" % timeout, last.get(item.id))
        time.sleep(POLL_INTERVAL)
