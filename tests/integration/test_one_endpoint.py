"""The one endpoint (`port`) with real clients: it takes pushes, serves
pushed images first and everything else from the upstream's cache, behind
the front's login (a token challenge); `push_port` takes pushes too.

Each registry here has a stand-in upstream of its own (shadowing needs an
upstream that has the pushed names too), and clients get explicit
credentials and certificates: the `use` entry point's part is in
test_use.py.
"""

import concurrent.futures
import json
import os
import re
import shutil
import uuid

import pytest
from clients import (
    MANIFEST_V2,
    Clients,
    Ctr,
    DockerCLI,
    hosts_dir,
    make_image,
    podman,
    pulled_matches,
    sha256,
    upstream_digest,
)
from harness import Registry, docker, run

SHADOWED, UPSTREAM_ONLY, BASE = "library/one-shadowed:1", "library/one-upstream:1", "library/one-base:1"
QUAY = "quay.io/one/app:1"
ctr = Ctr("it_one_endpoint", timeout=300)


@pytest.fixture(scope="module")
def one(tmp_path_factory, private_upstream):
    """A registry whose pushed images shadow upstream ones of the same name."""
    tmp = tmp_path_factory.mktemp("one")
    upstream = private_upstream(SHADOWED, UPSTREAM_ONLY, BASE)
    reg = Registry(tmp, upstream["url"])
    try:
        _, facts = reg.apply_ok()
        c = Clients(facts, tmp)
        shadow = make_image(tmp / "shadow", label="one-shadow")
        proc = c.push(shadow, "proxy", SHADOWED)
        assert proc.returncode == 0, proc.stderr
        yield type(
            "One",
            (),
            dict(reg=reg, facts=facts, c=c, tmp=tmp, upstream=upstream, shadow=shadow,
                 address=f"{facts['host']}:{facts['port']}"),
        )  # fmt: skip
    finally:
        reg.remove()
        shutil.rmtree(tmp / "root", ignore_errors=True)


def test_the_fact_names_one_endpoint_as_the_only_mirror(one):
    assert one.facts["mirrors"] == [one.address]
    assert one.facts["push_port"] != one.facts["port"]


def test_skopeo_gets_pushed_images_first_and_the_rest_from_upstream(one, tmp_path):
    assert one.shadow.digest != upstream_digest(one.upstream, SHADOWED)
    assert one.c.digest("proxy", SHADOWED) == one.shadow.digest
    assert one.c.digest("proxy", UPSTREAM_ONLY) == upstream_digest(one.upstream, UPSTREAM_ONLY)
    proc = one.c.pull("proxy", SHADOWED, tmp_path / "s")
    assert proc.returncode == 0, proc.stderr
    assert pulled_matches(tmp_path / "s", one.shadow) == []


def test_push_port_takes_pushes_and_serves_pushed_images_only(one, tmp_path):
    image = make_image(tmp_path / "img", label="via-push-port")
    ref = f"buildset/via-push-port-{uuid.uuid4().hex[:6]}:1"
    assert one.c.push(image, "push", ref).returncode == 0
    assert one.c.digest("proxy", ref) == image.digest
    assert one.c.digest("push", ref) == image.digest
    # push_port has no proxy behind it: upstream's names are not there.
    assert one.c.manifest("push", UPSTREAM_ONLY)[0].returncode != 0


def test_another_namespace_is_served_from_pushed_content_only(one, tmp_path):
    image = make_image(tmp_path / "quay", label="one-quay")
    assert one.c.push(image, "proxy", QUAY).returncode == 0
    assert one.c.digest("proxy", QUAY) == image.digest
    # Never asked of the proxy (which caches Docker Hub): unknown stays 404.
    assert one.c.status("proxy", "/v2/quay.io/one/nothing/manifests/1", True) == 404


def test_an_image_on_upstreams_layers_pushes_to_the_same_repository_and_pulls_back(one, tmp_path):
    """Pushers HEAD each blob and skip those that answer 200: a blob HEAD
    must not reach the proxy, which has upstream's blobs."""
    src = f"docker://127.0.0.1:{one.upstream['port']}/{BASE}"
    dest = f"docker://{one.address}/library/one-base:rebuilt"
    proc = one.c.skopeo(
        "copy", "--src-tls-verify=false", "--dest-creds", one.c.creds, "--dest-cert-dir", str(one.c.cert_dir), src, dest
    )
    assert proc.returncode == 0, proc.stderr
    assert one.c.digest("proxy", "library/one-base:rebuilt") == upstream_digest(one.upstream, BASE)
    # The same through docker: pulled through the proxy, retagged, pushed back.
    cli = DockerCLI(one.facts, tmp_path)
    try:
        assert cli.login("proxy").returncode == 0
        assert cli.pull("proxy", BASE).returncode == 0
        tag = f"{one.address}/library/one-base:docker"
        assert cli("tag", f"{one.address}/{BASE}", tag).returncode == 0
        cli.tags.append(tag)
        pushed = cli("push", tag)
        assert pushed.returncode == 0, pushed.output
        assert one.c.digest("proxy", "library/one-base:docker") == upstream_digest(one.upstream, BASE)
    finally:
        cli.close()


