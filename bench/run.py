"""Benchmark run-buildset-registry: the one endpoint behind its front, and
both entry points against Ansible's floor.

    python bench/run.py [--rounds N] [--entry-rounds N] [--slow-rounds N] [--quick] [--only GROUP,...]
                        [--rows KEY,...]   (tox -e bench)

Every row is a measurement and its reference, taken in the same run in
alternated rounds (the order rotates from round to round); the table shows
the median of each, their ratio, the target and whether the run met it.

- front (issue 18), on one role instance with its three containers:
  GET /v2/ rate through the front on `port` (wrk, TLS, keep-alive) with the
  write token (from GET /token with Basic) and with Basic credentials,
  against the same front configuration without its login routes (a
  bench_* caddy:2 container, the role's front.json minus the login);
  a warm pull and a push of a 60 MB image (skopeo, 4 random layers, a new
  image for every push) through `port`, against a registry:2 on a loopback
  TCP port over the same data directory with the same certificate
  ("straight": no front, no login); and a push with ctr (containerd's
  pusher, buildkit's: it HEADs every child manifest by digest before the
  index PUT) of a new two-platform image index with an attestation child
  (tests/integration/indexes.py, 2 layers x 30 MB) through `port`, with the
  login, against the same push to that straight registry.
- apply: cold apply of this role (three containers, until every one
  answers), of the role as it was before the front (commit BEFORE_FRONT,
  two containers, `git archive` into a temporary directory) and of
  floor.sh (the same work as bare commands: key and certificate, hash,
  configuration files, three `docker run`, wait until all answer).
- entry (issue 16): one-`ping` playbook (the floor), the main entry point's
  re-run (include_role with the registry up, changed=0), the `use` entry
  point's first run (files written, dockerd reloaded) and re-run
  (changed=0), and each entry point's shell: a copy of the role whose
  modules only check their options and return (role_shell()), the part of
  a re-run that is Ansible's whatever the modules do. Every file `use`
  touches and dockerd's mirrors are snapshotted before and put back after
  each first run and at the end.
- store: push and pull of the 60 MB image through the push endpoint with
  the data on the filesystem, in a one-node Swift (scripts/object-store)
  through the s3 driver and through the swift driver; informational.

Gone with the front: the bcrypt cost rows (the registries have no login of
their own any more; the front checks a token, or a Basic credential once
thanks to Caddy's hash_cache) and the pull through the proxy endpoint
against the upstream (the proxy has no port of its own; `port` serves
pushed images first, measured by the pull rows).

--rows takes the keys of ROWS' first column (index_front, push_front, ...):
the front group measures only those, the other groups everything, and the
table shows only those.

Prints a markdown table and writes it to bench/results/latest.md. Every
container is named bench_*, every port is in 16000-16099, everything talks
to 127.0.0.1 only; all of it is removed, and the machine's configuration
put back, at the end, on failure too.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROLE_DIR = os.path.dirname(BENCH_DIR)
RESULTS = os.path.join(BENCH_DIR, "results", "latest.md")
BIN = os.path.dirname(sys.executable)

import ansible.module_utils  # noqa: E402

# The role's module_utils, imported as Ansible ships them (as tests/conftest.py does).
ansible.module_utils.__path__.append(os.path.join(ROLE_DIR, "module_utils"))
from ansible.module_utils.buildset_registry.common.layout import CONTAINER_CERTS, layout  # noqa: E402, I001
from ansible.module_utils.buildset_registry.common.options import role_spec, use_spec  # noqa: E402
from ansible.module_utils.buildset_registry.registry import login as login_part  # noqa: E402

# bench/machine.py
from machine import Snapshot, watched_paths  # noqa: E402, I001

# The integration tests' ctr wrapper and OCI index builder (tests/integration/).
sys.path.insert(0, os.path.join(ROLE_DIR, "tests", "integration"))
from clients import Ctr  # noqa: E402, I001
from indexes import PLATFORMS as INDEX_PLATFORMS, make_index  # noqa: E402

IMAGE = os.environ.get("BUILDSET_REGISTRY_IMAGE", "registry:2")
FRONT_IMAGE = os.environ.get("BUILDSET_REGISTRY_FRONT_IMAGE", "caddy:2")
# The role as it was before the front: two containers.
BEFORE_FRONT = "09a38e9"
USERNAME = "zuul"  # the role's default buildset_registry_username
UPSTREAM = {"name": "bench_upstream", "port": 16050}
UPSTREAM_URL = "http://127.0.0.1:%d" % UPSTREAM["port"]
# name prefix -> (port, push_port)
INSTANCES = {
    "bench_role_": (16000, 16001),
    "bench_cold_": (16010, 16011),
    "bench_old_": (16012, 16013),
    "bench_floor_": (16014, 16015),
    "bench_fs_": (16070, 16071),
    "bench_s3_": (16080, 16081),
    "bench_swift_": (16090, 16091),
    "bench_ns5_": (16020, 16021),
    "bench_ns1_": (16022, 16023),
    "bench_nsp_": (16024, 16025),
}
STRAIGHT = {"name": "bench_straight", "port": 16002}
NOLOGIN = {"name": "bench_nologin", "ports": (16003, 16004)}
# The one-node Swift of scripts/object-store: ports STORE_PORT to +5.
STORE_PORT = 16060
LAYERS, LAYER_MB = 4, 15
# The image index pushed with ctr: one layer of INDEX_LAYER_MB per platform
# (indexes.PLATFORMS: linux/amd64 and linux/arm64) and an attestation child.
INDEX_LAYER_MB = 30
CTR_NAMESPACE = "bench_index"
BIG = "bench/big:1"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
WRK = ["-t2", "-c8", "--timeout", "10s"]
NAMESPACES = ["docker.io"]  # what every instance serves unless a row says otherwise
GROUPS = ("entry", "front", "apply", "store", "namespaces")
# The namespaces group: a stand-in upstream (a plain registry:2) on loopback
# for each of the role's five default namespaces, docker.io's being UPSTREAM.
NS_UPSTREAMS = {
    "docker.io": UPSTREAM,
    "quay.io": {"name": "bench_upstream_quay.io", "port": 16031},
    "gcr.io": {"name": "bench_upstream_gcr.io", "port": 16032},
    "registry.k8s.io": {"name": "bench_upstream_registry.k8s.io", "port": 16033},
    "ghcr.io": {"name": "bench_upstream_ghcr.io", "port": 16034},
}
# The fan-out: FANOUT_CLIENTS skopeo pulls at once of one uncached image of
# FANOUT_LAYERS x FANOUT_LAYER_MB through `port` (docker.io's proxy).
FANOUT_CLIENTS, FANOUT_LAYERS, FANOUT_LAYER_MB = 10, 6, 15

# key, label, unit, reference key, target: (">=" or "<=", limit) or None.
ROWS = [
    ("rate_token", "GET /v2/ through the front on `port`, write token", "req/s", "rate_nologin", (">=", 0.9)),
    ("rate_basic", "GET /v2/ through the front on `port`, Basic credentials", "req/s", "rate_nologin", (">=", 0.9)),
    ("pull_front", "Warm pull of {mb} MB through `port`", "s", "pull_straight", ("<=", 1.15)),
    ("push_front", "Push of {mb} MB through `port`", "s", "push_straight", ("<=", 1.15)),
    ("index_front", "ctr push, 2-platform {index_mb} MB index, `port`", "s", "index_straight", ("<=", 1.15)),
    ("cold_three", "Cold apply, three containers (this role)", "s", "cold_two", ("<=", 1.3)),
    ("cold_five", "Cold apply, five namespaces (a stand-in upstream each: 7 containers)", "s", "cold_one", ("<=", 1.3)),
    ("main_rerun", "Main entry point re-run (include_role, registry up, changed=0)", "s", "ping", ("<=", 1.2)),
    ("use_rerun", "`use` re-run (changed=0)", "s", "ping", ("<=", 1.2)),
    ("use_first", "`use` first run (files written, dockerd reloaded)", "s", "ping", ("<=", 1.5)),
    ("main_shell", "The main entry point's shell re-run ({shell})", "s", "ping", None),
    ("main_rerun", "Main entry point re-run", "s", "main_shell", None),
    ("use_shell", "The `use` entry point's shell re-run ({shell})", "s", "ping", None),
    ("use_rerun", "`use` re-run", "s", "use_shell", None),
    ("cold_three", "Main entry point cold apply", "s", "floor", None),
    ("push_s3", "Push of {mb} MB through the push endpoint, s3 driver", "s", "push_fs", None),
    ("push_swift", "Push of {mb} MB through the push endpoint, swift driver", "s", "push_fs", None),
    ("pull_s3", "Pull of {mb} MB through the push endpoint, s3 driver", "s", "pull_fs", None),
    ("pull_swift", "Pull of {mb} MB through the push endpoint, swift driver", "s", "pull_fs", None),
]
REFERENCES = {
    "rate_nologin": "the same front configuration without login",
    "pull_straight": "straight from a registry:2 on the same data, same cert",
    "push_straight": "straight to a registry:2 on the same data, same cert",
    "index_straight": "ctr straight to a registry:2 on the same data, same cert",
    "cold_two": "the role at %s (two containers)" % BEFORE_FRONT,
    "cold_one": "the same with docker.io alone (3 containers)",
    "ping": "one-`ping` playbook",
    "main_shell": "its shell",
    "use_shell": "its shell",
    "floor": "floor.sh: the same work as bare commands",
    "push_fs": "filesystem",
    "pull_fs": "filesystem",
}
GROUP_OF = {
    "rate_token": "front",
    "rate_basic": "front",
    "pull_front": "front",
    "push_front": "front",
    "index_front": "front",
    "cold_three": "apply",
    "main_rerun": "entry",
    "use_rerun": "entry",
    "use_first": "entry",
    "main_shell": "entry",
    "use_shell": "entry",
    "push_s3": "store",
    "push_swift": "store",
    "pull_s3": "store",
    "pull_swift": "store",
    "cold_five": "namespaces",
    "proxy_rss": "namespaces",
    "upstream_bytes": "namespaces",
}
# Rows without a reference, reported in tables of their own after the main one.
REPORTS = {
    "proxy_rss": "each namespace proxy's memory after a pull through it",
    "upstream_bytes": "upstream bytes when %d clients pull one uncached image at once" % FANOUT_CLIENTS,
}


ALL_ROWS = {key for key, *_ in ROWS} | set(REPORTS)


class BenchError(Exception):
    """The benchmark cannot go on, or the role misbehaved; the message says how."""


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise BenchError("%s failed (exit %d):\n%s%s" % (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr))
    return proc


def timed(cmd, **kw):
    start = time.monotonic()
    proc = run(cmd, **kw)
    return time.monotonic() - start, proc


def rotated(items, i):
    """items, rotated by i: each kind goes first in turn."""
    i %= len(items) or 1
    return items[i:] + items[:i]


class Resources:
    """The containers, directories, stores and snapshots this run made; cleanup() undoes them."""

    def __init__(self):
        self.containers = []
        self.dirs = []
        self.stores = []  # (scripts/object-store, its directory), stopped at the end
        self.snapshots = []  # machine.Snapshot, put back at the end
        self.ctrs = []  # clients.Ctr, whose images and namespace are removed at the end

    def container(self, name):
        if name not in self.containers:
            self.containers.append(name)
        return name

    def tempdir(self, prefix):
        path = tempfile.mkdtemp(prefix="bench_%s_" % prefix)
        self.dirs.append(path)
        return path

    def ctr(self, namespace):
        ctr = Ctr(namespace, timeout=300)
        self.ctrs.append(ctr)
        ctr.cleanup()  # what an interrupted run may have left
        return ctr

    def remove_containers(self, *names):
        if names:
            run(["docker", "rm", "-f", *names], check=False)

    def cleanup(self):
        problems = []
        if self.snapshots:
            try:
                # Put back only while no other `use` test runs (it changes the same files).
                wait_for_quiet_use()
            except BenchError as e:
                log("CLEANUP: %s; putting the machine's configuration back anyway" % e)
        for snap in reversed(self.snapshots):
            try:
                snap.restore()
                left = snap.differences()
                if left:
                    problems.append("not as before after restoring: %s" % ", ".join(left))
            except Exception as e:  # keep cleaning up
                problems.append("restoring the machine's configuration failed: %s" % e)
        # The engine is shared: wait out a restart by someone else, then remove.
        for _ in range(60):
            if run(["docker", "info"], check=False).returncode == 0:
                break
            time.sleep(0.5)
        self.remove_containers(*self.containers)
        for ctr in self.ctrs:
            try:
                ctr.cleanup()
            except Exception as e:  # keep cleaning up
                problems.append("removing ctr namespace %s failed: %s" % (ctr.namespace, e))
            if ctr("namespaces", "ls", "-q").stdout.split().count(ctr.namespace):
                problems.append("ctr namespace %s is still there" % ctr.namespace)
        for script, path in self.stores:
            run([script, "stop", path], check=False)
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)
        for problem in problems:
            log("CLEANUP: " + problem)
        return problems


# --- machine and inputs ------------------------------------------------------


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def image_version(image, entrypoint, *args):
    out = run(["docker", "run", "--rm", "--network", "none", "--entrypoint", entrypoint, image, *args], check=False)
    return (out.stdout.strip().split() or ["(version unknown)"])[-1]


def machine_facts():
    engine = run(["docker", "version", "--format", "{{.Server.Version}}"]).stdout.strip()
    ansible = run([os.path.join(BIN, "ansible-playbook"), "--version"]).stdout.splitlines()[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "docker": engine,
        "registry": "%s %s" % (IMAGE, image_version(IMAGE, "/bin/registry", "--version")),
        "caddy": "%s %s" % (FRONT_IMAGE, image_version(FRONT_IMAGE, "caddy", "version")),
        "ansible": "ansible-core " + re.search(r"\[core ([^\]]+)\]", ansible).group(1),
        "python": platform.python_version(),
        "ctr": (run(["ctr", "--version"], check=False).stdout.split() or ["(version unknown)"])[-1],
    }


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def others_running():
    """Containers of other people's tests on the shared engine (it_*, use_*, molecule's)."""
    names = run(["docker", "ps", "--format", "{{.Names}}"], check=False).stdout.split()
    return sorted(n for n in names if not n.startswith("bench_"))


def role_default(name):
    with open(os.path.join(ROLE_DIR, "defaults", "main.yml")) as f:
        return yaml.safe_load(f)[name]


def bench_ports():
    ports = [p for pair in INSTANCES.values() for p in pair]
    ports += [STRAIGHT["port"], *NOLOGIN["ports"], *range(STORE_PORT, STORE_PORT + 6)]
    ports += [upstream["port"] for upstream in NS_UPSTREAMS.values()]
    return sorted(ports)


def listening(port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def preflight():
    run(["docker", "info"])
    # A stand-in upstream left running by an interrupted run is kept (stand-in-upstream).
    upstreams = [upstream["port"] for upstream in NS_UPSTREAMS.values()]
    taken = [port for port in bench_ports() if port not in upstreams and listening(port)]
    if taken:
        raise BenchError("ports %s are taken; the benchmark needs them (16000-16099)" % taken)
    for tool in ("wrk", "skopeo", "openssl", "curl", "ctr"):
        if not shutil.which(tool):
            raise BenchError("%s is not installed; scripts/setup-host installs it" % tool)
    for image, script in ((IMAGE, "provide-registry-image"), (FRONT_IMAGE, "provide-front-image")):
        if run(["docker", "image", "inspect", image], check=False).returncode != 0:
            raise BenchError("image %s is missing; run scripts/%s" % (image, script))


def start_upstream(res, upstream=UPSTREAM):
    res.container(upstream["name"])
    run([os.path.join(ROLE_DIR, "scripts", "stand-in-upstream"), upstream["name"], str(upstream["port"])])


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_image(path, layers=LAYERS, layer_mb=LAYER_MB):
    """A new image of random layers in skopeo's dir: layout. The layers are
    gzip streams of stored blocks (random data does not compress): pushed
    as they are, without compressing on the way."""
    os.makedirs(path)
    diff_ids, descriptors = [], []
    for i in range(layers):
        payload = os.urandom(layer_mb << 20)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("layer%d" % i)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        layer = gzip.compress(raw.getvalue(), compresslevel=0, mtime=0)
        diff_ids.append(sha256(raw.getvalue()))
        descriptors.append({"mediaType": LAYER_TYPE, "size": len(layer), "digest": sha256(layer)})
        with open(os.path.join(path, sha256(layer)[7:]), "wb") as f:
            f.write(layer)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True
    ).encode()
    with open(os.path.join(path, sha256(config)[7:]), "wb") as f:
        f.write(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": sha256(config)},
        "layers": descriptors,
    }  # fmt: skip
    with open(os.path.join(path, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    with open(os.path.join(path, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
    return path


# --- ansible-playbook ------------------------------------------------------------


def ansible_playbook(playbook, args, marks, cwd, env=None):
    """Run a playbook on localhost; return (seconds, CompletedProcess)."""
    env = {
        **(os.environ if env is None else env),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(BENCH_DIR, "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_task_times",
        "BENCH_TASK_TIMES": marks,
    }
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", *args, playbook]
    return timed(cmd, env=env, check=False, cwd=cwd)


def parse_recap(output):
    """The PLAY RECAP counters of localhost: {"ok": n, "changed": n, ...}."""
    match = re.search(r"^localhost\s*:\s*(.*)$", output.split("PLAY RECAP")[-1], re.M)
    if not match:
        raise BenchError("no PLAY RECAP line for localhost in:\n" + output)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def task_durations(marks_path, started, ended):
    """[(task, seconds)]: start-up, each task until the next one, wind-down."""
    with open(marks_path) as f:
        marks = [json.loads(line) for line in f]
    out = [("(ansible-playbook start-up, until the first task)", marks[0]["t"] - started)]
    for here, after in zip(marks, marks[1:]):
        # "/work/main : Make the ..." -> "Make the ..."
        out.append((re.sub(r"^.* : ", "", here["task"]), after["t"] - here["t"]))
    out.append(("(recap and exit)", ended - marks[-1]["t"]))
    return out


class Playbook:
    """One playbook of bench/ (or another role's), run again and again."""

    def __init__(self, res, name, path, args=(), changed=None):
        self.dir = res.tempdir(name)
        self.path = path
        self.args = list(args)
        self.changed = changed  # what PLAY RECAP must say, None: anything
        self.runs = 0

    def run(self, what):
        """(seconds, task durations); fails when the playbook fails or changes other than expected."""
        self.runs += 1
        marks = os.path.join(self.dir, "marks-%d.jsonl" % self.runs)
        started = time.time()
        seconds, proc = ansible_playbook(self.path, self.args, marks, self.dir)
        if proc.returncode != 0:
            raise BenchError("%s failed (exit %d):\n%s%s" % (what, proc.returncode, proc.stdout, proc.stderr))
        recap = parse_recap(proc.stdout)
        if self.changed is not None and recap.get("changed") != self.changed:
            raise BenchError("%s: PLAY RECAP says changed=%s, want %d (%s)" % (what, recap.get("changed"),
                                                                                self.changed, recap))  # fmt: skip
        return seconds, task_durations(marks, started, started + seconds)


# --- the role ------------------------------------------------------------------


class RoleInstance:
    """One application of a role (this one, or ROLE at another commit): its
    variables, root and containers."""

    def __init__(self, res, prefix, extra_vars=None, role_dir=ROLE_DIR, front=True):
        self.res = res
        self.prefix = prefix
        self.dir = res.tempdir(prefix[len("bench_") :].strip("_"))
        self.root = os.path.join(self.dir, "root")
        self.port, self.push_port = INSTANCES[prefix]
        kinds = ("proxy", "push", "front") if front else ("proxy", "push")
        self.vars = {
            "buildset_registry_root": self.root,
            "buildset_registry_host": "127.0.0.1",
            "buildset_registry_port": self.port,
            "buildset_registry_push_port": self.push_port,
            "buildset_registry_proxy_remote_url": UPSTREAM_URL,
            # docker.io alone (cached from the stand-in) unless a row says
            # otherwise: the default's public names are not to be looked up
            # from here (no internet; its resolver is off limits).
            "buildset_registry_namespaces": NAMESPACES,
            **{"buildset_registry_%s_container" % kind: prefix + kind for kind in kinds},
            **(extra_vars or {}),
        }
        # One proxy per namespace with a URL, docker.io's under the plain
        # name: every one of them is removed.
        proxies = {ns: prefix + "proxy" + proxy_suffix(ns) for ns in cached_namespaces(self.vars)} if front else {}
        self.proxies = proxies or {"docker.io": prefix + "proxy"}
        self.names = [res.container(name) for name in [*self.proxies.values(), prefix + "push", prefix + "front"]]
        if not front:
            self.names.pop()
        varfile = os.path.join(self.dir, "vars.json")
        with open(varfile, "w") as f:
            json.dump(self.vars, f)
        apply = os.path.join(role_dir, "bench", "apply.yml")
        self.playbook = Playbook(res, prefix + "apply", apply, ["-e", "@" + varfile])
        self.paths = layout(self.root)
        self.res.remove_containers(*self.names)

    def apply(self, what="applying the role"):
        """(seconds, task durations) of one ansible-playbook run of the role."""
        return self.playbook.run(what)

    def password(self):
        with open(self.paths["password"]) as f:
            return f.read().strip()

    def login(self):
        return "%s:%s" % (USERNAME, self.password())

    def basic_auth(self):
        return "Basic " + base64.b64encode(self.login().encode()).decode()

    def cert_dir(self):
        """A directory holding only the CA (the cert), as skopeo's --*-cert-dir wants."""
        path = os.path.join(self.dir, "ca")
        os.makedirs(path, exist_ok=True)
        shutil.copy(self.paths["cert"], os.path.join(path, "ca.crt"))
        return path

    def remove(self):
        self.res.remove_containers(*self.names)
        shutil.rmtree(self.root, ignore_errors=True)


def proxy_suffix(namespace):
    """What the role adds to buildset_registry_proxy_container for a
    namespace's proxy: nothing for docker.io, "-" and the host otherwise."""
    return "" if namespace == "docker.io" else "-" + namespace.replace(":", "_")


def cached_namespaces(variables):
    """The namespaces with an upstream URL in variables (or the role's
    default), docker.io first: it always has one here, the bench setting
    buildset_registry_proxy_remote_url."""
    value = variables.get("buildset_registry_namespaces", role_default("buildset_registry_namespaces"))
    names = [item[0] if isinstance(item, list) else item["name"] for item in value
             if not isinstance(item, str) and (item[1] if isinstance(item, list) else item.get("url"))]  # fmt: skip
    return list(dict.fromkeys(["docker.io", *names]))


def wait_for(url, want, *curl_args):
    code = None
    for _ in range(500):
        code = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *curl_args, url], check=False).stdout
        if code == str(want):
            return
        time.sleep(0.02)
    raise BenchError("%s did not answer %s (last: %s)" % (url, want, code))


