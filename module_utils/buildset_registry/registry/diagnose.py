# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Why a registry container did not come up, in words: pure.

Reads the registry's log (registry 2.8's logrus lines and Go panics) and
names the likely cause and the option to change.
"""

from __future__ import annotations

import re

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.layout import CONTAINER_CERTS, CONTAINER_HTPASSWD

LOG_LINES = 20
PORT_OPTIONS = {"proxy": "port", "push": "push_port"}


def port_in_use(kind, port, cause):
    """The error for a port another program holds, found before acting."""
    option = PORT_OPTIONS[kind]
    return RegistryError(
        option,
        "Port %d for the %s endpoint is already in use by another program (%s); stop that program "
        "(see `ss -ltnp 'sport = :%d'`) or set {" + option + "} to a free port",
        port,
        kind,
        cause,
        port,
    )


_GOROUTINE = re.compile(r"^goroutine \d+ \[")
# Fields logrus repeats on every line of the registry's log.
_NOISE = re.compile(r' (?:go\.version|instance\.id|service|version|endpoint)=(?:"[^"]*"|\S+)')


def log_tail(text, lines=LOG_LINES):
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
    return kept[-lines:]


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


def diagnose(logs, kind, port, remote_url=None, cert_path=None, htpasswd_path=None):
    """The likely cause of a failed start, in words, from the container's log.

    logs is the log text; returns one sentence naming the variable or file
    to fix.
    """
    text = logs or ""
    lower = text.lower()
    panic = next((line for line in text.splitlines() if line.startswith("panic:")), None)
    if (
        kind == "proxy"
        and panic
        and ((remote_url and remote_url.rstrip("/") in panic) or any(s in panic.lower() for s in _UPSTREAM_SIGNS))
    ):
        return (
            "the proxy's upstream %s is unreachable (registry 2.8 exits at start when it cannot reach it: %s); "
            "start the upstream or check {proxy_remote_url} "
            "(and {proxy_username}/{proxy_password})" % (remote_url, panic[len("panic:") :].strip())
        )
    if panic and any(s in panic.lower() for s in ("swift", "s3", "storage driver", "aws")):
        return (
            "the registry cannot reach its object store (%s); check that the store runs and {object_storage}"
            % panic[len("panic:") :].strip()
        )
    if "address already in use" in lower:
        return "port %d is already in use by another program; stop it or set %s to a free port" % (
            port,
            "{%s}" % PORT_OPTIONS[kind],
        )
    if "htpasswd" in lower and ("no such file" in lower or "permission denied" in lower or "error" in lower):
        return (
            "the registry cannot read its htpasswd file %s; it is made by the role's htpasswd task: "
            "run the whole role" % (htpasswd_path or CONTAINER_HTPASSWD)
        )
    if any(s in lower for s in ("tls:", "x509:", "private key", "certificate", CONTAINER_CERTS + "/")):
        return (
            "the registry cannot load its TLS certificate or key (%s and domain.key beside it); "
            "they are made by the role's certificate task: remove both and run the role again"
            % (cert_path or CONTAINER_CERTS)
        )
    if "configuration error" in lower or "error parsing" in lower:
        return "the registry rejects its configuration file; this is a bug of the role, please report it"
    if panic:
        return "the registry panicked: %s" % panic[len("panic:") :].strip()
    if kind == "proxy" and "listening on" not in lower:
        return (
            "the proxy has not started listening: registry 2.8 first contacts its upstream %s, "
            "which does not answer; start the upstream or check {proxy_remote_url}" % remote_url
        )
    return "no cause in the log"


def failure(name, kind, port, what, logs, remote_url, paths, last=None):
    """The error for an endpoint that did not come up: what happened, the
    likely cause, the last answer of its /v2/ and its last log lines."""
    cause = diagnose(logs, kind, port, remote_url, paths["cert"], paths["htpasswd"])
    tail = log_tail(logs)
    msg = "Container %s (%s endpoint, port %d) %s: %s." % (name, kind, port, what, cause)
    if last is not None:
        msg += " Last answer of https://127.0.0.1:%d/v2/: %s." % (port, last)
    msg += " Last log lines:\n" + ("\n".join(tail) if tail else "(empty)")
    # No values: the message (log text included) is not %-interpolated.
    return RegistryError(PORT_OPTIONS[kind], msg)
