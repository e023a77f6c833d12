# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The two registry containers: desired spec, decisions, Docker, readiness.

The decisions are plain functions (desired_spec, spec_hash, decide_action,
ports_to_check, diagnose, ...) that unit tests call without Docker. ensure()
wires them to one Docker API client and is what the module calls.

How a container is kept in step:
- its desired spec (image ID, command, environment, mounts, hash of its
  configuration file, port, restart policy, network) is hashed into the label
  SPEC_LABEL; a different hash recreates the container;
- the files it serves (certificate, key, htpasswd) are read only at start.
  Labels cannot change on a live container, so the hash of those files is
  kept per container ID in layout()["served_state"] (0600): when it differs, the
  container is restarted (a start binds the files anew, so even a file
  replaced by rename is seen) and the state file updated.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import time

from ansible.module_utils.buildset_registry_config import render_config
from ansible.module_utils.buildset_registry_layout import (
    CONTAINER_CERTS,
    CONTAINER_CONFIG,
    CONTAINER_DATA,
    CONTAINER_HTPASSWD,
    ensure_dirs,
    layout,
    read_optional,
    write_atomic,
)

try:
    import docker
    import docker.errors
    import requests.exceptions
    from docker.utils import kwargs_from_env
except ImportError:  # reported by the module with missing_required_lib
    docker = None

KINDS = ("proxy", "push")
PORT_VARS = {"proxy": "buildset_registry_port", "push": "buildset_registry_push_port"}
NAME_VARS = {"proxy": "buildset_registry_proxy_container", "push": "buildset_registry_push_container"}
SPEC_LABEL = "org.buildset-registry.spec"
KIND_LABEL = "org.buildset-registry.endpoint"
PORT_LABEL = "org.buildset-registry.port"
SPEC_VERSION = 1
SERVED_FILES = ("cert", "key", "htpasswd")
DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
CONNECT_TIMEOUT = 5
API_TIMEOUT = 120
POLL_INTERVAL = 0.025
INSPECT_INTERVAL = 0.5
LOG_LINES = 20