# --- skopeo ---------------------------------------------------------------------------


def skopeo_copy(src, dest, src_args=(), dest_args=()):
    seconds, _ = timed(["skopeo", "--insecure-policy", "copy", "--quiet", *src_args, src, *dest_args, dest])
    return seconds


def skopeo_pull(res, address, ref, creds=None, cert_dir=None):
    """Seconds for skopeo to copy address/ref to a fresh dir:, checked for size."""
    dest = os.path.join(res.tempdir("pull"), "image")
    args = (["--src-creds", creds] if creds else []) + ["--src-cert-dir", cert_dir]
    seconds = skopeo_copy("docker://%s/%s" % (address, ref), "dir:" + dest, src_args=args)
    size = sum(os.path.getsize(os.path.join(dest, n)) for n in os.listdir(dest))
    if size < LAYERS * LAYER_MB << 20:
        raise BenchError("pull from %s gave only %d bytes" % (address, size))
    shutil.rmtree(os.path.dirname(dest))
    return seconds


def skopeo_push(source, address, ref, creds=None, cert_dir=None):
    args = (["--dest-creds", creds] if creds else []) + ["--dest-cert-dir", cert_dir]
    return skopeo_copy("dir:" + source, "docker://%s/%s" % (address, ref), dest_args=args)