def test_docker_pushes_and_pulls_by_direct_reference(one, tmp_path):
    cli = DockerCLI(one.facts, tmp_path)
    try:
        assert cli.login("proxy").returncode == 0
        assert cli.login("push").returncode == 0
        assert cli.pull("proxy", SHADOWED).returncode == 0
        assert cli.repo_digest("proxy", SHADOWED) == [one.shadow.digest]
        assert cli.pull("proxy", UPSTREAM_ONLY).returncode == 0
        assert cli.repo_digest("proxy", UPSTREAM_ONLY) == [upstream_digest(one.upstream, UPSTREAM_ONLY)]
        (tmp_path / "ctx").mkdir()
        (tmp_path / "ctx" / "f").write_bytes(os.urandom(4096))
        run(["tar", "-C", str(tmp_path / "ctx"), "-cf", str(tmp_path / "l.tar"), "."], check=True)
        for kind in ("proxy", "push"):
            tag = f"{cli.addresses[kind]}/buildset/docker-{kind}-{uuid.uuid4().hex[:6]}:1"
            assert cli("import", str(tmp_path / "l.tar"), tag).returncode == 0
            cli.tags.append(tag)
            pushed = cli("push", tag)
            assert pushed.returncode == 0, pushed.output
            assert one.c.digest("proxy", tag.split("/", 1)[1]) == pushed_digest(pushed.output)
    finally:
        cli.close()


def pushed_digest(output):
    """The manifest digest `docker push` reports."""
    found = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
    assert found, output
    return found.group(1)


def test_ctr_pulls_pushed_images_first_and_pushes_with_the_login(one, tmp_path):
    hosts = hosts_dir(tmp_path / "hosts", one.address, one.c.ca)
    opts = ["--hosts-dir", hosts, "-u", one.c.creds]
    try:
        for ref, digest in (
            (SHADOWED, one.shadow.digest),
            (UPSTREAM_ONLY, upstream_digest(one.upstream, UPSTREAM_ONLY)),
        ):
            full = f"{one.address}/{ref}"
            proc = ctr("image", "pull", *opts, full)
            assert proc.returncode == 0, proc.output
            assert ctr.digest(full) == digest
        pushed = f"{one.address}/buildset/ctr-{uuid.uuid4().hex[:6]}:1"
        assert ctr("image", "tag", f"{one.address}/{UPSTREAM_ONLY}", pushed).returncode == 0
        proc = ctr("image", "push", *opts, pushed)
        assert proc.returncode == 0, proc.output
        assert one.c.digest("proxy", pushed.split("/", 1)[1]) == upstream_digest(one.upstream, UPSTREAM_ONLY)
        # Without the login, ctr gets no write token.
        refused = ctr("image", "push", "--hosts-dir", hosts, pushed.replace(":1", ":anon"), timeout=60)
        assert refused.returncode != 0
    finally:
        ctr.cleanup()


def test_an_upstream_name_is_cached_and_served_with_the_upstream_stopped(one, tmp_path, private_upstream):
    upstream = private_upstream("library/one-cached:1")
    reg = Registry(tmp_path, upstream["url"])
    try:
        _, facts = reg.apply_ok()
        c = Clients(facts, tmp_path)
        expected = upstream_digest(upstream, "library/one-cached:1")
        assert c.pull("proxy", "library/one-cached:1", tmp_path / "first").returncode == 0
        docker("stop", upstream["name"], check=True)
        proc = c.pull("proxy", "library/one-cached:1", tmp_path / "again")
        assert proc.returncode == 0, proc.stderr
        assert sha256((tmp_path / "again" / "manifest.json").read_bytes()) == expected
    finally:
        reg.remove()