# The options of the containers module; the role's module takes them too.
ARGUMENT_SPEC = dict(
    root=dict(type="path", required=True),
    host=dict(type="str", required=True),
    port=dict(type="int", default=5000),
    push_port=dict(type="int", default=5001),
    image=dict(type="str", default="registry:2"),
    proxy_remote_url=dict(type="str"),
    proxy_username=dict(type="str", default=""),
    proxy_password=dict(type="str", default="", no_log=True),
    proxy_container=dict(type="str", default="buildset_proxy"),
    push_container=dict(type="str", default="buildset_registry"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    wait_timeout=dict(type="int", default=60),
)


class ContainersError(Exception):
    """A failure with a message that names the thing, the cause and the fix."""

    def __init__(self, msg):
        super().__init__(msg)
        self.msg = msg


# --- pure decisions -----------------------------------------------------


def config_path(paths, kind):
    return paths["%s_config" % kind]


def desired_spec(kind, port, image_id, config_text, paths):
    """Everything that, when it changes, needs a new container."""
    return {
        "version": SPEC_VERSION,
        "kind": kind,
        "image": image_id,
        "command": [CONTAINER_CONFIG],
        # Visible in docker inspect, harmless: the config file says the same.
        "env": ["REGISTRY_HTTP_ADDR=:%d" % port],
        "binds": [
            "%s:%s:rw" % (paths["data_dir"], CONTAINER_DATA),
            "%s:%s:ro" % (paths["certs_dir"], CONTAINER_CERTS),
            # The file alone: auth/ also holds the plain password.
            "%s:%s:ro" % (paths["htpasswd"], CONTAINER_HTPASSWD),
            "%s:%s:ro" % (config_path(paths, kind), CONTAINER_CONFIG),
        ],
        "config_sha256": hashlib.sha256(config_text.encode("utf-8")).hexdigest(),
        "port": port,
        "restart_policy": "always",
        "network_mode": "host",
    }


def spec_hash(spec):
    """A stable hash of a desired spec (key order does not matter)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()


def create_args(spec, name, image, digest):
    """Keyword arguments of APIClient.create_container, minus host_config."""
    return {
        "image": image,
        "name": name,
        "command": list(spec["command"]),
        "environment": list(spec["env"]),
        "labels": {SPEC_LABEL: digest, KIND_LABEL: spec["kind"], PORT_LABEL: str(spec["port"])},
        "detach": True,
    }


def host_config_args(spec):
    """Keyword arguments of APIClient.create_host_config."""
    return {
        "binds": list(spec["binds"]),
        "network_mode": spec["network_mode"],
        "restart_policy": {"Name": spec["restart_policy"]},
    }


def files_digest(contents):
    """Hash of the served files; contents maps name -> bytes or None (missing)."""
    outer = hashlib.sha256()
    for name in sorted(contents):
        data = contents[name]
        inner = b"missing" if data is None else hashlib.sha256(data).hexdigest().encode()
        outer.update(name.encode() + b"=" + inner + b"\n")
    return outer.hexdigest()


def files_changed(served, name, container_id, digest):
    """True unless the state file says this very container loaded these files."""
    entry = served.get(name) or {}
    return entry.get("id") != container_id or entry.get("files") != digest


def decide_action(existing, desired_hash, files_changed_):
    """What to do with one container.

    existing is None (no such container) or a dict with "status" and
    "spec_hash"; desired_hash is None when it cannot be known yet (check mode
    with the image still to pull). Returns created, recreated, started,
    restarted or unchanged.
    """
    if existing is None:
        return "created"
    if desired_hash is None or existing.get("spec_hash") != desired_hash:
        return "recreated"
    status = existing.get("status")
    if status == "running":
        return "restarted" if files_changed_ else "unchanged"
    if status in ("created", "exited"):
        # Starting binds and reads the files anew.
        return "started"
    # restarting (a crash loop), paused, dead, removing: start afresh.
    return "recreated"


def ports_to_check(plan):
    """Ports that must be free before acting.

    plan maps kind -> {"action", "port", "existing"} where existing is the
    container summary dict ({"status", "port"}) or None. A port our own
    running containers hold is not checked: a recreated container frees it
    first, a kept one keeps it.
    """
    ours = set()
    for item in plan.values():
        existing = item.get("existing")
        if existing and existing.get("status") in ("running", "restarting") and existing.get("port"):
            ours.add(existing["port"])
    return [
        (kind, item["port"])
        for kind, item in sorted(plan.items())
        if item["action"] in ("created", "recreated", "started") and item["port"] not in ours
    ]


def port_in_use_message(kind, port, cause):
    return (
        "Port %d for the %s endpoint is already in use by another program (%s); "
        "stop that program (see `ss -ltnp 'sport = :%d'`) or set %s to a free port."
        % (port, kind, cause, port, PORT_VARS[kind])
    )


def host_port(host, port):
    """host:port with an IPv6 address in brackets."""
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "%s:%d" % (host, port)


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
    if kind == "proxy" and panic and (
        (remote_url and remote_url.rstrip("/") in panic) or any(s in panic.lower() for s in _UPSTREAM_SIGNS)
    ):
        return (
            "the proxy's upstream %s is unreachable (registry 2.8 exits at start when it cannot reach it: %s); "
            "start the upstream or check buildset_registry_proxy_remote_url "
            "(and buildset_registry_proxy_username/_password)" % (remote_url, panic[len("panic:"):].strip())
        )
    if "address already in use" in lower:
        return (
            "port %d is already in use by another program; stop it or set %s to a free port"
            % (port, PORT_VARS[kind])
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
        return "the registry panicked: %s" % panic[len("panic:"):].strip()
    if kind == "proxy" and "listening on" not in lower:
        return (
            "the proxy has not started listening: registry 2.8 first contacts its upstream %s, "
            "which does not answer; start the upstream or check buildset_registry_proxy_remote_url" % remote_url
        )
    return "no cause in the log"


# --- files ----------------------------------------------------------------


def read_served_files(paths):
    return {name: read_optional(paths[name], ContainersError) for name in SERVED_FILES}


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def read_served_state(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    containers = data.get("containers") if isinstance(data, dict) else None
    return containers if isinstance(containers, dict) else {}


def write_private(path, text):
    """Write text to path with mode 0600, atomically (temp file and rename)."""
    ensure_dirs((os.path.dirname(path),), ContainersError)
    write_atomic(path, text, 0o600)


# --- ports and readiness ------------------------------------------------------


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


def probe(port, context, timeout=2.0):
    """GET https://127.0.0.1:port/v2/; the HTTP status, or the error as text."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    try:
        conn.request("GET", "/v2/")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        return "%s: %s" % (type(e).__name__, e)
    finally:
        conn.close()


# --- Docker -------------------------------------------------------------------


def docker_url(environ=None):
    environ = os.environ if environ is None else environ
    return environ.get("DOCKER_HOST") or DEFAULT_DOCKER_URL


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


def connect(timeout=CONNECT_TIMEOUT):
    """One API client; fails within about `timeout` seconds when the engine does not answer."""
    url = docker_url()
    try:
        # version="auto" asks the engine its API version: the reachability check.
        client = docker.APIClient(version="auto", timeout=timeout, **kwargs_from_env())
    except Exception as e:  # DockerException wraps requests' errors
        cause = root_cause(e)
        raise ContainersError(
            "Docker engine not reachable at %s: %s; start it (e.g. `service docker start`)" % (url, cause)
        )
    client.timeout = API_TIMEOUT
    return client


def resolve_image(client, image, check_mode):
    """(image ID or None, pulled?) — pulls a missing image unless in check mode."""
    try:
        return client.inspect_image(image)["Id"], False
    except docker.errors.ImageNotFound:
        pass
    if check_mode:
        return None, True
    cause = None
    try:
        for message in client.pull(image, stream=True, decode=True):
            if isinstance(message, dict) and message.get("error"):
                cause = message["error"]
                break
    except docker.errors.APIError as e:
        cause = e.explanation or str(e)
    except docker.errors.DockerException as e:
        cause = str(e)
    if cause is None:
        try:
            return client.inspect_image(image)["Id"], True
        except docker.errors.ImageNotFound:
            cause = "the pull ended without the image"
    raise ContainersError(
        "Image %s is not on this host and cannot be pulled: %s. Set buildset_registry_image to an image "
        "that can be pulled, or provide it beforehand; on an air-gapped host scripts/provide-registry-image "
        "builds a registry:2-compatible image offline." % (image, cause.strip())
    )


def find_containers(client, names):
    """name -> {"id", "status", "spec_hash", "port"} for those of names that exist (one API call)."""
    patterns = ["^/%s$" % re.escape(name) for name in names]
    found = {}
    for summary in client.containers(all=True, filters={"name": patterns}):
        for full in summary.get("Names") or []:
            name = full.lstrip("/")
            if name in names:
                labels = summary.get("Labels") or {}
                try:
                    port = int(labels.get(PORT_LABEL, ""))
                except ValueError:
                    port = None
                found[name] = {
                    "id": summary["Id"],
                    "status": summary.get("State"),
                    "spec_hash": labels.get(SPEC_LABEL),
                    "port": port,
                }
    return found


def container_logs(client, container_id):
    try:
        raw = client.logs(container_id, tail=200)
    except docker.errors.DockerException as e:
        return "(cannot read the log: %s)" % e
    return raw.decode("utf-8", "replace")


def failure(client, item, what, remote_url, paths, last=None):
    """A ContainersError for an endpoint that did not come up, with its log and cause."""
    text = container_logs(client, item["id"])
    cause = diagnose(text, item["kind"], item["port"], remote_url, paths["cert"], paths["htpasswd"])
    tail = log_tail(text)
    msg = "Container %s (%s endpoint, port %d) %s: %s." % (item["name"], item["kind"], item["port"], what, cause)
    if last is not None:
        msg += " Last answer of https://127.0.0.1:%d/v2/: %s." % (item["port"], last)
    msg += " Last log lines:\n" + ("\n".join(tail) if tail else "(empty)")
    return ContainersError(msg)


def wait_ready(client, items, paths, remote_url, timeout):
    """Return when every item's endpoint answers /v2/ with 401 over verified TLS.

    items: dicts with kind, name, id, port, restarts (RestartCount known at
    start, or None). The containers' state is checked every INSPECT_INTERVAL:
    one that exited or restarted fails at once with its log.
    """
    context = tls_context(paths["cert"])
    start = time.monotonic()
    deadline = start + timeout
    next_inspect = start + INSPECT_INTERVAL
    pending = list(items)
    last = {}
    while True:
        for item in list(pending):
            status = probe(item["port"], context)
            last[item["name"]] = status
            if status == 401:
                pending.remove(item)
        if not pending:
            return time.monotonic() - start
        now = time.monotonic()
        if now >= next_inspect:
            next_inspect = now + INSPECT_INTERVAL
            for item in pending:
                state = client.inspect_container(item["id"])
                restarts = state.get("RestartCount", 0)
                if item["restarts"] is None:
                    item["restarts"] = restarts
                running = state.get("State", {}).get("Status")
                if running != "running" or restarts > item["restarts"]:
                    what = "exited" if running != "running" else "restarted"
                    exit_code = state.get("State", {}).get("ExitCode")
                    if exit_code:
                        what += " (exit code %s)" % exit_code
                    raise failure(client, item, what + " while starting", remote_url, paths, last.get(item["name"]))
        if now >= deadline:
            item = pending[0]
            raise failure(
                client, item, "did not answer within %d s (buildset_registry_wait_timeout)" % timeout,
                remote_url, paths, last.get(item["name"]),
            )
        time.sleep(POLL_INTERVAL)


# --- the whole job ------------------------------------------------------------


def endpoints(host, params):
    return {
        kind: {"host": host, "port": port, "address": host_port(host, port)}
        for kind, port in (("proxy", params["port"]), ("push", params["push_port"]))
    }


def validate(params):
    for kind, key in (("proxy", "port"), ("push", "push_port")):
        if not 0 < params[key] < 65536:
            raise ContainersError(
                "%s: %s is not a port; use a number from 1 to 65535." % (PORT_VARS[kind], params[key])
            )
    if params["port"] == params["push_port"]:
        raise ContainersError(
            "buildset_registry_port and buildset_registry_push_port are both %d; "
            "the proxy and push endpoints need two different ports." % params["port"]
        )
    if params["proxy_container"] == params["push_container"]:
        raise ContainersError(
            "buildset_registry_proxy_container and buildset_registry_push_container are both %s; "
            "give the two containers different names." % params["proxy_container"]
        )
    url = params.get("proxy_remote_url") or ""
    if params["state"] == "present" and not re.match(r"^https?://[^/\s?#]+(/\S*)?$", url):
        raise ContainersError(
            "buildset_registry_proxy_remote_url: %r is not an http(s) URL; use for example "
            "https://registry-1.docker.io." % (params.get("proxy_remote_url"),)
        )
    if params["wait_timeout"] <= 0:
        raise ContainersError(
            "buildset_registry_wait_timeout: %s must be a positive number of seconds." % params["wait_timeout"]
        )


def names_of(params):
    return {"proxy": params["proxy_container"], "push": params["push_container"]}


def ports_of(params):
    return {"proxy": params["port"], "push": params["push_port"]}


def absent(client, params, check_mode, result):
    names = names_of(params)
    found = find_containers(client, list(names.values()))
    for kind in KINDS:
        existing = found.get(names[kind])
        action = "removed" if existing else "absent"
        if existing and not check_mode:
            client.remove_container(existing["id"], force=True, v=True)
        result["containers"][kind] = {
            "name": names[kind], "id": existing["id"] if existing else None,
            "action": action, "port": ports_of(params)[kind],
        }
        result["changed"] |= action == "removed"
    return result


def plan_endpoints(params, paths, image_id, found, served, served_digest, on_disk):
    """Decide what to do with each container; pure.

    found: find_containers() output; served: read_served_state() output;
    on_disk: kind -> text of its configuration file now (None if missing).
    Returns kind -> {action, port, name, existing, config, spec, hash,
    stale_config}.
    """
    names, ports = names_of(params), ports_of(params)
    plan = {}
    for kind in KINDS:
        config = render_config(
            kind, ports[kind], params["proxy_remote_url"], params["proxy_username"], params["proxy_password"]
        )
        spec = desired_spec(kind, ports[kind], image_id, config, paths)
        digest = spec_hash(spec) if image_id else None
        existing = found.get(names[kind])
        # A configuration file rewritten under a kept container counts as a
        # served file: the registry read the old one at start.
        stale_config = on_disk.get(kind) != config
        reload_files = bool(existing) and (
            stale_config or files_changed(served, names[kind], existing["id"], served_digest)
        )
        plan[kind] = {
            "action": decide_action(existing, digest, reload_files),
            "name": names[kind], "port": ports[kind], "existing": existing,
            "config": config, "spec": spec, "hash": digest, "stale_config": stale_config,
        }
    return plan


def check_ports(plan):
    for kind, port in ports_to_check(plan):
        free, cause = port_free(port)
        if free is False:
            raise ContainersError(port_in_use_message(kind, port, cause))


def apply_plan(client, plan, image, paths, served, served_digest):
    """Write configuration files, act on Docker; return the wait items."""
    for kind in KINDS:
        if plan[kind]["stale_config"]:
            write_private(config_path(paths, kind), plan[kind]["config"])
    # Remove first: a recreated container may free the other one's port.
    for kind in KINDS:
        if plan[kind]["action"] == "recreated":
            client.remove_container(plan[kind]["existing"]["id"], force=True, v=True)
    waiting = []
    for kind in KINDS:
        item = plan[kind]
        action = item["action"]
        if action in ("created", "recreated"):
            host_config = client.create_host_config(**host_config_args(item["spec"]))
            created = client.create_container(
                host_config=host_config, **create_args(item["spec"], item["name"], image, item["hash"])
            )
            cid = created["Id"]
            client.start(cid)
            restarts = 0
        else:
            cid = item["existing"]["id"]
            if action == "started":
                client.start(cid)
            elif action == "restarted":
                client.restart(cid, timeout=10)
            restarts = None  # read at the first inspection
        item["id"] = cid
        served[item["name"]] = {"id": cid, "files": served_digest}
        waiting.append({"kind": kind, "name": item["name"], "id": cid, "port": item["port"], "restarts": restarts})
    return waiting


def preflight(client, params, check_mode):
    """What must hold before anything changes: the image is here (pulled
    when missing, unless in check mode) and no other program holds a port.

    Returns {"image_id", "pulled", "found"} for present(), so that the
    Docker engine is asked each thing once.
    """
    image_id, pulled = resolve_image(client, params["image"], check_mode)
    found = find_containers(client, list(names_of(params).values()))
    ours = {
        existing["port"] for existing in found.values()
        if existing.get("status") in ("running", "restarting") and existing.get("port")
    }
    for kind, port in sorted(ports_of(params).items()):
        if port in ours:
            continue
        free, cause = port_free(port)
        if free is False:
            raise ContainersError(port_in_use_message(kind, port, cause))
    return {"image_id": image_id, "pulled": pulled, "found": found}


def present(client, params, check_mode, result, pre=None):
    paths = layout(params["root"])

    contents = read_served_files(paths)
    missing = [paths[name] for name in SERVED_FILES if contents[name] is None]
    if missing and not check_mode:
        raise ContainersError(
            "%s %s missing; the role's certificate and htpasswd tasks make them before the containers: "
            "run the whole role, or check buildset_registry_root."
            % (" and ".join(missing), "is" if len(missing) == 1 else "are")
        )
    served_digest = files_digest(contents)

    pre = pre or preflight(client, params, check_mode)
    image_id = result["image_id"] = pre["image_id"]
    pulled = result["image_pulled"] = pre["pulled"]
    found = pre["found"]
    state_path = paths["served_state"]
    served = read_served_state(state_path)
    served_before = dict(served)
    on_disk = {kind: read_text(config_path(paths, kind)) for kind in KINDS}
    plan = plan_endpoints(params, paths, image_id, found, served, served_digest, on_disk)
    check_ports(plan)

    for kind, item in plan.items():
        result["containers"][kind] = {
            "name": item["name"], "id": item["existing"]["id"] if item["existing"] else None,
            "action": item["action"], "port": item["port"],
        }
    result["changed"] |= pulled or any(p["action"] != "unchanged" or p["stale_config"] for p in plan.values())
    if check_mode:
        return result

    waiting = apply_plan(client, plan, params["image"], paths, served, served_digest)
    for kind, item in plan.items():
        result["containers"][kind]["id"] = item["id"]
    if served != served_before:
        write_private(state_path, json.dumps({"containers": served}, indent=2, sort_keys=True) + "\n")

    waited = wait_ready(client, waiting, paths, params["proxy_remote_url"], params["wait_timeout"])
    result["ready_seconds"] = round(waited, 3)
    return result


def ensure(params, check_mode=False, result=None, client=None, pre=None):
    """Bring both containers to params["state"]; return the module result.

    client and pre (a preflight() result) may come from a caller that
    already asked the engine; otherwise ensure() connects itself. Raises
    ContainersError; the result dict passed in is filled as far as the work
    went, for fail_json.
    """
    result = {} if result is None else result
    result.setdefault("changed", False)
    result.setdefault("containers", {})
    validate(params)
    result["endpoints"] = endpoints(params["host"], params)
    own_client = client is None
    client = connect() if own_client else client
    try:
        with docker_errors():
            if params["state"] == "absent":
                return absent(client, params, check_mode, result)
            return present(client, params, check_mode, result, pre)
    finally:
        if own_client:
            client.close()


@contextlib.contextmanager
def docker_errors():
    """Turn the Docker SDK's errors into a ContainersError that says what to do."""
    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise ContainersError(
            "Docker engine at %s failed a request: %s; check the engine (`docker info`) and run again."
            % (docker_url(), e)
        )