# --- front: request rate, pull, push ---------------------------------------------------


def nologin_config(instance):
    """The role's front.json with the login routes taken out, on NOLOGIN's ports."""
    with open(instance.paths["front_config"]) as f:
        config = json.load(f)
    with open(instance.paths["htpasswd"]) as f:
        hashed = f.read().strip().split(":", 1)[1]
    tokens = login_part.derive_tokens(USERNAME, instance.password())
    # What front_config() puts first on both servers (private: the bench needs the very routes).
    login = login_part.login_routes(USERNAME, hashed, tokens, False, login_part.SERVICE)
    servers = config["apps"]["http"]["servers"]
    for (name, server), port in zip(sorted(servers.items()), NOLOGIN["ports"]):
        if server["routes"][: len(login)] != login:
            raise BenchError("the %s server of %s does not start with the login routes" % (name, instance.root))
        server["routes"] = server["routes"][len(login) :]
        server["listen"] = [":%d" % port]
    return config


def start_nologin(res, instance):
    """A bench_* caddy:2 with the role's front configuration minus the login."""
    name = res.container(NOLOGIN["name"])
    res.remove_containers(name)
    path = os.path.join(res.tempdir("nologin"), "caddy.json")
    with open(path, "w") as f:
        json.dump(nologin_config(instance), f)
    run(["docker", "run", "-d", "--name", name, "--network", "host",
         "-v", "%s:%s:ro" % (instance.paths["certs_dir"], CONTAINER_CERTS), "-v", "%s:/etc/caddy/caddy.json:ro" % path,
         "--entrypoint", "caddy", FRONT_IMAGE, "run", "--config", "/etc/caddy/caddy.json"])  # fmt: skip
    wait_for("https://127.0.0.1:%d/v2/" % NOLOGIN["ports"][0], 200, "--cacert", instance.paths["cert"])


