# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Why a container did not come up, in words: pure.

Reads its log (registry 2.8's logrus lines and Go panics, Caddy's JSON
lines) and names the likely cause and the option to change.
"""

from __future__ import annotations

import re

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.layout import CONTAINER_CERTS
from ansible.module_utils.buildset_registry.registry.config import is_proxy

LOG_LINES = 20


def port_in_use(option, port, cause):
    """The error for a port another program holds, found before acting."""
    return RegistryError(
        option,
        "Port %d ({" + option + "}) is already in use by another program (%s); stop that program "
        "(see `ss -ltnp 'sport = :%d'`) or set {" + option + "} to a free port",
        port,
        cause,
        port,
    )


_GOROUTINE = re.compile(r"^goroutine \d+ \[")
# Fields logrus repeats on every line of the registry's log.
_NOISE = re.compile(r' (?:go\.version|instance\.id|service|version|endpoint)=(?:"[^"]*"|\S+)')


def log_tail(text):
    """The last lines of a log, without the goroutine dump that follows a panic."""
    kept = []
    in_dump = False
    for line in text.splitlines():
        if _GOROUTINE.match(line):
            in_dump = True
            continue
        if in_dump:
            # The dump ends where a new start's log begins.
            if line.startswith(("time=", "panic:")) or re.match(r"^\d{4}/\d\d/\d\d ", line):
                in_dump = False
            else:
                continue
        # Expected: each endpoint is a single registry.
        if line.strip() and "No HTTP secret provided" not in line:
            kept.append(_NOISE.sub("", line))
    return kept[-LOG_LINES:]


_UPSTREAM_SIGNS = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "x509:",
    "tls:",
    "context deadline exceeded",
    "connection reset",
)


def _panic(text):
    line = next((line for line in text.splitlines() if line.startswith("panic:")), None)
    return line[len("panic:") :].strip() if line else None


def upstream_panic(text, kind, remote_url):
    """The panic of a proxy that could not reach its upstream at start, else None."""
    panic = _panic(text or "") if is_proxy(kind) else None
    if panic and ((remote_url and remote_url.rstrip("/") in panic) or any(s in panic.lower() for s in _UPSTREAM_SIGNS)):
        return panic
    return None


def _upstream(text, kind, remote_url, cert_path):
    panic = upstream_panic(text, kind, remote_url)
    if panic:
        return (
            "the proxy's upstream %s is unreachable (registry 2.8 exits at start when it cannot reach it: %s); "
            "start the upstream or check {proxy_remote_url} (and {proxy_username}/{proxy_password})"
            % (remote_url, panic)
        )
    return None


def _store(text, kind, remote_url, cert_path):
    panic = _panic(text)
    if panic and any(s in panic.lower() for s in ("swift", "s3", "storage driver", "aws")):
        return "the registry cannot reach its object store (%s); check that the store runs and {object_storage}" % panic
    return None


def _in_use(text, kind, remote_url, cert_path):
    if "address already in use" not in text.lower():
        return None
    if kind == "front":
        return (
            "one of its ports is already in use by another program; stop it or set {port} / {push_port} to free ports"
        )
    return (
        "its socket is already in use: another registry of the same {root} runs (under another engine "
        "or container name?); remove it, or give this registry its own {root}"
    )


def _tls(text, kind, remote_url, cert_path):
    if any(s in text.lower() for s in ("tls:", "x509:", "private key", "certificate", CONTAINER_CERTS + "/")):
        return (
            "the front cannot load its TLS certificate or key (%s and domain.key beside it); "
            "they are made by the role's certificate task: remove both and run the role again"
            % (cert_path or CONTAINER_CERTS)
        )
    return None


def _no_caddy(text, kind, remote_url, cert_path):
    lower = text.lower()
    if kind == "front" and ("executable file not found" in lower or "no such file or directory" in lower):
        return (
            "the image has no caddy on its PATH; set {front_image} to caddy:2 or an image "
            "scripts/provide-front-image builds"
        )
    return None


def _bad_config(text, kind, remote_url, cert_path):
    if any(s in text.lower() for s in ("configuration error", "error parsing", "loading config")):
        return "the %s rejects its configuration file; this is a bug of the role, please report it" % (
            "front" if kind == "front" else "registry"
        )
    return None


def _other_panic(text, kind, remote_url, cert_path):
    panic = _panic(text)
    return "the registry panicked: %s" % panic if panic else None


def _not_listening(text, kind, remote_url, cert_path):
    if is_proxy(kind) and "listening on" not in text.lower():
        return (
            "the proxy has not started listening: registry 2.8 first contacts its upstream %s, "
            "which does not answer; start the upstream or check {proxy_remote_url}" % remote_url
        )
    return None


# In order: the first that recognizes the log names the cause.
_RULES = (_upstream, _store, _in_use, _tls, _no_caddy, _bad_config, _other_panic, _not_listening)


def diagnose(logs, kind, remote_url=None, cert_path=None):
    """The likely cause of a failed start, in words, from the container's log:
    one sentence naming the variable or file to fix."""
    for rule in _RULES:
        cause = rule(logs or "", kind, remote_url, cert_path)
        if cause:
            return cause
    return "no cause in the log"


def failure(endpoint, what, logs, remote_url, paths, check=None, last=None):
    """The error for a container that did not come up: what happened, the
    likely cause, the last answer it gave and its last log lines."""
    cause = diagnose(logs, endpoint.kind, remote_url, paths["cert"])
    tail = log_tail(logs)
    msg = "Container %s (%s) %s: %s." % (endpoint.name, endpoint.kind, what, cause)
    if check is not None:
        msg += " Last answer of %s: %s (waiting for %s)." % (check.where, last, check.expect)
    msg += " Last log lines:\n" + ("\n".join(tail) if tail else "(empty)")
    # No values: the message (log text included) is not %-interpolated.
    return RegistryError(endpoint.option, msg)