def test_with_the_push_registry_down_a_pushed_name_fails_and_never_comes_from_upstream(one, tmp_path):
    push = one.reg.vars["buildset_registry_push_container"]
    docker("stop", push, check=True)
    try:
        proc, raw = one.c.manifest("proxy", SHADOWED)
        assert proc.returncode != 0, "a pushed name came back with the push registry down"
        assert raw == b"", raw[:300]
        assert one.c.status("proxy", f"/v2/{SHADOWED.split(':')[0]}/manifests/1", True) == 502
    finally:
        docker("start", push, check=True)
    # A re-run waits until it answers again; the pushed image is still served.
    one.reg.apply_ok()
    assert one.c.digest("proxy", SHADOWED) == one.shadow.digest


def test_ten_parallel_pushes_through_the_one_endpoint(one, tmp_path):
    images = {f"buildset/par-one-{uuid.uuid4().hex[:6]}-{i}:1": make_image(tmp_path / f"p{i}", size=512 * 1024 + i)
              for i in range(10)}  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        procs = dict(zip(images, pool.map(lambda ref: one.c.push(images[ref], "proxy", ref), images)))
    assert {ref: p.stderr for ref, p in procs.items() if p.returncode != 0} == {}
    for ref, image in images.items():
        assert one.c.digest("proxy", ref) == image.digest


# --- the login -----------------------------------------------------------------------