def start_straight(res, instance):
    """A bench_* registry:2 on a loopback TCP port over the instance's push
    data, with the same certificate, no login, no front."""
    name = res.container(STRAIGHT["name"])
    res.remove_containers(name)
    run(["docker", "run", "-d", "--name", name, "--network", "host",
         "-v", "%s:/certs:ro" % instance.paths["certs_dir"], "-v", "%s:/var/lib/registry" % instance.paths["data_dir"],
         "-e", "REGISTRY_HTTP_ADDR=127.0.0.1:%d" % STRAIGHT["port"],
         "-e", "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt", "-e", "REGISTRY_HTTP_TLS_KEY=/certs/domain.key",
         "-e", "REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR=inmemory", IMAGE])  # fmt: skip
    wait_for("https://127.0.0.1:%d/v2/" % STRAIGHT["port"], 200, "--cacert", instance.paths["cert"])


def write_token(instance):
    """The write token, from GET /token with Basic credentials."""
    out = run(["curl", "-sf", "--cacert", instance.paths["cert"], "-u", instance.login(),
               "https://127.0.0.1:%d/token" % instance.port]).stdout  # fmt: skip
    return json.loads(out)["token"]


def wrk_rate(url, duration, auth=None):
    """Requests per second of GET url; fails when any answer was not 2xx."""
    cmd = ["wrk", *WRK, "-d", "%ds" % duration]
    if auth:
        cmd += ["-H", "Authorization: " + auth]
    out = run(cmd + [url]).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise BenchError("wrk on %s got %s non-2xx answers (auth %s):\n%s" % (url, bad.group(1), bool(auth), out))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def ctr_hosts(res, cert, *addresses):
    """A hosts directory of the bench's own naming https and the cert for
    each address: ctr speaks plain HTTP to 127.0.0.1 without one."""
    path = res.tempdir("ctr_hosts")
    for address in addresses:
        os.makedirs(os.path.join(path, address))
        with open(os.path.join(path, address, "hosts.toml"), "w") as f:
            f.write('server = "https://%s"\n\n[host."https://%s"]\n  capabilities = ["pull", "resolve", "push"]\n'
                    '  ca = "%s"\n' % (address, address, cert))  # fmt: skip
    return path


def ctr_push_index(res, ctr, hosts, address, ref, login, check):
    """Seconds of `ctr image push` of a new two-platform index with an
    attestation child (new digests: every blob and manifest is uploaded),
    imported first; checked at check (a registry:2 on the same data) by
    the index's digest, and removed from ctr afterwards."""
    work = res.tempdir("index")
    index = make_index(Path(work) / "index", "bench %s %s" % (address, ref), size=INDEX_LAYER_MB << 20)
    full = "%s/%s" % (address, ref)
    imported = ctr("image", "import", "--all-platforms", str(index.archive(full)))
    if imported.returncode != 0:
        raise BenchError("ctr image import of %s failed:\n%s" % (full, imported.output))
    start = time.monotonic()
    pushed = ctr("image", "push", "--hosts-dir", hosts, *(["-u", login] if login else []), full)
    seconds = time.monotonic() - start
    if pushed.returncode != 0:
        raise BenchError("ctr image push of %s failed:\n%s" % (full, pushed.output))
    name = ref.rsplit(":", 1)[0]
    for child in (index, *index.children):
        code = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-I", "--cacert", check[1],
                    "-H", "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
                    "https://%s/v2/%s/manifests/%s" % (check[0], name, child.digest)]).stdout  # fmt: skip
        if code != "200":
            raise BenchError("%s was pushed, but %s answers %s for its manifest %s" % (full, check[0], code,
                                                                                      child.digest))  # fmt: skip
    ctr.cleanup()
    shutil.rmtree(work)
    return seconds


