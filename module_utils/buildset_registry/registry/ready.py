# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Sockets: is a port free, does a container answer, wait until all do.

The front answers on its public ports over TLS; the registries on their
abstract unix sockets, in plain HTTP. No engine here: wait_ready() asks
the caller's engine for a container's state and the caller's failure()
for the error to raise.
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common import http10

POLL_INTERVAL = 0.025
INSPECT_INTERVAL = 0.5


@dataclass(frozen=True)
class Check:
    """One answer to wait for: a status on a TLS port of the node, or on an
    abstract unix socket."""

    expect: int
    port: int = None
    socket: str = ""
    authorization: str = ""
    path: str = "/v2/"

    @property
    def where(self):
        if self.socket:
            return "http://unix:%s%s" % (self.socket, self.path)
        return "https://127.0.0.1:%d%s" % (self.port, self.path)


@dataclass(frozen=True)
class Started:
    """A container just created, started or kept, to wait for."""

    kind: str
    name: str
    id: str
    checks: tuple
    # RestartCount when known at start (0 for a new container), else None.
    restarts: int = None


def port_free(port):
    """(True, None) when the front could listen on :port, (False, cause) when
    another socket holds it, (None, cause) when this cannot be told."""
    for family, addr in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 on this host
        try:
            # The front (Go) listens with SO_REUSEADDR: TIME_WAIT is no conflict.
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


def request(check, context, timeout=2.0):
    """(HTTP status, body start) of check's request, or (None, the error as text)."""
    headers = {"Authorization": check.authorization} if check.authorization else None
    try:
        status, body = http10.get(check.path, check.socket, check.port, context, headers, timeout)
    except (OSError, ValueError) as e:
        return None, "%s: %s" % (type(e).__name__, e)
    return status, body[:300].decode("utf-8", "replace")


def probe(check, context, timeout=2.0):
    """The HTTP status of check's request, or the error as text."""
    status, body = request(check, context, timeout)
    return body if status is None else status


def probe_all(checks, context, timeout=2.0):
    """check -> probe(check): all at once, one thread each (a re-run's
    probes then take as long as the slowest, not the sum)."""
    answers = {}

    def one(check):
        answers[check] = probe(check, context, timeout)

    threads = [threading.Thread(target=one, args=(check,), daemon=True) for check in checks[1:]]
    for thread in threads:
        thread.start()
    if checks:
        one(checks[0])
    for thread in threads:
        thread.join()
    return answers


def _give_up(error, pending, item):
    """Raise failure()'s error; None: stop waiting for item."""
    if error is not None:
        raise error
    pending[item.id] = []


def wait_ready(engine, started, cafile, timeout, failure):
    """Return the seconds waited until every check of every started
    container answers what it expects.

    engine.state(id) gives (status, restart count, exit code), checked every
    INSPECT_INTERVAL: a container that exited or restarted fails at once.
    failure(started, what, check, last answer) makes the error to raise, or
    returns None to wait no longer for that container (the others still).
    """
    context = tls_context(cafile)
    start = time.monotonic()
    deadline = start + timeout
    next_inspect = start + INSPECT_INTERVAL
    pending = {item.id: list(item.checks) for item in started}
    baseline = {item.id: item.restarts for item in started}
    last = {}
    while True:
        answers = probe_all([check for item in started for check in pending[item.id]], context)
        for item in started:
            for check in list(pending[item.id]):
                last[item.id] = (check, answers[check])
                if last[item.id][1] != check.expect:
                    break
                pending[item.id].remove(check)
        waiting = [item for item in started if pending[item.id]]
        if not waiting:
            return time.monotonic() - start
        now = time.monotonic()
        if now >= next_inspect:
            next_inspect = now + INSPECT_INTERVAL
            for item in waiting:
                status, restarts, exit_code = engine.state(item.id)
                if baseline[item.id] is None:
                    baseline[item.id] = restarts
                if status != "running" or restarts > baseline[item.id]:
                    what = "exited" if status != "running" else "restarted"
                    if exit_code:
                        what += " (exit code %s)" % exit_code
                    _give_up(failure(item, what + " while starting", *last[item.id]), pending, item)
        if now >= deadline:
            for item in waiting:
                if pending[item.id]:
                    error = failure(item, "did not answer within %d s ({wait_timeout})" % timeout, *last[item.id])
                    _give_up(error, pending, item)
        time.sleep(POLL_INTERVAL)
