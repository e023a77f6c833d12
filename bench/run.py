"""Benchmark run-buildset-registry against bare commands and a no-auth ceiling.

    python bench/run.py [--runs N] [--quick]        (tox -e bench)

Measures, with medians of N runs taken in alternation:
1. cold apply of the role with ansible-playbook (empty root, no containers,
   until both endpoints answer), and a re-run that must report changed=0;
2. the floor: the same work as one bash script of bare commands (floor.sh),
   and, for reference, ansible-playbook with no task and with one ping task;
3. authenticated GET /v2/ rate over TLS with keep-alive (wrk) on the push
   endpoint, at the role's default bcrypt cost and at cost 12, against the
   same image, cert and no auth;
4. a pull of a multi-layer image through the proxy endpoint, cold and warm,
   against a direct pull from the stand-in upstream (skopeo to dir:), and
   from the push endpoint and a no-auth TLS registry on the same storage
   (tell the proxy, TLS and auth costs apart);
5. a push and a pull of the same image through the push endpoint with the
   data on the filesystem, in a real object store through the s3 driver and
   through the swift driver (a one-node Swift, scripts/object-store).
Prints a markdown table with the targets met or missed and writes it to
bench/results/latest.md. Every container is named bench_*, every port is in
16000-16099, everything talks to 127.0.0.1 only; all is removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROLE_DIR = os.path.dirname(BENCH_DIR)
RESULTS = os.path.join(BENCH_DIR, "results", "latest.md")
BIN = os.path.dirname(sys.executable)

import ansible.module_utils  # noqa: E402

# The role's module_utils, imported as Ansible ships them (as tests/conftest.py does).
ansible.module_utils.__path__.append(os.path.join(ROLE_DIR, "module_utils"))
from ansible.module_utils.buildset_registry.common.layout import layout  # noqa: E402

# The integration tests' image maker (dir: layout, one random layer).
sys.path.insert(0, os.path.join(ROLE_DIR, "tests", "integration"))
from clients import make_image  # noqa: E402

IMAGE = os.environ.get("BUILDSET_REGISTRY_IMAGE", "registry:2")
USERNAME = "zuul"  # the role's default buildset_registry_username
UPSTREAM = {"name": "bench_upstream", "port": 16050}
UPSTREAM_URL = "http://127.0.0.1:%d" % UPSTREAM["port"]
# name prefix -> (proxy port, push port)
INSTANCES = {
    "bench_role_": (16000, 16001),
    "bench_floor_": (16010, 16011),
    "bench_rate_": (16020, 16021),
    "bench_cost12_": (16030, 16031),
    "bench_fs_": (16070, 16071),
    "bench_s3_": (16080, 16081),
    "bench_swift_": (16090, 16091),
}
# The one-node Swift of scripts/object-store: ports STORE_PORT to +5.
STORE_PORT = 16060
STORE_KINDS = ("fs", "s3", "swift")
NOAUTH = {"name": "bench_noauth", "port": 16040}
PULL_NOAUTH = {"name": "bench_pull_noauth", "port": 16041}
PULL_IMAGE = "bench/big:1"
PULL_REPEATS = 3  # warm pulls per run (a cold one needs a fresh proxy)
LAYERS, LAYER_MB = 4, 15
WRK = ["-t2", "-c8", "--timeout", "10s"]
HIGH_COST = 12

# name, numerator, denominator, limit, "max" (ratio <= limit) or "min" (>=)
TARGETS = [
    ("cold apply / floor", "cold_apply", "floor", 4.5, "max"),
    ("re-run / floor", "rerun", "floor", 3.5, "max"),
    ("auth rate (default cost) / no-auth ceiling", "rate_default", "rate_noauth", 0.5, "min"),
    ("warm pull via proxy / direct pull", "pull_warm", "pull_direct", 1.2, "max"),
]


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


class Resources:
    """The containers and directories this run made, removed by cleanup()."""

    def __init__(self):
        self.containers = []
        self.dirs = []
        self.stores = []  # (scripts/object-store, its directory), stopped at the end

    def container(self, name):
        if name not in self.containers:
            self.containers.append(name)
        return name

    def tempdir(self, prefix):
        path = tempfile.mkdtemp(prefix="bench_%s_" % prefix)
        self.dirs.append(path)
        return path

    def remove_containers(self, *names):
        if names:
            run(["docker", "rm", "-f", *names], check=False)

    def cleanup(self):
        # The engine is shared: wait out a restart by someone else, then remove.
        for _ in range(60):
            if run(["docker", "info"], check=False).returncode == 0:
                break
            time.sleep(0.5)
        self.remove_containers(*self.containers)
        for script, path in self.stores:
            run([script, "stop", path], check=False)
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)


# --- machine and inputs ------------------------------------------------------


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts():
    engine = run(["docker", "version", "--format", "{{.Server.Version}}"]).stdout.strip()
    registry = (
        run(["docker", "run", "--rm", "--entrypoint", "/bin/registry", IMAGE, "--version"], check=False)
        .stdout.strip()
        .split(" ")[-1]
    )
    ansible = run([os.path.join(BIN, "ansible-playbook"), "--version"]).stdout.splitlines()[0]
    ansible = re.search(r"\[core ([^\]]+)\]", ansible).group(1)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "docker": engine,
        "registry": "%s %s" % (IMAGE, registry or "(version unknown)"),
        "ansible": "ansible-core " + ansible,
    }


def role_default(name):
    with open(os.path.join(ROLE_DIR, "defaults", "main.yml")) as f:
        return yaml.safe_load(f)[name]


def preflight():
    run(["docker", "info"])
    for tool in ("wrk", "skopeo", "openssl", "curl"):
        if not shutil.which(tool):
            raise BenchError("%s is not installed; scripts/setup-host installs it" % tool)
    if run(["docker", "image", "inspect", IMAGE], check=False).returncode != 0:
        raise BenchError("image %s is missing; run scripts/provide-registry-image" % IMAGE)


def start_upstream(res):
    res.container(UPSTREAM["name"])
    run([os.path.join(ROLE_DIR, "scripts", "stand-in-upstream"), UPSTREAM["name"], str(UPSTREAM["port"])])


def push_pull_image(res):
    """Build a FROM scratch image of LAYERS random layers and push it upstream."""
    ctx = res.tempdir("image")
    lines = ["FROM scratch"]
    for i in range(LAYERS):
        with open(os.path.join(ctx, "layer%d" % i), "wb") as f:
            f.write(os.urandom(LAYER_MB << 20))
        lines.append("COPY layer%d /layer%d" % (i, i))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("\n".join(lines) + "\n")
    tag = "127.0.0.1:%d/%s" % (UPSTREAM["port"], PULL_IMAGE)
    run(["docker", "build", "-q", "-t", tag, ctx], env={**os.environ, "DOCKER_BUILDKIT": "0"})
    run(["docker", "push", tag])
    run(["docker", "rmi", tag])
    shutil.rmtree(ctx)


# --- the role ------------------------------------------------------------------


class RoleInstance:
    """One application of the role: its variables, root and containers."""

    def __init__(self, res, prefix, extra_vars=None):
        self.res = res
        self.dir = res.tempdir(prefix[len("bench_") :].strip("_"))
        self.root = os.path.join(self.dir, "root")
        self.port, self.push_port = INSTANCES[prefix]
        self.names = [res.container(prefix + "proxy"), res.container(prefix + "push")]
        self.vars = {
            "buildset_registry_root": self.root,
            "buildset_registry_host": "127.0.0.1",
            "buildset_registry_port": self.port,
            "buildset_registry_push_port": self.push_port,
            "buildset_registry_proxy_container": self.names[0],
            "buildset_registry_push_container": self.names[1],
            "buildset_registry_proxy_remote_url": UPSTREAM_URL,
            **(extra_vars or {}),
        }
        self.paths = layout(self.root)
        self.applies = 0
        self.res.remove_containers(*self.names)

    def apply(self):
        """Run ansible-playbook once; return (seconds, recap dict, task durations)."""
        self.applies += 1
        varfile = os.path.join(self.dir, "vars.json")
        with open(varfile, "w") as f:
            json.dump(self.vars, f)
        marks = os.path.join(self.dir, "marks-%d.jsonl" % self.applies)
        started = time.time()
        seconds, proc = ansible_playbook("apply.yml", ["-e", "@" + varfile], marks, self.dir)
        ended = started + seconds
        if proc.returncode != 0:
            raise BenchError("applying the role failed (exit %d):\n%s%s" % (proc.returncode, proc.stdout, proc.stderr))
        return seconds, parse_recap(proc.stdout), task_durations(marks, started, ended)

    def password(self):
        with open(self.paths["password"]) as f:
            return f.read().strip()

    def basic_auth(self):
        return "Basic " + base64.b64encode(("%s:%s" % (USERNAME, self.password())).encode()).decode()

    def bcrypt_cost(self):
        with open(self.paths["htpasswd"]) as f:
            return int(re.search(r":\$2[abxy]?\$(\d\d)\$", f.read()).group(1))

    def cert_dir(self):
        """A directory holding only the CA (the cert), as skopeo's --src-cert-dir wants."""
        path = os.path.join(self.dir, "ca")
        os.makedirs(path, exist_ok=True)
        shutil.copy(self.paths["cert"], os.path.join(path, "ca.crt"))
        return path

    def remove(self):
        self.res.remove_containers(*self.names)
        shutil.rmtree(self.root, ignore_errors=True)