def measure_front(res, role, args, samples):
    wanted = set(args.rows)
    log("front: rows %s" % ", ".join(key for key, *_ in ROWS if GROUP_OF.get(key) == "front" and key in wanted))
    rates = {}
    if wanted & {"rate_token", "rate_basic"}:
        start_nologin(res, role)
    start_straight(res, role)
    cert_dir, login = role.cert_dir(), role.login()
    endpoint, straight = "127.0.0.1:%d" % role.port, "127.0.0.1:%d" % STRAIGHT["port"]
    if "pull_front" in wanted:
        skopeo_push(make_image(os.path.join(res.tempdir("big"), "image")), endpoint, BIG, login, cert_dir)
    if wanted & {"rate_token", "rate_basic"}:
        token = write_token(role)
        rates = {
            "rate_token": ("https://%s/v2/" % endpoint, "Bearer " + token),
            "rate_basic": ("https://%s/v2/" % endpoint, role.basic_auth()),
            "rate_nologin": ("https://127.0.0.1:%d/v2/" % NOLOGIN["ports"][0], None),
        }
        rates = {key: rate for key, rate in rates.items() if key in wanted or key == "rate_nologin"}
    if "index_front" in wanted:
        ctr = res.ctr(CTR_NAMESPACE)
        hosts = ctr_hosts(res, role.paths["cert"], endpoint, straight)
        check = (straight, role.paths["cert"])
    for i in range(args.rounds):
        log("front round %d/%d" % (i + 1, args.rounds))
        for key in rotated(list(rates), i):
            url, auth = rates[key]
            samples[key].append(wrk_rate(url, args.duration, auth))
        if "pull_front" in wanted:
            for key in rotated(["pull_front", "pull_straight"], i):
                if key == "pull_front":
                    samples[key].append(skopeo_pull(res, endpoint, BIG, login, cert_dir))
                else:
                    samples[key].append(skopeo_pull(res, straight, BIG, None, cert_dir))
        if "push_front" in wanted:
            for key in rotated(["push_front", "push_straight"], i):
                # A new image for every push: skopeo would mount blobs it pushed before.
                source = make_image(os.path.join(res.tempdir("push"), "image"))
                if key == "push_front":
                    samples[key].append(skopeo_push(source, endpoint, "bench/push-%d:1" % i, login, cert_dir))
                else:
                    samples[key].append(skopeo_push(source, straight, "bench/push-straight-%d:1" % i, None, cert_dir))
                shutil.rmtree(os.path.dirname(source))
        if "index_front" in wanted:
            for key in rotated(["index_front", "index_straight"], i):
                if key == "index_front":
                    seconds = ctr_push_index(res, ctr, hosts, endpoint, "bench/index-%d:1" % i, login, check)
                else:
                    seconds = ctr_push_index(res, ctr, hosts, straight, "bench/index-straight-%d:1" % i, None, check)
                samples[key].append(seconds)
    res.remove_containers(NOLOGIN["name"], STRAIGHT["name"])


# --- cold applies ------------------------------------------------------------------------


def old_role(res, rev=BEFORE_FRONT):
    """The role at commit rev, from git archive."""
    path = os.path.join(res.tempdir("role_%s" % rev), "role")
    os.makedirs(path)
    archive = subprocess.run(["git", "-C", ROLE_DIR, "archive", rev], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(path)
    return path


def run_floor(res, cost):
    prefix = "bench_floor_"
    names = [res.container(prefix + kind) for kind in ("push", "proxy", "front")]
    res.remove_containers(*names)
    work = res.tempdir("floor")
    port, push_port = INSTANCES[prefix]
    cmd = ["bash", os.path.join(BENCH_DIR, "floor.sh"), os.path.join(work, "root"), IMAGE, FRONT_IMAGE, str(port),
           str(push_port), UPSTREAM_URL, str(cost), sys.executable, prefix]  # fmt: skip
    seconds, _ = timed(cmd)
    res.remove_containers(*names)
    shutil.rmtree(work, ignore_errors=True)
    return seconds


def measure_cold(res, args, samples, tasks):
    cost = int(role_default("buildset_registry_bcrypt_cost"))
    before = old_role(res)
    rounds = args.slow_rounds
    for i in range(rounds):
        log("apply round %d/%d: cold apply of this role, of the role at %s, floor.sh" % (i + 1, rounds, BEFORE_FRONT))
        for key in rotated(["cold_three", "cold_two", "floor"], i):
            if key == "floor":
                samples[key].append(run_floor(res, cost))
                continue
            if key == "cold_three":
                instance = RoleInstance(res, "bench_cold_")
            else:
                instance = RoleInstance(res, "bench_old_", role_dir=before, front=False)
            instance.playbook.changed = 1
            seconds, durations = instance.apply("cold apply (%s)" % key)
            samples[key].append(seconds)
            if key == "cold_three":
                add_tasks(tasks, "main entry point, cold apply", durations)
            instance.remove()


# --- namespaces: cold apply with five, proxy memory, upstream bytes of a fan-out ------------------


def namespace_pairs(names):
    """buildset_registry_namespaces for names: [host, url] of each one's stand-in upstream."""
    return [[name, "http://127.0.0.1:%d" % NS_UPSTREAMS[name]["port"]] for name in names]


def container_pid(name):
    return int(run(["docker", "inspect", "-f", "{{.State.Pid}}", name]).stdout.strip())


def memory(name):
    """(VmRSS, VmHWM) in MiB of a container's first process (the registry: its image has no shell)."""
    with open("/proc/%d/status" % container_pid(name)) as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return tuple(int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))


def image_bytes(path):
    """Bytes of an image in skopeo's dir: layout: its blobs and its manifest."""
    return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path) if n != "version")


def upstream_reads(name, repo):
    """[(method, kind, digest or tag, status, bytes)] of every read of repo in
    container name's access log (distribution's combined log lines)."""
    logs = run(["docker", "logs", name], check=False)
    line = re.compile(r'"(GET|HEAD) /v2/%s/(blobs|manifests)/([^ ?"]+)\S* HTTP/[\d.]+" (\d{3}) (\d+)' % re.escape(repo))
    return [(m[0], m[1], m[2], int(m[3]), int(m[4])) for m in line.findall(logs.stdout + logs.stderr)]


def measure_namespace_rss(res, instance, extra):
    """Pull a new image through each namespace's proxy (the same image,
    pushed to every stand-in); the proxies' memory before and after."""
    source = make_image(os.path.join(res.tempdir("rss"), "image"))
    ref = "bench/rss-%d:1" % os.getpid()
    for name in instance.proxies:
        upstream = "127.0.0.1:%d" % NS_UPSTREAMS[name]["port"]
        skopeo_copy("dir:" + source, "docker://%s/%s" % (upstream, ref), dest_args=["--dest-tls-verify=false"])
    endpoint, login, cert_dir = "127.0.0.1:%d" % instance.port, instance.login(), instance.cert_dir()
    rows = []
    for name, container in instance.proxies.items():
        idle = memory(container)
        seconds = skopeo_pull(res, endpoint, ref if name == "docker.io" else "%s/%s" % (name, ref), login, cert_dir)
        after = memory(container)
        rows.append((name, container, idle, after, seconds))
    shutil.rmtree(os.path.dirname(source))
    extra += [
        "",
        "Each namespace proxy's memory (the registry process's VmRSS, and VmHWM its peak, /proc/PID/status), "
        "before and after a pull through `port` of a new %d MB image (%d layers, skopeo to dir:) that only its "
        "stand-in upstream has:" % (LAYERS * LAYER_MB, LAYERS),
        "",
        "| namespace | container | RSS before | RSS after the pull | peak RSS | pull |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    extra += ["| %s | %s | %.1f MiB | %.1f MiB | %.1f MiB | %.2f s |" % (name, container, idle[0], after[0], after[1],
                                                                        seconds)
              for name, container, idle, after, seconds in rows]  # fmt: skip