def curl(*args):
    proc = run(["curl", "-sS", *args], timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def token(c, kind, user=None):
    out = curl("--cacert", str(c.ca), "-w", "\n%{http_code}", *(["-u", user] if user else []),
               f"https://{c.addresses[kind]}/token?service=buildset-registry&scope=repository:x:pull")  # fmt: skip
    body, status = out.rsplit("\n", 1)
    return int(status), (json.loads(body).get("token") if status == "200" else None)


def status_with(c, kind, path, authorization, method="GET"):
    out = curl("--cacert", str(c.ca), "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "-H", f"Accept: {MANIFEST_V2}",
               "-H", f"Authorization: {authorization}", f"https://{c.addresses[kind]}{path}")  # fmt: skip
    return int(out)


@pytest.fixture(scope="module")
def anonymous(make_registry, tmp_path_factory):
    reg = make_registry("anonymous")
    _, facts = reg.apply_ok({"buildset_registry_anonymous_pull": True})
    assert facts["anonymous_pull"] is True
    c = Clients(facts, tmp_path_factory.mktemp("anon"))
    image = make_image(c.workdir / "img", label="anon")
    assert c.push(image, "proxy", "buildset/anon:1").returncode == 0
    return reg, facts, c, image


def test_the_challenge_names_the_token_endpoint_at_the_address_the_client_used(one):
    out = curl("--cacert", str(one.c.ca), "-D", "-", "-o", "/dev/null", f"https://{one.address}/v2/").lower()
    assert out.startswith("http/") and " 401" in out.splitlines()[0]
    assert f'www-authenticate: bearer realm="https://{one.address}/token",service="buildset-registry"' in out
    assert "docker-distribution-api-version: registry/2.0" in out.lower()


@pytest.mark.parametrize("kind", ["proxy", "push"])
def test_login_required_to_write_and_to_read_what_was_not_pushed(one, kind):
    assert token(one.c, kind, one.c.creds + "x") == (401, None)
    status, write = token(one.c, kind, one.c.creds)
    assert status == 200 and write
    path = f"/v2/{SHADOWED.split(':')[0]}/manifests/1"
    assert status_with(one.c, kind, path, "Bearer " + write) == 200
    # Without credentials: a token that reads what the buildset pushed, nothing else.
    status, pushed = token(one.c, kind)
    assert status == 200 and pushed and pushed != write
    assert status_with(one.c, kind, path, "Bearer " + pushed) == 200
    upstream_only = f"/v2/{UPSTREAM_ONLY.split(':')[0]}/manifests/1"
    assert status_with(one.c, kind, upstream_only, "Bearer " + pushed) == 404
    assert status_with(one.c, kind, "/v2/buildset/x/blobs/uploads/", "Bearer " + pushed, "POST") == 401
    assert status_with(one.c, kind, path, "Bearer " + pushed, "DELETE") == 401
    assert status_with(one.c, kind, path, "Bearer " + "0" * 64) == 401
    assert status_with(one.c, kind, "/v2/buildset/x/blobs/uploads/", "Bearer made-up", "POST") == 401
    assert one.c.status(kind, path) == 401
    assert one.c.status(kind, path, True) == 200
    assert one.c.status(kind, path, "zuul:wrong") == 401


def test_a_push_without_credentials_fails_whether_or_not_reads_are_anonymous(one, anonymous, tmp_path):
    image = make_image(tmp_path / "img", label="nocreds")
    for c in (one.c, anonymous[2]):
        proc = c.skopeo("copy", "--dest-cert-dir", str(c.cert_dir), f"dir:{image.path}",
                        f"docker://{c.addresses['proxy']}/buildset/nocreds:1")  # fmt: skip
        assert proc.returncode != 0
        assert "unauthorized" in proc.stderr.lower() or "401" in proc.stderr, proc.stderr


def test_anonymous_pull_hands_out_a_read_token_that_cannot_write(anonymous, tmp_path):
    _, facts, c, image = anonymous
    status, read = token(c, "proxy")
    assert status == 200 and read
    assert token(c, "proxy", c.creds + "x") == (401, None)
    assert status_with(c, "proxy", "/v2/buildset/anon/manifests/1", "Bearer " + read) == 200
    assert status_with(c, "proxy", "/v2/buildset/anon/blobs/uploads/", "Bearer " + read, "POST") == 401
    assert status_with(c, "proxy", "/v2/buildset/anon/manifests/1", "Bearer " + read, "DELETE") == 401
    # skopeo without credentials follows the challenge and pulls.
    proc = c.skopeo("copy", "--src-cert-dir", str(c.cert_dir), f"docker://{c.addresses['proxy']}/buildset/anon:1",
                    f"dir:{tmp_path / 'pulled'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert pulled_matches(tmp_path / "pulled", image) == []


def test_without_anonymous_pull_skopeo_pulls_only_pushed_images_without_credentials(one, tmp_path):
    """zuul-registry's default: what the buildset pushed is readable
    without a login; the caches of the upstreams are not."""
    proc = one.c.skopeo("copy", "--src-cert-dir", str(one.c.cert_dir), f"docker://{one.address}/{SHADOWED}",
                        f"dir:{tmp_path / 'pushed'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert pulled_matches(tmp_path / "pushed", one.shadow) == []
    proc = one.c.skopeo("copy", "--src-cert-dir", str(one.c.cert_dir), f"docker://{one.address}/{UPSTREAM_ONLY}",
                        f"dir:{tmp_path / 'no'}")  # fmt: skip
    assert proc.returncode != 0 and not (tmp_path / "no" / "manifest.json").exists()


def test_nodes_with_the_same_login_accept_each_others_tokens(one, tmp_path):
    reg = Registry(tmp_path, one.upstream["url"])
    try:
        _, facts = reg.apply_ok({"buildset_registry_password": one.facts["password"]})
        other = Clients(facts, tmp_path)
        status, write = token(one.c, "proxy", one.c.creds)
        assert status == 200
        assert status_with(other, "proxy", "/v2/", "Bearer " + write) == 200
        assert token(other, "proxy", other.creds)[1] == write
    finally:
        reg.remove()


# --- a large layer ---------------------------------------------------------------------

GIB = 1 << 30


def big_image(path):
    """A one-layer OCI image whose layer is 1 GiB of random bytes, uncompressed."""
    path.mkdir(parents=True)
    layer = path / "layer.tar"
    digest = _write_big_layer(layer)
    layer.rename(path / digest.split(":", 1)[1])
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest]}},
                        sort_keys=True).encode()  # fmt: skip
    (path / sha256(config).split(":", 1)[1]).write_bytes(config)
    size = (path / digest.split(":", 1)[1]).stat().st_size
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": sha256(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": size, "digest": digest}],
    }).encode()  # fmt: skip
    (path / "manifest.json").write_bytes(manifest)
    (path / "version").write_text("Directory Transport Version: 1.1\n")
    return sha256(manifest), digest


def _write_big_layer(target):
    """A tar holding one 1 GiB file of random bytes; its sha256."""
    import hashlib
    import tarfile

    class Hashing:
        def __init__(self, f):
            self.f, self.h = f, hashlib.sha256()

        def write(self, data):
            self.h.update(data)
            return self.f.write(data)

    class Random:
        def __init__(self, size):
            self.left = size

        def read(self, n=-1):
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return os.urandom(n)

    with open(target, "wb") as f:
        hashing = Hashing(f)
        with tarfile.open(fileobj=hashing, mode="w|", bufsize=1 << 20) as tar:
            info = tarfile.TarInfo("big")
            info.size = GIB
            tar.addfile(info, Random(GIB))
    return "sha256:" + hashing.h.hexdigest()