def ansible_playbook(playbook, args, marks, cwd):
    """Run a playbook of bench/ on localhost; return (seconds, CompletedProcess)."""
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(BENCH_DIR, "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_task_times",
        "BENCH_TASK_TIMES": marks,
    }
    cmd = [
        os.path.join(BIN, "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        *args,
        os.path.join(BENCH_DIR, playbook),
    ]
    return timed(cmd, env=env, check=False, cwd=cwd)


def measure_references(res):
    """Ansible's own cost: the same command with no task, and with one ping task."""
    work = res.tempdir("reference")
    marks = os.path.join(work, "marks.jsonl")
    out = {}
    for key, tags in (("ansible_empty", ["--skip-tags", "ping"]), ("ansible_ping", ["--tags", "ping"])):
        seconds, proc = ansible_playbook("reference.yml", tags, marks, work)
        if proc.returncode != 0:
            raise BenchError("reference playbook failed:\n" + proc.stdout + proc.stderr)
        out[key] = seconds
    shutil.rmtree(work, ignore_errors=True)
    return out


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


# --- the floor -------------------------------------------------------------------


def run_floor(res, cost):
    prefix = "bench_floor_"
    names = [res.container(prefix + "proxy"), res.container(prefix + "push")]
    res.remove_containers(*names)
    work = res.tempdir("floor")
    port, push_port = INSTANCES[prefix]
    cmd = [
        "bash",
        os.path.join(BENCH_DIR, "floor.sh"),
        os.path.join(work, "root"),
        IMAGE,
        str(port),
        str(push_port),
        UPSTREAM_URL,
        str(cost),
        sys.executable,
        prefix,
    ]
    seconds, _ = timed(cmd)
    res.remove_containers(*names)
    shutil.rmtree(work, ignore_errors=True)
    return seconds


# --- pulls -------------------------------------------------------------------------


def skopeo_pull(res, address, creds=None, cert_dir=None, ref=PULL_IMAGE):
    """Seconds for skopeo to copy the test image from address to a fresh dir:."""
    dest = res.tempdir("pull")
    shutil.rmtree(dest)
    cmd = ["skopeo", "--insecure-policy", "copy", "--quiet"]
    if creds:
        cmd += ["--src-creds", creds]
    if cert_dir:
        cmd += ["--src-cert-dir", cert_dir]
    else:
        cmd += ["--src-tls-verify=false"]  # the stand-in upstream is plain http
    cmd += ["docker://%s/%s" % (address, ref), "dir:" + dest]
    seconds, _ = timed(cmd)
    size = sum(os.path.getsize(os.path.join(dest, n)) for n in os.listdir(dest))
    if size < LAYERS * LAYER_MB << 20:
        raise BenchError("pull from %s gave only %d bytes" % (address, size))
    shutil.rmtree(dest)
    return seconds


def measure_pulls(res, instance):
    """Cold through the instance's fresh proxy, then PULL_REPEATS rounds of the
    warm pulls and their references; returns the median of each kind."""
    creds = "%s:%s" % (USERNAME, instance.password())
    cert_dir = instance.cert_dir()
    proxy = "127.0.0.1:%d" % instance.port
    out = {"pull_cold": skopeo_pull(res, proxy, creds, cert_dir)}
    tls_port = start_noauth(res, instance, PULL_NOAUTH)
    sources = {
        "pull_direct": ("127.0.0.1:%d" % UPSTREAM["port"], None, None),
        "pull_warm": (proxy, creds, cert_dir),
        # Same storage, TLS and auth, no proxy logic: tells TLS+auth from proxying.
        "pull_push": ("127.0.0.1:%d" % instance.push_port, creds, cert_dir),
        # Same storage and TLS, no auth, no proxy: tells TLS from auth.
        "pull_tls": ("127.0.0.1:%d" % tls_port, None, cert_dir),
    }
    rounds = {key: [] for key in sources}
    for _ in range(PULL_REPEATS):
        for key, (address, src_creds, src_cert_dir) in sources.items():
            rounds[key].append(skopeo_pull(res, address, src_creds, src_cert_dir))
    res.remove_containers(PULL_NOAUTH["name"])
    out.update({key: statistics.median(values) for key, values in rounds.items()})
    return out


# --- request rate ------------------------------------------------------------------


def wait_for(url, cafile, want):
    for _ in range(500):
        code = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", cafile, url], check=False).stdout
        if code == str(want):
            return
        time.sleep(0.02)
    raise BenchError("%s did not answer %s (last: %s)" % (url, want, code))


def start_noauth(res, instance, spec=NOAUTH):
    """Same image, cert and storage as instance's registries, TLS and no auth."""
    name = res.container(spec["name"])
    res.remove_containers(name)
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "-v",
            "%s:/certs:ro" % instance.paths["certs_dir"],
            "-v",
            "%s:/var/lib/registry" % instance.paths["data_dir"],
            "-e",
            "REGISTRY_HTTP_ADDR=:%d" % spec["port"],
            "-e",
            "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt",
            "-e",
            "REGISTRY_HTTP_TLS_KEY=/certs/domain.key",
            IMAGE,
        ]
    )
    wait_for("https://127.0.0.1:%d/v2/" % spec["port"], instance.paths["cert"], 200)
    return spec["port"]


