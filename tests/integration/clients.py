"""Real clients for the integration tests: skopeo, curl, openssl, the
docker CLI and ctr, pointed at a registry the role started.

Every address and credential comes from the facts the role returned (see
endpoints()); test images are written in skopeo's `dir:` layout so that
their manifest, config and layer digests are known before they are pushed.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness import docker, run

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CERTS_D = Path("/etc/docker/certs.d")


def container_exists(name):
    return docker("inspect", "-f", "{{.Id}}", name).returncode == 0


def endpoints(facts):
    """kind -> host:port of the two endpoints, from the returned facts."""
    return {
        "proxy": f"{facts['host']}:{facts['port']}",
        "push": f"{facts['push_host']}:{facts['push_port']}",
    }


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_digest(raw):
    """The digest of a manifest body; fails the test when raw is no manifest:
    two empty (or error) bodies would have the same digest and compare equal."""
    try:
        manifest = json.loads(raw)
    except ValueError:
        manifest = None
    assert isinstance(manifest, dict) and manifest.get("schemaVersion"), f"not a manifest: {raw[:300]!r}"
    return sha256(raw)


def podman(tmp_path, *args, env=None, timeout=180):
    """The podman CLI with this machine's limits (see scripts/podman-service);
    env: more environment variables."""
    conf = tmp_path / "containers.conf"
    conf.write_text('[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    return run(["podman", *args], env={**os.environ, "CONTAINERS_CONF": str(conf), **(env or {})}, timeout=timeout)


def upstream_digest(upstream, ref):
    """The digest of ref's manifest as the plain upstream registry (the
    `upstream` fixture, HTTP on loopback) serves it."""
    url = "docker://127.0.0.1:%d/%s" % (upstream["port"], ref)
    proc = run(["skopeo", "--insecure-policy", "inspect", "--raw", "--tls-verify=false", url], text=False)
    assert proc.returncode == 0, proc.stderr
    return manifest_digest(proc.stdout)


# --- ansible-playbook output ----------------------------------------------------


def role_changed(proc):
    """The parts of the role that changed something in this run: any of
    "certificate", "htpasswd" and "containers", read from the module's result."""
    result = proc.result or {}
    parts = [part for part in ("certificate", "htpasswd") if (result.get(part) or {}).get("changed")]
    actions = [c.get("action") for c in (result.get("containers") or {}).values()]
    if any(a not in ("unchanged", "absent") for a in actions):
        parts.append("containers")
    return sorted(parts)


# --- images -----------------------------------------------------------------


@dataclass
class Image:
    """A one-layer image in skopeo's dir: layout, with its digests."""

    path: Path
    manifest: bytes
    config_digest: str
    layer_digests: list = field(default_factory=list)

    @property
    def digest(self):
        return sha256(self.manifest)

    @property
    def blobs(self):
        return [self.config_digest, *self.layer_digests]


def make_image(path, size=64 * 1024, label=None):
    """Write a unique image (random layer content) at path in dir: layout."""
    path = Path(path)
    path.mkdir(parents=True)
    payload = os.urandom(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("payload")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
        note = (label or uuid.uuid4().hex).encode()
        info = tarfile.TarInfo("IMAGE")
        info.size = len(note)
        tar.addfile(info, io.BytesIO(note))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"it.label": label or ""}},
            "rootfs": {"type": "layers", "diff_ids": [sha256(raw.getvalue())]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": sha256(config)},
            "layers": [{"mediaType": LAYER_GZIP, "size": len(layer), "digest": sha256(layer)}],
        },
        indent=3,
    ).encode()
    for blob in (layer, config):
        (path / sha256(blob).split(":", 1)[1]).write_bytes(blob)
    (path / "manifest.json").write_bytes(manifest)
    (path / "version").write_text("Directory Transport Version: 1.1\n")
    return Image(path, manifest, sha256(config), [sha256(layer)])


def pulled_matches(dest, image):
    """Problems of a dir: pull of image (empty list: the very image, complete)."""
    dest = Path(dest)
    problems = []
    manifest = (dest / "manifest.json").read_bytes()
    if sha256(manifest) != image.digest:
        problems.append(f"manifest digest {sha256(manifest)} != pushed {image.digest}")
    for digest in image.blobs:
        blob = dest / digest.split(":", 1)[1]
        if not blob.exists():
            problems.append(f"blob {digest} missing")
        elif sha256(blob.read_bytes()) != digest:
            problems.append(f"blob {digest} has other content")
    return problems


# --- clients ------------------------------------------------------------------