def test_a_1gib_layer_pushes_through_the_one_endpoint_and_pulls_back_digest_clean(one, tmp_path):
    src = tmp_path / "big"
    _, layer_digest = big_image(src)
    ref = f"buildset/big-{uuid.uuid4().hex[:6]}:1"
    proc = one.c.push(type("I", (), {"path": src})(), "proxy", ref)
    assert proc.returncode == 0, proc.stderr
    served = one.c.digest("proxy", ref)
    dest = tmp_path / "back"
    proc = one.c.pull("proxy", ref, dest)
    assert proc.returncode == 0, proc.stderr
    manifest = (dest / "manifest.json").read_bytes()
    assert sha256(manifest) == served
    (layer,) = json.loads(manifest)["layers"]
    got = dest / layer["digest"].split(":", 1)[1]
    assert _file_digest(got) == layer["digest"]
    # skopeo compresses the layer on the way in; its content is the 1 GiB we made.
    assert _file_digest(got, gzipped=layer["mediaType"].endswith("gzip")) == layer_digest
    shutil.rmtree(src)
    shutil.rmtree(dest)
    # docker: the same size through the engine (it compresses and uploads in chunks).
    cli = DockerCLI(one.facts, tmp_path)
    try:
        assert cli.login("proxy").returncode == 0
        tag = f"{one.address}/buildset/big-docker-{uuid.uuid4().hex[:6]}:1"
        big = tmp_path / "docker-big"
        big.mkdir()
        _write_big_layer(big / "layer.tar")
        assert cli("import", str(big / "layer.tar"), tag, timeout=900).returncode == 0
        (big / "layer.tar").unlink()
        cli.tags.append(tag)
        pushed = cli("push", tag, timeout=900)
        assert pushed.returncode == 0, pushed.output
        digest = pushed_digest(pushed.output)
        assert one.c.digest("proxy", tag.split("/", 1)[1]) == digest
        assert cli("rmi", "-f", tag).returncode == 0
        pulled = cli("pull", tag, timeout=900)
        assert pulled.returncode == 0, pulled.output
        assert cli.repo_digest("proxy", tag.split("/", 1)[1]) == [digest]
    finally:
        cli.close()


def _file_digest(path, gzipped=False):
    import gzip
    import hashlib

    h = hashlib.sha256()
    with (gzip.open if gzipped else open)(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# --- a front that does not come up ---------------------------------------------------------


def test_a_front_image_without_caddy_fails_naming_the_variable_and_leaves_no_front(registry):
    proc, facts = registry.apply(
        {"buildset_registry_front_image": registry.vars.get("buildset_registry_image", "registry:2")}
    )
    assert proc.returncode != 0 and facts is None, proc.output[-3000:]
    assert "buildset_registry_front_image" in proc.output, proc.output[-3000:]
    assert "does not start" in proc.output and "caddy" in proc.output, proc.output[-3000:]
    front = registry.vars["buildset_registry_front_container"]
    assert docker("inspect", front).returncode != 0, "the front that cannot start was left behind"
    # With the right image, the same root comes up.
    registry.apply_ok()


def test_ctr_and_podman_pull_without_credentials_pushed_images_and_the_rest_only_with_anonymous_pull(
    one, anonymous, upstream, tmp_path
):
    """ctr asks for its token with a POST first (404 here), then a GET
    without credentials; podman follows the challenge the same way."""
    _, facts, c, image = anonymous
    (tmp_path / "no-auth.json").write_text("{}")
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "no-auth.json")}
    cases = (
        (c, "buildset/anon:1", image.digest),
        (c, upstream["images"][0], upstream_digest(upstream, upstream["images"][0])),
        (one.c, SHADOWED, one.shadow.digest),
        (one.c, UPSTREAM_ONLY, None),
    )
    pulled_refs = []
    try:
        for i, (clients, ref, digest) in enumerate(cases):
            full = f"{clients.addresses['proxy']}/{ref}"
            pulled_refs.append(full)
            hosts = hosts_dir(tmp_path / f"hosts-{i}", clients.addresses["proxy"], clients.ca)
            pulled = ctr("image", "pull", "--hosts-dir", hosts, full, timeout=120)
            assert (pulled.returncode == 0) is bool(digest), (full, pulled.output)
            if digest:
                assert ctr.digest(full) == digest
            pulled = podman(tmp_path, "pull", "-q", "--cert-dir", str(clients.cert_dir), full, env=env)
            assert (pulled.returncode == 0) is bool(digest), (full, pulled.stderr)
            if digest:
                inspect = podman(tmp_path, "image", "inspect", "-f", "{{.Digest}}", full, env=env)
                assert inspect.stdout.strip() == digest
    finally:
        ctr.cleanup()
        run(["podman", "rmi", "-f", *pulled_refs], env=env)
