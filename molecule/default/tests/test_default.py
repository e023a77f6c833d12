"""Verify the converged registry with real clients (docker CLI, skopeo,
curl, openssl) against the real containers.

Settings come from the scenario's inventory and the facts the role
returned (written by converge.yml); nothing here repeats them. The
containers are looked at with the CLI of the engine that runs them
(inventory variable molecule_container_cli: docker, the default, or podman;
the podman scenario runs these tests too); the clients are Docker's CLI and
skopeo whatever the engine.
"""

import json
import os
import re
import shlex
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def cfg(host):
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def engine_container(host, cfg):
    """name -> testinfra container of the engine that runs the registry."""
    cli = cfg.get("molecule_container_cli", "docker")
    return getattr(host, cli)


@pytest.fixture(scope="module")
def facts():
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "buildset_registry.json")
    with open(path) as f:
        return json.load(f)


def endpoints(facts):
    return [
        ("proxy", f"{facts['host']}:{facts['port']}"),
        ("push", f"{facts['push_host']}:{facts['push_port']}"),
    ]


@pytest.fixture(scope="module")
def client(host, facts, tmp_path_factory):
    """A docker CLI with its own config dir, trusting the returned cert."""
    workdir = tmp_path_factory.mktemp("client")
    cafile = workdir / "ca.crt"
    cafile.write_text(facts["cert"])
    # The use entry point (converge) made docker trust both endpoints.
    for _, address in endpoints(facts):
        assert host.file(f"/etc/docker/certs.d/{address}/ca.crt").content_string == facts["cert"]
    env = f"DOCKER_CONFIG={workdir / 'docker'}"

    class Client:
        ca = str(cafile)
        cert_dir = str(workdir)

        def docker(self, args, stdin=None):
            feed = f"printf '%s' {shlex.quote(stdin)} | " if stdin is not None else ""
            return host.run(f"{feed}{env} docker {args}")

        def image(self, tag):
            """Make a small unique image tagged tag; return its image ID."""
            src = workdir / uuid.uuid4().hex
            src.mkdir()
            (src / "payload").write_bytes(os.urandom(2048))
            out = host.check_output(f"tar -C {src} -cf - . | docker import - {tag}")
            return out.strip()

    yield Client()
    # Remove the images the tests made or pulled (named after an endpoint,
    # or buildset/refused-*).
    prefixes = tuple(address + "/" for _, address in endpoints(facts)) + ("buildset/refused-",)
    listed = host.check_output("docker images --format '{{.Repository}}:{{.Tag}} {{.ID}}'").splitlines()
    ids = {line.split()[1] for line in listed if line.startswith(prefixes)}
    if ids:
        host.run("docker rmi -f " + " ".join(sorted(ids)))


def login(client, facts, address, password=None):
    password = facts["password"] if password is None else password
    return client.docker(
        f"login -u {shlex.quote(facts['username'])} --password-stdin {address}",
        stdin=password,
    )


def digest(text):
    """text, checked to be one manifest digest: an empty or garbled output
    (a failed inspect) would otherwise compare equal, or be "in" anything."""
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", text), f"not a digest: {text!r}"
    return text


def curl_code(host, url, cafile, user=None):
    auth = f"-u {shlex.quote(user)}" if user else ""
    cmd = f"curl -sS -o /dev/null -w '%{{http_code}}' --cacert {cafile} {auth} {url}"
    return host.check_output(cmd)