class Clients:
    """skopeo, curl and openssl against both endpoints of one registry."""

    def __init__(self, facts, workdir):
        self.facts = facts
        self.addresses = endpoints(facts)
        self.workdir = Path(workdir)
        self.cert_dir = self.workdir / f"ca-{uuid.uuid4().hex[:6]}"
        self.cert_dir.mkdir(parents=True)
        self.ca = self.cert_dir / "ca.crt"
        self.ca.write_text(facts["cert"])
        self.creds = f"{facts['username']}:{facts['password']}"

    def with_facts(self, facts):
        return Clients(facts, self.workdir)

    # skopeo
    def skopeo(self, *args, timeout=120):
        return run(["skopeo", "--insecure-policy", *args], timeout=timeout)

    def push(self, image, kind, ref):
        return self.skopeo(
            "copy",
            "--dest-creds",
            self.creds,
            "--dest-cert-dir",
            str(self.cert_dir),
            f"dir:{image.path}",
            f"docker://{self.addresses[kind]}/{ref}",
        )

    def pull(self, kind, ref, dest):
        """Copy kind/ref (all blobs) into the dir: layout at dest."""
        shutil.rmtree(dest, ignore_errors=True)
        return self.skopeo(
            "copy",
            "--src-creds",
            self.creds,
            "--src-cert-dir",
            str(self.cert_dir),
            f"docker://{self.addresses[kind]}/{ref}",
            f"dir:{dest}",
        )

    def manifest(self, kind, ref):
        """(CompletedProcess, raw manifest bytes) of kind/ref."""
        proc = run(
            [
                "skopeo",
                "--insecure-policy",
                "inspect",
                "--raw",
                "--creds",
                self.creds,
                "--cert-dir",
                str(self.cert_dir),
                f"docker://{self.addresses[kind]}/{ref}",
            ],
            text=False,
        )
        proc.output = proc.stderr.decode(errors="replace")
        return proc, proc.stdout

    def digest(self, kind, ref):
        """Manifest digest served for kind/ref; fails the test when no manifest is served."""
        proc, raw = self.manifest(kind, ref)
        assert proc.returncode == 0, f"{kind} {ref}: {proc.output}"
        return manifest_digest(raw)

    # curl
    def status(self, kind, path, user=None, method="GET"):
        """HTTP status of one request; user None is anonymous, True the right creds."""
        cmd = [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            str(self.ca),
            "-H",
            f"Accept: {MANIFEST_V2}",
            *(["-I"] if method == "HEAD" else ["-X", method]),
            f"https://{self.addresses[kind]}{path}",
        ]
        if user is True:
            user = self.creds
        if user:
            cmd[1:1] = ["-u", user]
        proc = run(cmd, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout)

    # openssl
    def s_client(self, kind, *opts, cafile=None):
        host, port = self.addresses[kind].rsplit(":", 1)
        cmd = ["openssl", "s_client", "-connect", f"{host}:{port}", "-servername", host, *opts]
        if cafile is not False:
            cmd += ["-CAfile", str(cafile or self.ca), "-verify_hostname", host, "-verify_return_error"]
        proc = run(cmd, timeout=30, input="")
        proc.output = proc.stdout + proc.stderr
        return proc

    def served_cert(self, kind):
        """The PEM certificate the endpoint presents."""
        proc = self.s_client(kind, cafile=False)
        x509 = run(["openssl", "x509"], input=proc.stdout, timeout=30)
        assert x509.returncode == 0, proc.output
        return x509.stdout


class DockerCLI:
    """The docker CLI with its own config dir, trusting the returned cert via
    /etc/docker/certs.d/HOST:PORT/ca.crt (removed again by close())."""

    def __init__(self, facts, workdir):
        self.facts = facts
        self.addresses = endpoints(facts)
        self.env = {**os.environ, "DOCKER_CONFIG": str(Path(workdir) / f"docker-{uuid.uuid4().hex[:6]}")}
        self.cert_dirs = []
        for address in self.addresses.values():
            d = DOCKER_CERTS_D / address
            d.mkdir(parents=True, exist_ok=True)
            (d / "ca.crt").write_text(facts["cert"])
            self.cert_dirs.append(d)
        self.tags = []

    def __call__(self, *args, input=None, timeout=180):
        return docker(*args, env=self.env, input=input, timeout=timeout)

    def login(self, kind, password=None):
        password = self.facts["password"] if password is None else password
        return self("login", "-u", self.facts["username"], "--password-stdin", self.addresses[kind], input=password)

    def pull(self, kind, ref):
        """Pull kind/ref afresh (any local copy removed first); return the proc."""
        tag = f"{self.addresses[kind]}/{ref}"
        self("rmi", "-f", tag)
        self.tags.append(tag)
        return self("pull", tag)

    def repo_digest(self, kind, ref):
        tag = f"{self.addresses[kind]}/{ref}"
        out = self("image", "inspect", "-f", "{{json .RepoDigests}}", tag)
        assert out.returncode == 0, out.output
        repo = tag.rsplit(":", 1)[0]
        return [d.split("@", 1)[1] for d in json.loads(out.stdout) if d.split("@", 1)[0] == repo]

    def close(self):
        for tag in self.tags:
            self("rmi", "-f", tag)
        for d in self.cert_dirs:
            shutil.rmtree(d, ignore_errors=True)


def hosts_dir(path, address, ca):
    """A containerd hosts directory for address over TLS (ctr would speak
    plain HTTP to a localhost registry without one)."""
    (path / address).mkdir(parents=True)
    (path / address / "hosts.toml").write_text(
        f'server = "https://{address}"\n\n[host."https://{address}"]\n'
        f'  capabilities = ["pull", "resolve", "push"]\n  ca = "{ca}"\n'
    )
    return str(path)


class Ctr:
    """ctr on Docker's containerd, in a namespace of the caller's own."""

    ADDRESS = "/run/docker/containerd/containerd.sock"

    def __init__(self, namespace, timeout=120):
        self.namespace, self.timeout = namespace, timeout

    def __call__(self, *args, timeout=None, text=True):
        cmd = ["ctr", "--address", self.ADDRESS, "--namespace", self.namespace, *args]
        return run(cmd, timeout=timeout or self.timeout, text=text)

    def digest(self, ref):
        """The digest ctr lists for ref, or None."""
        for line in self("image", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == ref:
                return fields[2]
        return None

    def cleanup(self):
        """Remove every image and the namespace."""
        for line in self("image", "ls", "-q").stdout.split():
            self("image", "rm", "--sync", line)
        self("content", "prune", "references")
        run(["ctr", "--address", self.ADDRESS, "namespaces", "rm", self.namespace])
