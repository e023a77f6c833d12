# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Does a proxy's upstream answer? A short probe, standard library only.

registry 2.8 in proxy mode GETs REMOTE/v2/ once at start (to discover the
token realm its credentials are for) and panics when that fails; with no
timeout, an upstream that never answers holds it there for good. So the
module asks first, with a few seconds' timeout, and says why an upstream
cannot be used: the role then runs without that proxy (the front answers
404 for what was never pushed) instead of failing, and warns.

probe() talks to the network; classify() and the texts are pure.
"""

from __future__ import annotations

import base64
import socket
import ssl
import sys
import time
from urllib.parse import urlencode, urlsplit

from ansible.module_utils.buildset_registry.common.errors import RegistryError

PROBE_TIMEOUT = 4.0

# Causes, as classify() names them.
REFUSED = "refused"
UNRESOLVED = "unresolved"
TIMEOUT = "timeout"
TLS = "tls"
CREDENTIALS = "credentials"
OTHER = "other"

_WHAT = {
    REFUSED: "refuses connections",
    UNRESOLVED: "does not resolve",
    TIMEOUT: "does not answer within %g s",
    TLS: "fails TLS",
    CREDENTIALS: "answers 401 to the proxy's credentials",
    OTHER: "cannot be reached",
}


def classify(error):
    """The cause (REFUSED, UNRESOLVED, TIMEOUT, TLS or OTHER) of a probe's
    exception; pure."""
    if isinstance(error, socket.gaierror):
        return UNRESOLVED
    if isinstance(error, ConnectionRefusedError):
        return REFUSED
    if isinstance(error, (socket.timeout, TimeoutError)):
        return TIMEOUT
    if isinstance(error, (ssl.SSLError, ssl.CertificateError)):
        return TLS
    return OTHER


def parse_challenge(header):
    """(scheme, params) of a WWW-Authenticate header; pure. Enough for the
    one challenge registries send (Bearer realm="...",service="...")."""
    scheme, _, rest = (header or "").strip().partition(" ")
    params = {}
    for part in _split_params(rest):
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return scheme.lower(), params


def _split_params(text):
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current.strip() else parts


def _get(url, headers, timeout):
    """(status, headers) of one GET; raises the socket's or TLS's error."""
    import http.client

    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path or "/"
        conn.request("GET", path + ("?" + parts.query if parts.query else ""), headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def probe(remote_url, username="", password="", timeout=PROBE_TIMEOUT):
    """None when the upstream answers as the proxy needs it to, else
    (cause, detail): the cause as classify() names it, or CREDENTIALS when
    the upstream (or its token realm) answers 401 or 403 to the credentials."""
    base = remote_url.rstrip("/")
    try:
        status, headers = _get(base + "/v2/", {}, timeout)
        if status != 401 or not (username or password):
            return None
        scheme, params = parse_challenge(headers.get("www-authenticate"))
        basic = "Basic " + base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
        if scheme == "bearer" and params.get("realm"):
            query = {"service": params["service"]} if params.get("service") else {}
            url = params["realm"] + ("?" + urlencode(query) if query else "")
        else:
            url = base + "/v2/"
        status, _ = _get(url, {"Authorization": basic}, timeout)
        if status in (401, 403):
            return CREDENTIALS, "%s answered %d" % (url, status)
        return None
    except Exception as e:  # noqa: BLE001 (any failure is a cause to name)
        cause = classify(e)
        if cause == TIMEOUT:
            return cause, "no answer within %g s" % timeout
        return cause, "%s: %s" % (type(e).__name__, e)


def probe_all(targets, timeout=PROBE_TIMEOUT):
    """name -> probe() of each (name, url, username, password) of targets,
    all at once (one thread each): as long as the slowest, not the sum."""
    import threading

    found = {}

    def one(name, url, username, password):
        found[name] = probe(url, username, password, timeout)

    threads = [threading.Thread(target=one, args=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    # A slow resolver is not bounded by the sockets' timeout; a credentials
    # check makes a second request.
    deadline = time.monotonic() + 2 * timeout + 2
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = (TIMEOUT, "no answer within %g s" % timeout)
    return {target[0]: found.get(target[0], late) for target in targets}


def warning(name, remote_url, cause, detail, podman=False, option="proxy_remote_url", timeout=PROBE_TIMEOUT):
    """The warning for one proxy whose upstream cannot be used: its URL, the
    variable to check (option), the cause, and what happens meanwhile; pure."""
    what = _WHAT[cause] % timeout if cause == TIMEOUT else _WHAT[cause]
    variable = "{%s}" % option
    if cause == CREDENTIALS:
        credentials = "{proxy_username} and {proxy_password}" if option == "proxy_remote_url" else "its credentials"
        then = "; check %s, then run the role again" % credentials
    elif podman:
        then = ". Podman does not retry with a back-off: a waiter process starts the proxy once the upstream answers"
    else:
        then = (
            ". The engine retries the proxy with a back-off, and a waiter process starts it once the upstream answers"
        )
    return RegistryError(
        option,
        "The upstream %s of proxy %s (" + variable + ") %s (%s): the role goes on without it. Pushed images are "
        "served; other names answer 404 at {port} (MANIFEST_UNKNOWN) so clients move on"
        + then
        + "; or check "
        + variable,
        remote_url,
        name,
        what,
        detail,
    )


def check(endpoints, podman, outcome):
    """Probe each proxy's upstream (Endpoint.upstream: each proxy has its
    own); return the names of the proxies whose upstream cannot be used
    (the role goes on without them), each with a warning in
    outcome.data["warnings"] and its cause in ["upstreams"]."""
    proxies = {e.name: e for e in endpoints if e.upstream}
    found = probe_all([(name, *e.upstream) for name, e in proxies.items()])
    report = outcome.data.setdefault("upstreams", {})
    for name, endpoint in proxies.items():
        url = endpoint.upstream[0]
        cause, detail = found[name] or (None, None)
        report[name] = {"url": url, "usable": cause is None, "cause": cause, "detail": detail}
        if cause:
            outcome.data.setdefault("warnings", []).append(warning(name, url, cause, detail, podman, endpoint.option))
    return frozenset(name for name, item in report.items() if not item["usable"])


def leave_waiters(engine, started, sockets, waiting, outcome):
    """For each started proxy in waiting, leave a waiter (registry/waiter.py)
    that starts it once its upstream answers, unless one runs already.
    Needs the engine's API on a unix socket; sockets: name -> its socket."""
    from ansible.module_utils.buildset_registry.registry import waiter

    path = engine.url[len("unix://") :] if engine.url.startswith("unix://") else ""
    for item in started:
        if item.name not in waiting or not path.startswith("/"):
            continue
        report = outcome.data["upstreams"][item.name]
        if waiter.is_waiting(item.id):
            report["waiter"] = "running"
            continue
        source = inspect_source(waiter)
        report["waiter"] = waiter.launch(sys.executable, source, path, item.id, sockets[item.name], report["url"])


def inspect_source(module):
    """A module's source text, also from the zip Ansible runs modules from."""
    import inspect

    return inspect.getsource(module)
