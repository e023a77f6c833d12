# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The waiter: starts a proxy once its upstream answers, without a re-run.

registry 2.8 in proxy mode needs its upstream at start. Docker retries a
crashing container with a back-off, but Podman 4.3 restarts it at once,
about ten times a second, so under Podman the proxy gets a few tries and
then waits stopped; and under either engine a proxy whose upstream
accepted the connection and never answered waits for good in its start-up
GET. So, while a proxy waits, the module leaves this process behind
(launch()): every few seconds (doubling to MAX_INTERVAL) it asks the
upstream's /v2/ with a short timeout; once anything answers, it starts the
proxy (restarts it when it hangs) through the engine's API socket, and
exits when the proxy serves, when the container is gone (removed or
recreated: a re-run watches the new one) or after LIFETIME.

It runs as `python -c BOOTSTRAP ARGS` with its source on stdin (the
module's files are deleted when the module exits): this file imports the standard library only, and
main() takes everything from its arguments: no secret (credentials are not
needed to tell whether the upstream answers). Nothing here is imported by
the waiter from the role.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import sys
import time
from urllib.parse import urlsplit

INTERVAL = 5.0
MAX_INTERVAL = 30.0
LIFETIME = 24 * 3600
TIMEOUT = 4.0
# Marks the waiter's command line, for is_waiting().
MARK = "buildset-registry-waiter"


def _http(sock, method, path):
    """(status, body) of one HTTP/1.0 request on a connected socket."""
    sock.sendall(("%s %s HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n" % (method, path)).encode("ascii"))
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            break
        chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    parts = head.split(None, 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError("not an HTTP answer")
    return int(parts[1]), body


def _unix(path, timeout=TIMEOUT):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect("\0" + path[1:] if path.startswith("@") else path)
    except OSError:
        sock.close()
        raise
    return sock


def upstream_answers(url, timeout=TIMEOUT):
    """Whether url's /v2/ sends an HTTP answer (any status) within timeout."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        if parts.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        with sock:
            _http(sock, "GET", parts.path.rstrip("/") + "/v2/")
        return True
    except (OSError, ValueError):
        return False


def serving(registry_socket):
    """Whether the proxy answers 200 on its socket."""
    try:
        with _unix(registry_socket) as sock:
            return _http(sock, "GET", "/v2/")[0] == 200
    except (OSError, ValueError):
        return False


def engine(engine_socket, method, path):
    """(status, JSON or None) of one request to the engine's API."""
    with _unix(engine_socket, 60) as sock:
        status, body = _http(sock, method, path)
    try:
        return status, json.loads(body) if body.strip() else None
    except ValueError:
        return status, None


def step(state, upstream_ok, proxy_serving):
    """What to do now; pure. state: the container's status, None when it is
    gone. Returns "exit", "start", "restart" or "wait"."""
    if state is None or proxy_serving:
        return "exit"
    if not upstream_ok:
        return "wait"
    # Running without serving: held in its start-up GET, or (Docker)
    # between two tries of its restart policy.
    return "restart" if state in ("running", "restarting") else "start"


def watch(engine_socket, container_id, registry_socket, url, interval=INTERVAL, lifetime=LIFETIME, sleep=time.sleep):
    """Wait for the upstream, then start the proxy; return why it stopped."""
    deadline = time.monotonic() + lifetime
    wait = interval
    while time.monotonic() < deadline:
        try:
            status, info = engine(engine_socket, "GET", "/containers/%s/json" % container_id)
        except (OSError, ValueError):
            status, info = None, None  # the engine restarts: ask again later
        state = ((info or {}).get("State") or {}).get("Status") if status == 200 else None
        if status != 200 and status != 404:
            state = "unknown"
        action = step(state, state != "unknown" and upstream_answers(url), serving(registry_socket))
        if action == "exit":
            return "gone" if state is None else "serving"
        if action != "wait":
            query = "?t=1" if action == "restart" else ""
            with contextlib.suppress(OSError, ValueError):
                engine(engine_socket, "POST", "/containers/%s/%s%s" % (container_id, action, query))
        sleep(wait)
        wait = min(wait * 2, MAX_INTERVAL)
    return "lifetime"


def main(argv):
    # python -c BOOTSTRAP MARK ARGS: argv is ["-c", MARK, ARGS...].
    engine_socket, container_id, registry_socket, url = argv[2:6]
    watch(engine_socket, container_id, registry_socket, url)


# The command line holds this, not the source: the source comes on stdin.
BOOTSTRAP = "import sys; exec(compile(sys.stdin.read(), %r, 'exec'))" % MARK


def launch(python, source, engine_socket, container_id, registry_socket, url):
    """Leave a waiter behind, detached from the module (new session, no
    inherited descriptors, its source on stdin); return its pid."""
    import subprocess

    with open(os.devnull, "r+b") as null:
        proc = subprocess.Popen(
            [python, "-c", BOOTSTRAP, MARK, engine_socket, container_id, registry_socket, url],
            stdin=subprocess.PIPE,
            stdout=null,
            stderr=null,
            close_fds=True,
            start_new_session=True,
            cwd="/",
        )
    # A few kilobytes: the pipe takes them without blocking.
    proc.stdin.write(source.encode("utf-8"))
    proc.stdin.close()
    return proc.pid


def is_waiting(container_id, proc="/proc"):
    """Whether a waiter for container_id runs (its command line names both)."""
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            with open(os.path.join(proc, pid, "cmdline"), "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if MARK.encode() in args and container_id.encode() in args:
            return True
    return False


if __name__ == "__main__":
    main(sys.argv)