def wrk_rate(port, duration, auth=None):
    """Requests per second of GET /v2/; fails when any answer was not 2xx."""
    cmd = ["wrk", *WRK, "-d", "%ds" % duration]
    if auth:
        cmd += ["-H", "Authorization: " + auth]
    out = run(cmd + ["https://127.0.0.1:%d/v2/" % port]).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise BenchError(
            "wrk on port %d got %s non-2xx answers (auth %s):\n%s"
            % (port, bad.group(1), "given" if auth else "none", out)
        )
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


# --- report ----------------------------------------------------------------------------

ROWS = [
    ("cold_apply", "Cold apply of the role (ansible-playbook, until both endpoints answer)", "s"),
    ("rerun", "Re-run of the role, nothing to change (changed=0)", "s"),
    ("floor", "Floor: openssl + htpasswd line + 2 docker run + wait for 401 (bash)", "s"),
    ("ansible_empty", "Reference: ansible-playbook, same command, no task", "s"),
    ("ansible_ping", "Reference: ansible-playbook, one ansible.builtin.ping task", "s"),
    ("rate_default", "GET /v2/ rate, auth, default bcrypt cost {cost}", "req/s"),
    ("rate_high", "GET /v2/ rate, auth, bcrypt cost %d" % HIGH_COST, "req/s"),
    ("rate_noauth", "GET /v2/ rate, no auth (ceiling)", "req/s"),
    ("pull_direct", "Pull {mb} MB direct from the upstream", "s"),
    ("pull_cold", "Pull {mb} MB via the proxy, cold (empty cache)", "s"),
    ("pull_warm", "Pull {mb} MB via the proxy, warm (cached)", "s"),
    ("pull_push", "Pull {mb} MB via the push endpoint (same storage, TLS + auth, no proxy)", "s"),
    ("pull_tls", "Pull {mb} MB from a TLS registry, no auth (same image, storage, cert)", "s"),
    ("push_fs", "Push {mb} MB to the push endpoint, data on the filesystem", "s"),
    ("push_s3", "Push {mb} MB to the push endpoint, data in the object store (s3 driver)", "s"),
    ("push_swift", "Push {mb} MB to the push endpoint, data in the object store (swift driver)", "s"),
    ("pull_fs", "Pull {mb} MB from the push endpoint, data on the filesystem", "s"),
    ("pull_s3", "Pull {mb} MB from the push endpoint, data in the object store (s3 driver)", "s"),
    ("pull_swift", "Pull {mb} MB from the push endpoint, data in the object store (swift driver)", "s"),
]


