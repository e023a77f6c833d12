"""Authentication on both ports, uploads only with the login, file modes,
secrets (passwords, the bcrypt hash, the front's tokens) kept out of logs
and container metadata, and the TLS floor, on real endpoints."""

import json
import os
import uuid

import pytest
from clients import Clients, make_image
from harness import docker

from ansible.module_utils.buildset_registry.registry.login import derive_tokens

KINDS = ("proxy", "push")


@pytest.fixture(scope="module")
def secured(shared_registry, tmp_path_factory):
    """Clients for the shared registry, with one image pushed to it: (clients, repo, image)."""
    c = Clients(shared_registry.facts, tmp_path_factory.mktemp("security"))
    repo = f"buildset/secret-{uuid.uuid4().hex[:6]}"
    image = make_image(c.workdir / "image")
    push = c.push(image, "push", f"{repo}:1")
    assert push.returncode == 0, push.stderr
    return c, repo, image


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("who", ["anonymous", "wrong password", "wrong user"])
def test_reads_and_writes_refused_without_right_credentials(secured, kind, who):
    c, repo, _ = secured
    facts = c.facts
    user = {
        "anonymous": None,
        "wrong password": f"{facts['username']}:not-{facts['password']}",
        "wrong user": f"not-{facts['username']}:{facts['password']}",
    }[who]
    requests = [
        ("GET", "/v2/"),
        ("GET", "/v2/_catalog"),
        ("GET", f"/v2/{repo}/manifests/1"),
        ("HEAD", f"/v2/{repo}/manifests/1"),
        ("POST", f"/v2/{repo}/blobs/uploads/"),
    ]
    got = {f"{m} {p}": c.status(kind, p, user, m) for m, p in requests}
    assert got == {k: 401 for k in got}
    # ...while the same requests with the right credentials are answered.
    assert c.status(kind, f"/v2/{repo}/manifests/1", True, "HEAD") == 200


def test_uploads_need_the_login_on_both_ports(secured, tmp_path):
    c, repo, _ = secured
    for kind in ("proxy", "push"):
        assert c.status(kind, f"/v2/{repo}/blobs/uploads/", True, "POST") == 202
        assert c.status(kind, f"/v2/{repo}/blobs/uploads/", None, "POST") == 401
        assert c.status(kind, f"/v2/{repo}/blobs/uploads/", "zuul:wrong", "POST") == 401
    refused = c.skopeo("copy", "--dest-no-creds", "--dest-cert-dir", str(c.cert_dir),
                       f"dir:{make_image(tmp_path / 'image').path}",
                       f"docker://{c.addresses['proxy']}/buildset/refused-{uuid.uuid4().hex[:6]}:1")  # fmt: skip
    assert refused.returncode != 0
    assert "unauthorized" in refused.stderr.lower() or "401" in refused.stderr, refused.stderr


def test_secret_files_private_and_read_by_registry(shared_registry, secured):
    c, repo, image = secured
    for name in ("key", "htpasswd", "password", "proxy_config", "push_config", "front_config"):
        mode = os.stat(shared_registry.paths[name]).st_mode & 0o777
        assert mode == 0o600, f"{shared_registry.paths[name]} is {mode:o}"
    # The registry reads them: TLS with that key and login against that htpasswd work.
    for kind in KINDS:
        assert c.status(kind, "/v2/", True) == 200
        assert c.digest(kind, f"{repo}:1") == image.digest, kind


def test_passwords_not_in_verbose_output_nor_container_metadata(registry):
    upstream_password = f"up-{uuid.uuid4().hex}"
    proc, facts = registry.apply(
        {
            "buildset_registry_proxy_username": "upstream-user",
            "buildset_registry_proxy_password": upstream_password,
        },
        verbosity=3,
    )
    assert proc.returncode == 0, proc.output[-3000:]
    # Sanity: -vvv really is verbose (module arguments are logged).
    assert "ESTABLISH LOCAL CONNECTION" in proc.output
    assert facts["password"] not in proc.output
    assert upstream_password not in proc.output
    tokens = derive_tokens(facts["username"], facts["password"])
    hashed = open(registry.paths["htpasswd"]).read().split(":", 1)[1].strip()
    for secret in (*tokens.values(), hashed):
        assert secret not in proc.output
    for name in registry.containers:
        inspect = docker("inspect", name)
        assert inspect.returncode == 0, inspect.output
        assert upstream_password not in inspect.stdout
        assert facts["password"] not in inspect.stdout
        assert not any(secret in inspect.stdout for secret in (*tokens.values(), hashed))
        assert json.loads(inspect.stdout)[0]["State"]["Running"]
    # The proxy got the credentials, from its 0600 config file.
    config = open(registry.paths["proxy_config"]).read()
    assert upstream_password in config
    assert os.stat(registry.paths["proxy_config"]).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("kind", KINDS)
def test_tls_below_1_2_refused_by_server(secured, kind):
    c, _, _ = secured
    # SECLEVEL=0 lets this client offer TLS 1.0/1.1, so a failure is the server's refusal.
    for version in ("-tls1", "-tls1_1"):
        old = c.s_client(kind, version, "-cipher", "DEFAULT:@SECLEVEL=0")
        assert old.returncode != 0, f"{version} accepted:\n{old.output[-2000:]}"
        assert "no protocols available" not in old.output, old.output[-2000:]
        assert "alert protocol version" in old.output, old.output[-2000:]
    new = c.s_client(kind, "-tls1_2")
    assert new.returncode == 0, new.output[-2000:]
    assert "Protocol  : TLSv1.2" in new.output or "TLSv1.2" in new.output
    assert "Verify return code: 0 (ok)" in new.output