def fanout(res, instance, repo, clients):
    """clients skopeo pulls at once through `port` of a new image that only
    docker.io's stand-in has, at repo: (upstream bytes / image bytes,
    seconds, image bytes, per-blob GET counts upstream)."""
    source = make_image(os.path.join(res.tempdir("fanout"), "image"), FANOUT_LAYERS, FANOUT_LAYER_MB)
    skopeo_copy("dir:" + source, "docker://%s/%s:1" % ("127.0.0.1:%d" % UPSTREAM["port"], repo),
                dest_args=["--dest-tls-verify=false"])  # fmt: skip
    size = image_bytes(source)
    shutil.rmtree(os.path.dirname(source))
    # Whatever the push itself read back (nothing, with skopeo 1.9).
    before = sum(read[4] for read in upstream_reads(UPSTREAM["name"], repo) if read[0] == "GET")
    work = res.tempdir("fanout_pulls")
    args = ["--src-creds", instance.login(), "--src-cert-dir", instance.cert_dir()]
    cmds = [["skopeo", "--insecure-policy", "copy", "--quiet", *args, "docker://127.0.0.1:%d/%s:1" % (instance.port,
             repo), "dir:" + os.path.join(work, str(n))] for n in range(clients)]  # fmt: skip
    start = time.monotonic()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for cmd in cmds]
    try:
        outs = [proc.communicate(timeout=300)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    seconds = time.monotonic() - start
    failed = []
    for n, (proc, out) in enumerate(zip(procs, outs)):
        got = image_bytes(os.path.join(work, str(n))) if proc.returncode == 0 else 0
        if proc.returncode != 0 or got < size:
            failed.append("client %d: exit %d, %d of %d bytes: %s" % (n, proc.returncode, got, size, out.strip()))
    shutil.rmtree(work)
    time.sleep(1)  # the stand-in logs a read when it has written it
    if failed:
        # What the front's docker.io proxy and the stand-in said of the digests the clients missed.
        digests = set(re.findall(r"sha256:[0-9a-f]{64}", " ".join(failed)))
        for container in (instance.proxies["docker.io"], UPSTREAM["name"]):
            logs = run(["docker", "logs", container], check=False)
            lines = [line for line in (logs.stdout + logs.stderr).splitlines()
                     if repo in line and any(d in line for d in digests)]  # fmt: skip
            failed.append("%s's log lines of %s and %s:\n  %s" % (container, repo, ", ".join(sorted(digests)),
                                                                   "\n  ".join(lines)))  # fmt: skip
    reads = upstream_reads(UPSTREAM["name"], repo)
    fetched = sum(read[4] for read in reads if read[0] == "GET") - before
    blobs = {}
    for method, kind, ref, status, _written in reads:
        if method == "GET" and kind == "blobs" and status == 200:
            blobs[ref] = blobs.get(ref, 0) + 1
    return fetched / size, seconds, size, sorted(blobs.values()), failed


def measure_namespaces(res, args, samples, extra, notes):
    wanted = set(args.rows)
    log("namespaces: rows %s" % ", ".join(key for key in sorted(wanted) if GROUP_OF.get(key) == "namespaces"))
    for upstream in NS_UPSTREAMS.values():
        if upstream is not UPSTREAM:
            start_upstream(res, upstream)
    five, one = namespace_pairs(NS_UPSTREAMS), namespace_pairs(["docker.io"])
    if "cold_five" in wanted:
        for i in range(args.slow_rounds):
            log("namespaces round %d/%d: cold apply with five namespaces and with docker.io alone" %
                (i + 1, args.slow_rounds))  # fmt: skip
            for key in rotated(["cold_five", "cold_one"], i):
                prefix, pairs = ("bench_ns5_", five) if key == "cold_five" else ("bench_ns1_", one)
                instance = RoleInstance(res, prefix, {"buildset_registry_namespaces": pairs})
                instance.playbook.changed = 1
                samples[key].append(instance.apply("cold apply (%s)" % key)[0])
                instance.remove()
    if not wanted & {"proxy_rss", "upstream_bytes"}:
        return
    instance = RoleInstance(res, "bench_nsp_", {"buildset_registry_namespaces": five})
    instance.apply()
    if "proxy_rss" in wanted:
        log("namespaces: a pull through each proxy, and its memory")
        measure_namespace_rss(res, instance, extra)
    if "upstream_bytes" in wanted:
        # One client alone, alternated with the fan-out: what a single pull fetches.
        rounds = []
        for i in range(args.fanout_rounds):
            log("namespaces: fan-out round %d/%d, %d clients and 1" % (i + 1, args.fanout_rounds, FANOUT_CLIENTS))
            for clients in rotated([FANOUT_CLIENTS, 1], i):
                repo = "bench/fanout-%d-%d-%d" % (os.getpid(), i, clients)
                rounds.append((i, clients, *fanout(res, instance, repo, clients)))
        rounds.sort(key=lambda r: (r[0], -r[1]))
        samples["upstream_bytes"] = [multiple for _, clients, multiple, *_ in rounds if clients == FANOUT_CLIENTS]
        alone = statistics.median(multiple for _, clients, multiple, *_ in rounds if clients == 1)
        mb = FANOUT_LAYERS * FANOUT_LAYER_MB
        extra += [
            "",
            "Upstream bytes when %d clients (skopeo copy to dir:, with the login) pull one uncached %d MB image "
            "(%d layers, a new one each round) at once through `port` from docker.io's proxy: the bytes of every "
            "GET of its manifest and blobs in the stand-in upstream's access log, as a multiple of the image's "
            "bytes (its blobs and manifest): median %.2fx over %d rounds; one client alone (a new image too, "
            "alternated): median %.2fx:"
            % (FANOUT_CLIENTS, mb, FANOUT_LAYERS, statistics.median(samples["upstream_bytes"]), args.fanout_rounds,
               alone),
            "",
            "| round | clients | image | upstream bytes | multiple | GETs of each blob upstream | the pulls took "
            "| clients that failed |",
            "| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
        ]  # fmt: skip
        extra += ["| %d | %d | %.1f MB | %.1f MB | %.2fx | %s | %.1f s | %s |" % (i + 1, clients, size / 1e6,
                  multiple * size / 1e6, multiple, ", ".join(map(str, counts)), seconds,
                  sum(1 for f in failed if f.startswith("client ")) or "none")
                  for i, clients, multiple, seconds, size, counts, failed in rounds]  # fmt: skip
        for i, clients, *_, failed in rounds:
            if failed:
                # The role misbehaved: say so, with what the clients got, and fail the run.
                log("FAN-OUT round %d, %d clients: %s" % (i + 1, clients, "\n".join(failed)))
                notes.append("fan-out round %d (%d clients): %d client(s) failed; the log shows what they got" %
                             (i + 1, clients, sum(1 for f in failed if f.startswith("client "))))  # fmt: skip
    instance.remove()


# --- the entry points against the floor ----------------------------------------------------


SHELL = "the role with modules that only check their options and return"
SHELL_MODULE = """#!/usr/bin/python
# The shell of the role's module for bench/run.py: checks its options as
# the module does, then returns what a re-run returns, without doing anything.
from ansible.module_utils.basic import AnsibleModule

SPEC = %r
FACTS = %r


def main():
    module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts=FACTS)


main()
"""


def role_shell(res, fact):
    """A copy of the role whose modules do nothing: what every re-run of
    the entry points costs in Ansible (include_role, the argument spec
    check, the module task with its arguments, the skipped Zuul include)
    whatever the modules do. Its playbooks are bench/'s, in its bench/."""
    shell = res.tempdir("shell")
    for part in ("tasks", "meta", "defaults"):
        shutil.copytree(os.path.join(ROLE_DIR, part), os.path.join(shell, part))
    os.makedirs(os.path.join(shell, "bench"))
    for playbook in ("apply.yml", "use.yml"):
        shutil.copy(os.path.join(BENCH_DIR, playbook), os.path.join(shell, "bench", playbook))
    os.makedirs(os.path.join(shell, "library"))
    modules = {
        "buildset_registry": (role_spec(), {"buildset_registry": fact}),
        "buildset_registry_use": (use_spec(), {}),
    }
    for name, (spec, facts) in modules.items():
        with open(os.path.join(shell, "library", name + ".py"), "w") as f:
            f.write(SHELL_MODULE % (spec, facts))
    return shell


def use_busy():
    """Containers of another person's `use` tests: they change the same files."""
    return [n for n in others_running() if n.startswith("use_")]


def wait_for_quiet_use(timeout=600):
    """Wait until no other `use` test runs; fail when one keeps running."""
    deadline = time.monotonic() + timeout
    while True:
        busy = use_busy()
        if not busy:
            return
        if time.monotonic() > deadline:
            raise BenchError("another person's `use` tests kept running for %d s (%s); run the benchmark when "
                             "they are done: both change /etc/docker/daemon.json and the same files" %
                             (timeout, ", ".join(busy)))  # fmt: skip
        time.sleep(2)


def measure_entry(res, role, args, samples, tasks, notes):
    work = res.tempdir("entry")
    facts_file = os.path.join(work, "facts.json")
    facts = Playbook(res, "facts", os.path.join(BENCH_DIR, "facts.yml"), [*role.playbook.args, "-e",
                     "bench_facts_file=" + facts_file])  # fmt: skip
    facts.run("writing the fact buildset_registry")
    with open(facts_file) as f:
        fact = json.load(f)["buildset_registry"]
    use = os.path.join(BENCH_DIR, "use.yml")
    shell = role_shell(res, fact)
    plays = {
        "main_shell": Playbook(
            res, "main_shell", os.path.join(shell, "bench", "apply.yml"), role.playbook.args, changed=0
        ),
        "use_shell": Playbook(
            res, "use_shell", os.path.join(shell, "bench", "use.yml"), ["-e", "@" + facts_file], changed=0
        ),
        "ping": Playbook(res, "ping", os.path.join(BENCH_DIR, "reference.yml"), ["--tags", "ping"]),
        "main_rerun": Playbook(res, "main_rerun", role.playbook.path, role.playbook.args, changed=0),
        "use_first": Playbook(res, "use_first", use, ["-e", "@" + facts_file], changed=1),
        "use_rerun": Playbook(res, "use_rerun", use, ["-e", "@" + facts_file], changed=0),
    }
    labels = {"ping": "one `ping`", "main_rerun": "main entry point, re-run", "main_shell": "main entry point's shell",
              "use_first": "`use`, first run", "use_rerun": "`use`, re-run", "use_shell": "`use`'s shell"}  # fmt: skip
    # The snapshot is taken, and every `use` round run, while no other `use`
    # test runs: a round another one overlapped is measured again.
    wait_for_quiet_use()
    snap = Snapshot(watched_paths(fact, NAMESPACES, os.path.expanduser("~")))
    res.snapshots.append(snap)
    log("entry: snapshot of %d paths and dockerd's mirrors %s" % (len(snap.saved), snap.mirrors))
    retried = 0
    for i in range(args.entry_rounds):
        log("entry round %d/%d: ping, each entry point and its shell" % (i + 1, args.entry_rounds))
        for unit in rotated([["ping"], ["main_rerun"], ["main_shell"], ["use_first", "use_rerun"], ["use_shell"]], i):
            if unit[0] != "use_first":
                seconds, durations = plays[unit[0]].run(unit[0])
                samples[unit[0]].append(seconds)
                add_tasks(tasks, labels[unit[0]], durations)
                continue
            for _attempt in range(4):
                wait_for_quiet_use()
                snap.restore()  # a first run: nothing of ours on the machine
                left = snap.differences()
                if left:
                    raise BenchError("the machine's configuration could not be put back: %s" % ", ".join(left))
                try:
                    measured = [(key,) + plays[key].run(key) for key in unit]
                except BenchError:
                    if not use_busy():
                        raise
                    measured = None
                if measured and not use_busy():
                    break
                retried += 1
                log("entry: another `use` test ran meanwhile; this round's `use` runs are measured again")
            else:
                raise BenchError("another person's `use` tests overlapped the `use` runs 4 times in a row")
            for key, seconds, durations in measured:
                samples[key].append(seconds)
                add_tasks(tasks, labels[key], durations)
    wait_for_quiet_use()
    snap.restore()
    if retried:
        notes.append("%d `use` round(s) measured again: another person's `use` test overlapped them" % retried)


# --- object storage --------------------------------------------------------------------------


def measure_object_storage(res, args, samples):
    """Push and pull the test image through the push endpoint of three role
    instances: data on the filesystem, in the store via s3, via swift."""
    log("store: a one-node Swift and three role instances")
    store_dir = res.tempdir("store")
    script = os.path.join(ROLE_DIR, "scripts", "object-store")
    res.stores.append((script, store_dir))
    url = run([script, "start", store_dir, str(STORE_PORT)]).stdout.strip().splitlines()[-1]
    run([script, "bucket", store_dir, "bench"])
    creds = {"test:tester": "testing"}  # the store's tempauth user (scripts/object-store)
    ((user, key),) = creds.items()
    stores = {
        "s3": {"s3": {"regionendpoint": url, "bucket": "bench", "accesskey": user, "secretkey": key,
                      "region": "us-east-1", "secure": False, "rootdirectory": "/bench"}},
        "swift": {"swift": {"authurl": url + "/auth/v1.0", "username": user, "password": key,
                            "container": "bench-swift", "prefix": "/bench"}},
    }  # fmt: skip
    instances = {"fs": RoleInstance(res, "bench_fs_")}
    for kind, store in stores.items():
        instances[kind] = RoleInstance(res, "bench_%s_" % kind, {"buildset_registry_object_storage": store})
    for instance in instances.values():
        instance.apply()
    for i in range(args.slow_rounds):
        log("store round %d/%d: push and pull (filesystem, s3, swift)" % (i + 1, args.slow_rounds))
        # A new image each round: skopeo would mount blobs it pushed before
        # from another repository of the same registry instead of uploading.
        source = make_image(os.path.join(res.tempdir("source"), "image"))
        for kind in rotated(list(instances), i):
            instance = instances[kind]
            address = "127.0.0.1:%d" % instance.push_port
            ref = "bench/store-%d:1" % i
            samples["push_" + kind].append(skopeo_push(source, address, ref, instance.login(), instance.cert_dir()))
            samples["pull_" + kind].append(skopeo_pull(res, address, ref, instance.login(), instance.cert_dir()))
        shutil.rmtree(os.path.dirname(source))
    for instance in instances.values():
        instance.remove()


# --- report ------------------------------------------------------------------------------------


def fmt(value, unit):
    return ("%.0f" % value) if unit == "req/s" else ("%.2f" % value)


def add_tasks(tasks, run_label, durations):
    table = tasks.setdefault(run_label, {})
    for name, seconds in durations:
        table.setdefault(name, []).append(seconds)


def render(facts, samples, tasks, args, command, started, load, notes, extra=()):
    med = {k: statistics.median(v) for k, v in samples.items() if v}
    mb = LAYERS * LAYER_MB
    index_mb = len(INDEX_PLATFORMS) * INDEX_LAYER_MB
    out = [
        "# run-buildset-registry benchmark",
        "",
        "- Command: `%s`" % command,
        "- Date: %s (%.0f s)" % (started.strftime("%Y-%m-%d %H:%M UTC"), time.time() - started.timestamp()),
        "- Machine: %(nproc)s cores, %(cpu)s, kernel %(kernel)s, Docker engine %(docker)s, %(registry)s, "
        "%(caddy)s, %(ansible)s, Python %(python)s." % facts,
        "- Load average (1 min) at start %s, at end %s; the engine is shared, other people's tests may run." % load,
        "- Rounds: %d alternated (the order rotates each round) for the entry rows, %d for the front rows, %d for "
        "the cold applies (with namespaces too) and the object storage rows, %d for the fan-out; wrk %s -d%ds, TLS "
        "with keep-alive; image: %d layers x %d MB of random data, skopeo to/from dir:, a new image for every push; "
        "index: %d platforms x %d MB and an attestation, ctr %s, a new index for every push."
        % (args.entry_rounds, args.rounds, args.slow_rounds, args.fanout_rounds, " ".join(WRK), args.duration, LAYERS,
           LAYER_MB, len(INDEX_PLATFORMS), INDEX_LAYER_MB, facts["ctr"]),
    ]  # fmt: skip
    if set(args.rows) != ALL_ROWS:
        keys = dict.fromkeys([*(k for k, *_ in ROWS), *REPORTS])
        out.append("- Rows: %s only." % ", ".join(k for k in keys if k in args.rows))
    out += ["- Note: %s." % note for note in notes]
    out += [
        "",
        "Ratio of medians: median measured / median reference. Paired ratio: the median of the ratios of each "
        "round (measured and reference taken back to back), which load drifting between rounds moves less. A "
        "target is met when both ratios meet it, missed when neither does, unclear otherwise.",
        "",
        "| measurement | median | reference | median | ratio of medians | paired ratio | target | result "
        "| ratio per round |",
        "| --- | ---: | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for key, label, unit, ref, target in ROWS:
        if key not in args.rows or not samples.get(key) or not samples.get(ref):
            continue
        label = label.format(mb=mb, index_mb=index_mb, shell=SHELL)
        ratio = med[key] / med[ref]
        rounds = [a / b for a, b in zip(samples[key], samples[ref])]
        paired = statistics.median(rounds)
        if target:
            op, limit = target
            ok = [r >= limit if op == ">=" else r <= limit for r in (ratio, paired)]
            target_text = "%s %.2fx" % (op, limit)
            result = "met" if all(ok) else "**missed**" if not any(ok) else "**unclear** (the two ratios disagree)"
        else:
            target_text, result = "-", "%+.2f s" % (med[key] - med[ref]) if unit == "s" else "-"
        out.append(
            "| %s | %s %s | %s | %s %s | %.2fx | %.2fx | %s | %s | %s |"
            % (label, fmt(med[key], unit), unit, REFERENCES[ref], fmt(med[ref], unit), unit,
               ratio, paired, target_text, result, ", ".join("%.2f" % r for r in rounds))
        )  # fmt: skip
    out += list(extra)
    out += ["", "Samples (seconds, or req/s), in round order:", ""]
    for key in sorted(samples):
        if samples[key] and key not in REPORTS:
            unit = "req/s" if key.startswith("rate") else "s"
            out.append("- %s: %s" % (key, ", ".join(fmt(v, unit) for v in samples[key])))
    if tasks:
        labels = list(tasks)
        names = list(dict.fromkeys(name for label in labels for name in tasks[label]))
        out += [
            "",
            "Where the time goes, median seconds per task (a task lasts until the next one starts):",
            "",
            "| task | %s |" % " | ".join(labels),
            "| --- |%s" % (" ---: |" * len(labels)),
        ]
        for name in names:
            cells = [("%.2f" % statistics.median(tasks[label][name])) if name in tasks[label] else "-"
                     for label in labels]  # fmt: skip
            out.append("| %s | %s |" % (name, " | ".join(cells)))
    return "\n".join(out) + "\n"


# --- main ---------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds of the front rows (5)")
    # A playbook's time moves by 0.1-0.3 s from run to run on a busy 2-core
    # machine, as much as the differences measured: more rounds.
    parser.add_argument("--entry-rounds", type=int, default=11, help="alternated rounds of the entry rows (11)")
    parser.add_argument("--slow-rounds", type=int, default=5, help="rounds of the cold applies and object storage (5)")
    parser.add_argument("--fanout-rounds", type=int, default=3, help="rounds of the %d-client fan-out (3)" %
                        FANOUT_CLIENTS)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="one round, 2 s of wrk: a smoke test, not a result")
    parser.add_argument("--only", default=",".join(GROUPS), help="groups to run, of %s (all)" % ", ".join(GROUPS))
    parser.add_argument("--rows", default="", help="rows to measure and show, by key (%s); all by default. The "
                        "front group measures only these; the other groups run whole" %
                        ", ".join(sorted(ALL_ROWS)))  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = args.entry_rounds = args.slow_rounds = args.fanout_rounds = 1
    args.duration = 2 if args.quick else 5
    args.groups = [g for g in args.only.split(",") if g]
    if min(args.rounds, args.entry_rounds, args.slow_rounds, args.fanout_rounds) < 1:
        parser.error("--rounds, --entry-rounds, --slow-rounds and --fanout-rounds must be at least 1")
    if set(args.groups) - set(GROUPS):
        parser.error("--only takes %s" % ", ".join(GROUPS))
    args.rows = [key for key in args.rows.split(",") if key] or sorted(ALL_ROWS)
    if set(args.rows) - ALL_ROWS:
        parser.error("--rows takes %s" % ", ".join(sorted(ALL_ROWS)))
    # Only the groups that hold a row asked for.
    args.groups = [g for g in args.groups if any(GROUP_OF[key] == g for key in args.rows)]
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = "python bench/run.py %s" % shlex.join(sys.argv[1:] if argv is None else argv)
    if os.environ.get("TOX_ENV_NAME") == "bench":
        command = "tox -e bench%s" % ((" -- " + shlex.join(sys.argv[1:])) if sys.argv[1:] else "")
    # SIGTERM (tox, CI) ends through the finally below, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res = Resources()
    started = datetime.datetime.now(datetime.timezone.utc)
    load = [load_average()]
    notes, extra, failed = [], [], None
    samples = {key: [] for key in set(GROUP_OF) | set(REFERENCES)}
    tasks = {}
    try:
        preflight()
        facts = machine_facts()
        start_upstream(res)
        role = None
        if set(args.groups) & {"entry", "front"}:
            log("applying the role (bench_role_*)")
            role = RoleInstance(res, "bench_role_")
            role.apply()
        if "front" in args.groups:
            measure_front(res, role, args, samples)
        if "apply" in args.groups:
            measure_cold(res, args, samples, tasks)
        if "store" in args.groups:
            measure_object_storage(res, args, samples)
        if "namespaces" in args.groups:
            measure_namespaces(res, args, samples, extra, notes)
        # Last: it waits while another person's `use` tests run.
        if "entry" in args.groups:
            measure_entry(res, role, args, samples, tasks, notes)
        others = others_running()
        if others:
            notes.append("other containers on the engine at the end: %s" % ", ".join(others))
    except BenchError as e:
        failed = e
    finally:
        problems = res.cleanup()
    if failed:
        print("\n" + "=" * 72 + "\nBENCHMARK FAILED: %s\n" % failed + "=" * 72, file=sys.stderr)
        return 1
    if problems:
        print("BENCHMARK FAILED to put the machine back: %s" % "; ".join(problems), file=sys.stderr)
        return 1
    load.append(load_average())
    report = render(facts, samples, tasks, args, command, started, tuple(load), notes, extra)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        f.write(report)
    print(report)
    log("wrote %s" % os.path.relpath(RESULTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
