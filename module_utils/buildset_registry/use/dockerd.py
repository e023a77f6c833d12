# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The running Docker engine: find it, make it reload daemon.json, and
see which registry mirrors it runs with.

dockerd re-reads its configuration file on SIGHUP without restarting
containers (measured with 20.10: the new mirrors show in GET /info within
about 10 ms). A key missing from the file leaves the running value as it
was, which is why `absent` may first write an empty list.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass

from ansible.module_utils.buildset_registry.common import http10

PID_FILES = ("/var/run/docker.pid", "/run/docker.pid")
DEFAULT_CONFIG = "/etc/docker/daemon.json"
DEFAULT_SOCKET = "/var/run/docker.sock"
# How long a reload may take to show in dockerd's API.
RELOAD_SECONDS = 5.0


@dataclass
class Dockerd:
    pid: int
    config_file: str  # the daemon.json it reads
    socket: str  # its API socket, for GET /info
    mirror_flag: bool  # started with --registry-mirror


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _flag(args, *names):
    """Values of a command-line flag given as --name value or --name=value."""
    values = []
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                values.append(args[i + 1])
            elif arg.startswith(name + "="):
                values.append(arg.split("=", 1)[1])
    return values


def find():
    """The running dockerd (from its pid file, else by process name), or None."""
    pids = []
    for path in PID_FILES:
        try:
            with open(path) as f:
                pids.append(int(f.read().strip()))
        except (OSError, ValueError):
            pass
    pids += sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    for pid in pids:
        if _comm(pid) == "dockerd":
            args = _cmdline(pid)
            hosts = [h[len("unix://") :] for h in _flag(args, "-H", "--host") if h.startswith("unix://")]
            return Dockerd(
                pid=pid,
                config_file=(_flag(args, "--config-file") or [DEFAULT_CONFIG])[-1],
                socket=hosts[0] if hosts else DEFAULT_SOCKET,
                mirror_flag=bool(_flag(args, "--registry-mirror"))
                or any(a.startswith("--registry-mirror") for a in args),
            )
    return None


def running_mirrors(sock):
    """The mirrors dockerd runs with (GET /info), or None when it does not answer."""
    try:
        status, body = http10.get("/info", unix=sock)
        if status != 200:
            return None
        mirrors = json.loads(body).get("RegistryConfig", {}).get("Mirrors") or []
    except (OSError, ValueError, AttributeError):
        return None
    return [m.rstrip("/") for m in mirrors]


def same(a, b):
    return a is not None and b is not None and [m.rstrip("/") for m in a] == [m.rstrip("/") for m in b]


def reload(dockerd, expected=None):
    """SIGHUP dockerd; when expected (a list) is given, wait until it runs
    with those mirrors (RELOAD_SECONDS at most). Returns (confirmed, mirrors
    seen or None)."""
    os.kill(dockerd.pid, signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_SECONDS
    seen = None
    while True:
        seen = running_mirrors(dockerd.socket)
        if expected is None or same(seen, expected):
            return seen is not None, seen
        if time.monotonic() > deadline:
            return False, seen
        time.sleep(0.02)