def test_facts_name_what_runs(host, cfg, facts, engine_container):
    assert facts["host"] == cfg["buildset_registry_host"]
    assert facts["push_host"] == cfg["buildset_registry_host"]
    assert facts["port"] == cfg["buildset_registry_port"]
    assert facts["push_port"] == cfg["buildset_registry_push_port"]
    assert facts["username"] == "zuul"
    assert len(facts["password"]) >= 32  # 192 bits, urlsafe
    assert facts["cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert facts["mirrors"] == [f"{facts['host']}:{facts['port']}"]
    podman = cfg.get("molecule_container_cli") == "podman"
    for kind in ("push", "proxy", "front"):
        c = engine_container(cfg[f"buildset_registry_{kind}_container"])
        assert c.is_running
        # Podman restarts a crashing proxy at once, without a back-off: a
        # few tries, then the role's waiter starts it (README, Known limitations).
        policy = "on-failure" if podman and kind == "proxy" else "always"
        assert c.inspect()["HostConfig"]["RestartPolicy"]["Name"] == policy
        assert c.inspect()["HostConfig"]["NetworkMode"] == "host"
    for port in (facts["port"], facts["push_port"]):
        assert host.socket(f"tcp://:::{port}").is_listening or host.socket(f"tcp://0.0.0.0:{port}").is_listening
    # The registries listen on the node only: abstract unix sockets, no port.
    root = cfg["buildset_registry_root"]
    for kind in ("push", "proxy"):
        assert f"@buildset-registry{root}/{kind}" in host.check_output("cat /proc/net/unix")


def test_secret_files_are_private(host, cfg):
    root = cfg["buildset_registry_root"]
    for name in ("certs/domain.key", "auth/htpasswd", "auth/password"):
        f = host.file(os.path.join(root, name))
        assert f.exists, name
        assert f.mode == 0o600, name
    for name in ("config/push.yml", "config/proxy.yml", "config/front.json"):
        assert host.file(os.path.join(root, name)).mode == 0o600, name
    assert host.file(os.path.join(root, "data")).is_directory
    assert host.file(os.path.join(root, "cache")).is_directory


def test_returned_cert_verifies_both_endpoints_by_host(host, facts, client):
    for _, address in endpoints(facts):
        out = host.run(
            f"openssl s_client -connect {address} -servername {facts['host']} "
            f"-verify_hostname {facts['host']} -CAfile {client.ca} -verify_return_error </dev/null"
        )
        assert out.rc == 0, out.stderr
        assert "Verify return code: 0 (ok)" in out.stdout


@pytest.mark.parametrize("who", ["anonymous", "wrong password"])
def test_unauthenticated_requests_refused(host, facts, client, who):
    user = None if who == "anonymous" else f"{facts['username']}:not-{facts['password']}"
    for _, address in endpoints(facts):
        assert curl_code(host, f"https://{address}/v2/", client.ca, user) == "401"
        assert curl_code(host, f"https://{address}/v2/_catalog", client.ca, user) == "401"


def test_authenticated_request_accepted(host, facts, client):
    user = f"{facts['username']}:{facts['password']}"
    for _, address in endpoints(facts):
        assert curl_code(host, f"https://{address}/v2/", client.ca, user) == "200"


def test_docker_login_with_wrong_password_fails(facts, client):
    for _, address in endpoints(facts):
        assert login(client, facts, address, "wrong").rc != 0


def test_push_then_pull_same_image_through_proxy(host, facts, client):
    push = f"{facts['push_host']}:{facts['push_port']}"
    proxy = f"{facts['host']}:{facts['port']}"
    assert login(client, facts, push).rc == 0
    assert login(client, facts, proxy).rc == 0
    repo = f"buildset/pushed-{uuid.uuid4().hex[:8]}"
    image_id = client.image(f"{push}/{repo}:1")
    out = client.docker(f"push {push}/{repo}:1")
    assert out.rc == 0, out.stderr
    out = client.docker(f"pull {proxy}/{repo}:1")
    assert out.rc == 0, out.stderr
    pulled = host.check_output(f"docker image inspect -f '{{{{.Id}}}}' {proxy}/{repo}:1")
    assert pulled == image_id
    # Same manifest digest at both endpoints, read by a second client.
    creds = f"{facts['username']}:{facts['password']}"
    digests = [
        host.check_output(
            f"skopeo inspect --format '{{{{.Digest}}}}' --creds {shlex.quote(creds)} "
            f"--cert-dir {client.cert_dir} docker://{address}/{repo}:1"
        )
        for address in (push, proxy)
    ]
    assert digest(digests[0]) == digest(digests[1])


def test_upstream_only_image_pulls_through_proxy(host, cfg, facts, client):
    proxy = f"{facts['host']}:{facts['port']}"
    assert login(client, facts, proxy).rc == 0
    ref = cfg["molecule_upstream_images"][0]
    out = client.docker(f"pull {proxy}/{ref}")
    assert out.rc == 0, out.stderr
    upstream = f"127.0.0.1:{cfg['molecule_upstream_port']}/{ref}"
    direct = digest(
        host.check_output(f"skopeo inspect --tls-verify=false --format '{{{{.Digest}}}}' docker://{upstream}")
    )
    via_proxy = host.check_output(f"docker image inspect -f '{{{{index .RepoDigests 0}}}}' {proxy}/{ref}")
    assert via_proxy == f"{proxy}/{ref.rsplit(':', 1)[0]}@{direct}"


def test_the_one_endpoint_takes_pushes_and_serves_them(host, facts, client):
    one = f"{facts['host']}:{facts['port']}"
    assert login(client, facts, one).rc == 0
    repo = f"buildset/one-{uuid.uuid4().hex[:8]}"
    image_id = client.image(f"{one}/{repo}:1")
    out = client.docker(f"push {one}/{repo}:1")
    assert out.rc == 0, out.stderr
    pushed = [line.split("digest: ", 1)[1].split()[0] for line in out.stdout.splitlines() if "digest: " in line]
    assert len(pushed) == 1, out.stdout
    creds = shlex.quote(f"{facts['username']}:{facts['password']}")
    served = host.check_output(
        f"skopeo inspect --format '{{{{.Digest}}}}' --creds {creds} --cert-dir {client.cert_dir} docker://{one}/{repo}:1"
    )
    assert digest(served) == digest(pushed[0])
    client.docker(f"rmi {one}/{repo}:1")
    out = client.docker(f"pull {one}/{repo}:1")
    assert out.rc == 0, out.stderr
    assert host.check_output(f"docker image inspect -f '{{{{.Id}}}}' {one}/{repo}:1") == image_id


def test_use_made_every_client_pull_through_the_registry(host, cfg, facts):
    """After use, skopeo (containers-image, no flags), the docker engine
    (registry-mirrors) and containerd (ctr --hosts-dir) get docker.io's
    upstream-only image through the buildset registry's mirrors."""
    ref = cfg["molecule_upstream_images"][0]
    upstream = f"127.0.0.1:{cfg['molecule_upstream_port']}/{ref}"
    direct = digest(
        host.check_output(f"skopeo inspect --tls-verify=false --format '{{{{.Digest}}}}' docker://{upstream}")
    )
    # --raw reads the manifest only (through the mirrors); without it skopeo
    # also lists tags, which containers-image asks docker.io itself for.
    raw = host.check_output(f"skopeo inspect --raw docker://docker.io/{ref} | sha256sum")
    assert "sha256:" + raw.split()[0] == direct
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon["registry-mirrors"] == [f"https://{m}" for m in facts["mirrors"]]
    name = f"docker.io/{ref}"
    out = host.run(f"docker pull {name}")
    assert out.rc == 0, out.stderr
    try:
        repo_digest = host.check_output(f"docker image inspect -f '{{{{index .RepoDigests 0}}}}' {name}")
        assert repo_digest.rsplit("@", 1)[-1] == direct, repo_digest
    finally:
        host.run(f"docker rmi {name}")
    ctr = "ctr --address /run/docker/containerd/containerd.sock --namespace molecule_use"
    out = host.run(f"{ctr} image pull --hosts-dir /etc/containerd/certs.d {name}")
    try:
        assert out.rc == 0, out.stderr
        assert direct in host.check_output(f"{ctr} image ls")
    finally:
        host.run(f"{ctr} image rm {name}")