def fmt(value, unit):
    return ("%.0f" % value) if unit == "req/s" else ("%.2f" % value)


def render(facts, samples, tasks, runs, duration, cost):
    med = {k: statistics.median(v) for k, v in samples.items()}
    mb = LAYERS * LAYER_MB
    out = [
        "# run-buildset-registry benchmark",
        "",
        "Machine: %(nproc)s cores, %(cpu)s, kernel %(kernel)s, Docker engine %(docker)s, "
        "%(registry)s, %(ansible)s." % facts,
        "Medians of %d alternating runs; wrk %s -d%ds on https://127.0.0.1/v2/ with keep-alive; "
        "pull image %d layers x %d MB random data, skopeo copy to dir: "
        "(each run: 1 cold pull, median of %d of each other pull)."
        % (runs, " ".join(WRK), duration, LAYERS, LAYER_MB, PULL_REPEATS),
        "",
        "| measurement | median | unit | runs |",
        "| --- | ---: | --- | --- |",
    ]
    for key, label, unit in ROWS:
        values = ", ".join(fmt(v, unit) for v in samples[key])
        out.append("| %s | %s | %s | %s |" % (label.format(cost=cost, mb=mb), fmt(med[key], unit), unit, values))
    out += [
        "",
        "| target | ratio of medians | limit | result | ratio in each run |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for label, num, den, limit, kind in TARGETS:
        ratio = med[num] / med[den]
        ok = ratio <= limit if kind == "max" else ratio >= limit
        each = ", ".join("%.2f" % (a / b) for a, b in zip(samples[num], samples[den]))
        out.append(
            "| %s | %.2fx | %s %.1fx | %s | %s |"
            % (label, ratio, "<=" if kind == "max" else ">=", limit, "met" if ok else "**missed**", each)
        )
    out.append(
        "| (info) auth rate cost %d / ceiling | %.3fx | | | |" % (HIGH_COST, med["rate_high"] / med["rate_noauth"])
    )
    out.append("| (info) cold pull via proxy / direct | %.2fx | | | |" % (med["pull_cold"] / med["pull_direct"]))
    out.append(
        "| (info) warm pull via push endpoint / direct | %.2fx | | | |" % (med["pull_push"] / med["pull_direct"])
    )
    out.append("| (info) warm pull over TLS, no auth / direct | %.2fx | | | |" % (med["pull_tls"] / med["pull_direct"]))
    out.append("| (info) empty ansible-playbook / floor | %.2fx | | | |" % (med["ansible_empty"] / med["floor"]))
    for driver in STORE_KINDS[1:]:
        out.append(
            "| (info) push / pull, %s driver / filesystem | %.2fx / %.2fx | | | |"
            % (driver, med["push_" + driver] / med["push_fs"], med["pull_" + driver] / med["pull_fs"])
        )
    out += [
        "",
        "Role tasks, median seconds (a task lasts until the next one starts):",
        "",
        "| task | cold apply | re-run |",
        "| --- | ---: | ---: |",
    ]
    for name in tasks["cold"]:
        rerun = tasks["rerun"].get(name)
        out.append(
            "| %s | %.2f | %s |"
            % (name, statistics.median(tasks["cold"][name]), "%.2f" % statistics.median(rerun) if rerun else "-")
        )
    return "\n".join(out) + "\n"


def add_tasks(table, durations):
    for name, seconds in durations:
        table.setdefault(name, []).append(seconds)


# --- main ---------------------------------------------------------------------------------


def measure_apply_and_pulls(res, runs, cost, samples, tasks):
    """Alternate: role (cold, re-run, pulls through its fresh proxy), floor, references."""
    for i in range(runs):
        log("run %d/%d: role cold apply and re-run" % (i + 1, runs))
        role = RoleInstance(res, "bench_role_")
        seconds, recap, durations = role.apply()
        samples["cold_apply"].append(seconds)
        add_tasks(tasks["cold"], durations)
        seconds, recap, durations = role.apply()
        if recap.get("changed") != 0:
            raise BenchError(
                "RE-RUN OF THE ROLE IS NOT IDEMPOTENT: PLAY RECAP says changed=%s (%s)" % (recap.get("changed"), recap)
            )
        samples["rerun"].append(seconds)
        add_tasks(tasks["rerun"], durations)
        log("run %d/%d: pulls (proxy cold; direct, proxy warm, push, TLS no auth)" % (i + 1, runs))
        for key, value in measure_pulls(res, role).items():
            samples[key].append(value)
        role.remove()
        log("run %d/%d: floor" % (i + 1, runs))
        samples["floor"].append(run_floor(res, cost))
        log("run %d/%d: ansible-playbook references" % (i + 1, runs))
        for key, value in measure_references(res).items():
            samples[key].append(value)


def measure_rates(res, runs, duration, cost, samples):
    """Registries for default cost, high cost and no auth; wrk on each in turn."""
    log("request rate: applying the role at cost %d and %d" % (cost, HIGH_COST))
    default = RoleInstance(res, "bench_rate_")
    default.apply()
    high = RoleInstance(res, "bench_cost12_", {"buildset_registry_bcrypt_cost": HIGH_COST})
    high.apply()
    for instance, want in ((default, cost), (high, HIGH_COST)):
        if instance.bcrypt_cost() != want:
            raise BenchError("htpasswd of %s has cost %d, not %d" % (instance.root, instance.bcrypt_cost(), want))
    noauth_port = start_noauth(res, default)
    for i in range(runs):
        log("request rate run %d/%d" % (i + 1, runs))
        samples["rate_noauth"].append(wrk_rate(noauth_port, duration))
        samples["rate_default"].append(wrk_rate(default.push_port, duration, default.basic_auth()))
        samples["rate_high"].append(wrk_rate(high.push_port, duration, high.basic_auth()))
    res.remove_containers(NOAUTH["name"])
    default.remove()
    high.remove()


def measure_object_storage(res, runs, samples):
    """Push and pull the test image through the push endpoint of three role
    instances: data on the filesystem, in the store via s3, via swift."""
    log("object storage: a one-node Swift and three role instances")
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
    for i in range(runs):
        log("object storage run %d/%d: push and pull (filesystem, s3, swift)" % (i + 1, runs))
        # A new image each run: skopeo would mount blobs it pushed before
        # from another repository of the same registry instead of uploading.
        source = os.path.join(res.tempdir("source"), "image")
        make_image(source, size=(LAYERS * LAYER_MB) << 20)
        for kind, instance in instances.items():
            login = "%s:%s" % (USERNAME, instance.password())
            address = "127.0.0.1:%d" % instance.push_port
            ref = "bench/store-%d:1" % i
            seconds, _ = timed(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-creds", login,
                                "--dest-cert-dir", instance.cert_dir(), "dir:" + source,
                                "docker://%s/%s" % (address, ref)])  # fmt: skip
            samples["push_" + kind].append(seconds)
            samples["pull_" + kind].append(skopeo_pull(res, address, login, instance.cert_dir(), ref))
    for instance in instances.values():
        instance.remove()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help="one run, 2 s of wrk: a smoke test, not a result")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
    args.duration = 2 if args.quick else 5
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    # SIGTERM (tox, CI) ends through the finally below, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res = Resources()
    started = time.monotonic()
    try:
        preflight()
        facts = machine_facts()
        cost = int(role_default("buildset_registry_bcrypt_cost"))
        log("stand-in upstream and a %d MB test image" % (LAYERS * LAYER_MB))
        start_upstream(res)
        push_pull_image(res)
        samples = {key: [] for key, _, _ in ROWS}
        tasks = {"cold": {}, "rerun": {}}
        measure_apply_and_pulls(res, args.runs, cost, samples, tasks)
        measure_rates(res, args.runs, args.duration, cost, samples)
        measure_object_storage(res, args.runs, samples)
        report = render(facts, samples, tasks, args.runs, args.duration, cost)
    except BenchError as e:
        print("\n" + "=" * 72 + "\nBENCHMARK FAILED: %s\n" % e + "=" * 72, file=sys.stderr)
        return 1
    finally:
        res.cleanup()
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        f.write(report)
    print(report)
    log("wrote %s in %.0f s" % (os.path.relpath(RESULTS), time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
