"""Every push flow through `port`: image indexes as buildx writes them (two
platforms and an attestation child), pushed with ctr (containerd's pusher,
the one buildkit and nerdctl use: it HEADs each child by digest first and
skips those answering 200), skopeo --all and podman manifest push --all;
indexes that re-publish upstream's children; reads whose Accept leaves the
pushed type out; and the 404 (never 500) of a manifest nobody has.

The registry has a stand-in upstream of its own, seeded with an index and
a Docker schema 2 image under names the tests push again.
"""

import json
import shutil
import uuid

import pytest
from clients import Clients, Ctr, DockerCLI, hosts_dir, make_image, podman, sha256, upstream_digest
from harness import Registry, docker, run
from indexes import OCI_INDEX, index_of, make_index
from use_fixtures import apply_use_ok, ctr_pull_digest
from use_fixtures import ctr as use_ctr

UP_INDEX = "library/flow-up:1"
ACCEPT, PINNED = "library/flow-accept:1", "library/flow-pinned:1"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ctr = Ctr("it_push_flows", timeout=300)


@pytest.fixture(scope="module")
def flows(tmp_path_factory, private_upstream):
    tmp = tmp_path_factory.mktemp("flows")
    upstream = private_upstream(ACCEPT, PINNED)
    up_index = make_index(tmp / "up-index", "upstream's index")
    seeded = run(["skopeo", "--insecure-policy", "copy", "--all", "--dest-tls-verify=false", up_index.oci(),
                  f"docker://127.0.0.1:{upstream['port']}/{UP_INDEX}"], timeout=120)  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    reg = Registry(tmp, upstream["url"])
    try:
        _, facts = reg.apply_ok()
        c = Clients(facts, tmp)
        yield type("Flows", (), dict(reg=reg, facts=facts, c=c, tmp=tmp, upstream=upstream, up_index=up_index,
                                     port=c.addresses["proxy"], push_port=c.addresses["push"],
                                     hosts=hosts_dir(tmp / "hosts", c.addresses["proxy"], c.ca)))  # fmt: skip
    finally:
        ctr.cleanup()
        reg.remove()
        shutil.rmtree(tmp / "root", ignore_errors=True)


def unique(name):
    return f"{name}-{uuid.uuid4().hex[:6]}"


def ctr_push(flows, index, ref, kind="proxy"):
    """Import index as ADDRESS/ref into ctr and push it with the login."""
    address = flows.c.addresses[kind]
    full = f"{address}/{ref}"
    archive = index.archive(full)
    imported = ctr("image", "import", "--all-platforms", str(archive))
    assert imported.returncode == 0, imported.output
    hosts = flows.hosts if kind == "proxy" else hosts_dir(flows.tmp / unique("hosts"), address, flows.c.ca)
    pushed = ctr("image", "push", "--hosts-dir", hosts, "-u", flows.c.creds, full)
    assert pushed.returncode == 0, pushed.output
    return full


def served(flows, kind, ref, accept=None):
    """(status, digest header, body) of GET manifest ref at kind, with the login."""
    name, _, tag = ref.rpartition("@") if "@" in ref else ref.rpartition(":")
    out = run(["curl", "-sS", "-u", flows.c.creds, "--cacert", str(flows.c.ca), "-D", "-",
               *(["-H", f"Accept: {accept}"] if accept else []),
               f"https://{flows.c.addresses[kind]}/v2/{name}/manifests/{tag}"], text=False, timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {k.lower(): v for k, v in headers.items()}
    return int(lines[0].split()[1]), headers.get("docker-content-digest"), body


def raw_digest(flows, kind, ref):
    proc, raw = flows.c.manifest(kind, ref)
    assert proc.returncode == 0, proc.output
    return sha256(raw)


# --- 404, never 500 ----------------------------------------------------------------


def missing_paths():
    digest = "sha256:" + "0" * 64
    for name in ("library/flow-nothing", "org/flow-nothing", "quay.io/org/flow-nothing", "flow-nothing"):
        for reference in ("1", digest):
            yield f"/v2/{name}/manifests/{reference}"


def check_missing(flows):
    """Every missing manifest, HEAD and GET, answers 404 with distribution's error."""
    answers = {}
    for path in missing_paths():
        for method in ("HEAD", "GET"):
            out = run(["curl", "-sS", "-u", flows.c.creds, "--cacert", str(flows.c.ca), "-o", "-", "-D", "-",
                       *(["-I"] if method == "HEAD" else []), f"https://{flows.port}{path}"],
                      timeout=30, text=False)  # fmt: skip
            assert out.returncode == 0, out.stderr
            head, _, body = out.stdout.decode().partition("\r\n\r\n")
            answers[method, path] = int(head.split()[1])
            if method == "GET" and answers[method, path] == 404:
                assert json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN", body
                assert "docker-distribution-api-version: registry/2.0" in head.lower()
    assert {k: v for k, v in answers.items() if v != 404} == {}


def test_a_manifest_nobody_has_is_404_never_500_with_the_upstream_up(flows):
    check_missing(flows)


def test_a_manifest_nobody_has_is_404_never_500_with_the_upstream_stopped(flows):
    docker("stop", flows.upstream["name"], check=True)
    try:
        check_missing(flows)
    finally:
        docker("start", flows.upstream["name"], check=True)
        # Back before the next test: the proxy asks it on every pull by tag.
        for _ in range(100):
            if run(["curl", "-fsS", "-o", "/dev/null", flows.upstream["url"] + "/v2/"]).returncode == 0:
                break


# --- new indexes ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["library/flow-new", "org/flow-new", "quay.io/org/flow-new"])
def test_ctr_pushes_a_new_index_with_an_attestation_and_every_client_pulls_it_back(flows, name, tmp_path):
    index = make_index(tmp_path / "index", unique("new"))
    ref = f"{unique(name)}:1"
    full = ctr_push(flows, index, ref)
    assert ctr.digest(full) == index.digest
    for kind in ("proxy", "push"):
        assert raw_digest(flows, kind, ref) == index.digest
        for child in index.children:
            repo = ref.rsplit(":", 1)[0]
            assert raw_digest(flows, kind, f"{repo}@{child.digest}") == child.digest
    # ctr, afresh: this machine's platform, unpacked; then every platform's
    # content, by tag and by each child's digest (the attestation's in-toto
    # layer cannot be unpacked).
    ctr.cleanup()
    login = ("--hosts-dir", flows.hosts, "-u", flows.c.creds)
    pulled = ctr("image", "pull", *login, full)
    assert pulled.returncode == 0, pulled.output
    assert ctr.digest(full) == index.digest
    fetched = ctr("content", "fetch", "--all-platforms", *login, full)
    assert fetched.returncode == 0, fetched.output
    for child in index.children:
        by_digest = f"{full.rsplit(':', 1)[0]}@{child.digest}"
        fetched = ctr("content", "fetch", "--all-platforms", *login, by_digest)
        assert fetched.returncode == 0, (child.platform, fetched.output)
        assert sha256(ctr("content", "get", child.digest, text=False).stdout) == child.digest
    # skopeo --all: the very index and every child.
    back = flows.c.skopeo("copy", "--all", "--src-creds", flows.c.creds, "--src-cert-dir", str(flows.c.cert_dir),
                          f"docker://{full}", f"oci:{tmp_path / 'back'}:1")  # fmt: skip
    assert back.returncode == 0, back.stderr
    top = json.loads((tmp_path / "back" / "index.json").read_text())
    assert [m["digest"] for m in top["manifests"]] == [index.digest]
    for child in index.children:
        assert (tmp_path / "back" / "blobs" / "sha256" / child.digest.split(":", 1)[1]).exists()


def test_docker_pulls_this_machines_platform_of_a_pushed_index(flows, tmp_path):
    index = make_index(tmp_path / "index", unique("docker"))
    ref = f"{unique('library/flow-docker')}:1"
    ctr_push(flows, index, ref)
    cli = DockerCLI(flows.facts, tmp_path)
    try:
        assert cli.login("proxy").returncode == 0
        pulled = cli.pull("proxy", ref)
        assert pulled.returncode == 0, pulled.output
        assert cli.repo_digest("proxy", ref) == [index.digest]
        arch = cli("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", f"{flows.port}/{ref}")
        assert arch.stdout.strip() == "linux/amd64"
    finally:
        cli.close()


def test_ctr_pushes_an_index_through_push_port_and_port_serves_it(flows, tmp_path):
    index = make_index(tmp_path / "index", unique("push-port"))
    ref = f"{unique('org/flow-push-port')}:1"
    ctr_push(flows, index, ref, kind="push")
    assert raw_digest(flows, "push", ref) == index.digest
    assert raw_digest(flows, "proxy", ref) == index.digest


# --- re-published upstream names --------------------------------------------------------


def test_an_index_of_a_subset_of_upstreams_children_pushes_and_is_served_as_pushed(flows, tmp_path):
    up = flows.up_index
    amd64 = up.platform("linux/amd64")
    subset = index_of(tmp_path / "subset", [amd64], up.blobs)
    ref = "library/flow-up:" + unique("subset")
    ctr_push(flows, subset, ref)
    for kind in ("proxy", "push"):
        assert raw_digest(flows, kind, ref) == subset.digest
        # The child went to the push registry, though upstream had it.
        assert raw_digest(flows, kind, f"library/flow-up@{amd64.digest}") == amd64.digest


def test_upstreams_children_with_other_annotations_push_and_are_served_as_pushed(flows, tmp_path):
    up = flows.up_index
    annotated = index_of(tmp_path / "annotated", list(up.children), up.blobs, {"org.example.rebuilt": "yes"})
    assert annotated.digest != up.digest
    ref = "library/flow-up:" + unique("annotated")
    ctr_push(flows, annotated, ref)
    for kind in ("proxy", "push"):
        assert raw_digest(flows, kind, ref) == annotated.digest


def test_an_unchanged_copy_of_upstreams_index_pushed_under_its_name_lands_in_the_push_registry(flows):
    up = flows.up_index
    assert raw_digest(flows, "proxy", UP_INDEX) == up.digest  # from upstream, through the cache
    assert flows.c.manifest("push", UP_INDEX)[0].returncode != 0
    ctr_push(flows, up, UP_INDEX)
    assert raw_digest(flows, "push", UP_INDEX) == up.digest
    for child in up.children:
        assert raw_digest(flows, "push", f"library/flow-up@{child.digest}") == child.digest


# --- the other pushers ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["proxy", "push"])
def test_skopeo_copies_an_index_both_ways(flows, kind, tmp_path):
    index = make_index(tmp_path / "index", unique("skopeo"))
    dest = f"docker://{flows.c.addresses[kind]}/{unique('org/flow-skopeo')}:1"
    pushed = flows.c.skopeo("copy", "--all", "--dest-creds", flows.c.creds, "--dest-cert-dir", str(flows.c.cert_dir),
                            index.oci(), dest)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    back = flows.c.skopeo("copy", "--all", "--src-creds", flows.c.creds, "--src-cert-dir", str(flows.c.cert_dir),
                          dest, f"oci:{tmp_path / 'back'}:1")  # fmt: skip
    assert back.returncode == 0, back.stderr
    top = json.loads((tmp_path / "back" / "index.json").read_text())
    assert [m["digest"] for m in top["manifests"]] == [index.digest]


def test_podman_manifest_push_all_through_port(flows, tmp_path):
    index = make_index(tmp_path / "index", unique("podman"))
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {flows.port: {"auth": _basic(flows.c.creds)}}}))
    env = {"REGISTRY_AUTH_FILE": str(auth)}
    listname = f"localhost/{unique('flow-podman-list')}"
    dest = f"{flows.port}/{unique('org/flow-podman')}:1"
    try:
        made = podman(tmp_path, "manifest", "create", listname, env=env)
        assert made.returncode == 0, made.stderr
        for platform in ("linux/amd64", "linux/arm64"):
            child = index.platform(platform)
            added = podman(tmp_path, "manifest", "add", listname, f"oci:{_single(index, child, tmp_path)}", env=env)
            assert added.returncode == 0, added.stderr
        pushed = podman(tmp_path, "manifest", "push", "--all", "--cert-dir", str(flows.c.cert_dir), listname,
                        f"docker://{dest}", env=env)  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        listed = json.loads(podman(tmp_path, "manifest", "inspect", listname, env=env).stdout)
        raw = flows.c.manifest("proxy", dest.split("/", 1)[1])[1]
        served_list = json.loads(raw)
        assert sorted(m["digest"] for m in served_list["manifests"]) == sorted(m["digest"] for m in listed["manifests"])
        for m in served_list["manifests"]:
            assert raw_digest(flows, "push", f"{dest.split('/', 1)[1].rsplit(':', 1)[0]}@{m['digest']}") == m["digest"]
    finally:
        podman(tmp_path, "manifest", "rm", listname, env=env)


def _basic(creds):
    import base64

    return base64.b64encode(creds.encode()).decode()


def _single(index, child, tmp_path):
    """An OCI layout holding child alone (podman adds images, not indexes)."""
    path = tmp_path / f"single-{child.digest[7:19]}"
    (path / "blobs" / "sha256").mkdir(parents=True)
    for digest, data in index.blobs.items():
        (path / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
    top = {"schemaVersion": 2, "manifests": [dict(child.descriptor, annotations={"org.opencontainers.image.ref.name":
                                                                                "latest"})]}  # fmt: skip
    (path / "index.json").write_text(json.dumps(top))
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return f"{path}:latest"


# --- shadowing whatever the Accept ------------------------------------------------------------


def test_a_pushed_index_is_never_answered_with_upstreams_image_whatever_the_accept(flows, tmp_path):
    up_digest = served(flows, "proxy", ACCEPT, MANIFEST_V2)[1]
    assert up_digest, "upstream's schema 2 image is not served through port"
    index = make_index(tmp_path / "index", unique("accept"))
    ctr_push(flows, index, ACCEPT)
    for accept in (MANIFEST_V2, MANIFEST_LIST, f"{MANIFEST_V2}, {MANIFEST_LIST}", OCI_INDEX, None):
        status, digest, body = served(flows, "proxy", ACCEPT, accept)
        assert digest != up_digest, accept
        assert (status, digest) == (200, index.digest) or status == 404, (accept, status, body[:200])
        if status == 200:
            assert sha256(body) == index.digest


def test_a_pushed_schema2_image_is_served_whatever_the_accept(flows, tmp_path):
    image = make_image(tmp_path / "img", label="accept-v2")
    ref = f"{unique('library/flow-accept-v2')}:1"
    assert flows.c.push(image, "proxy", ref).returncode == 0
    for accept in (MANIFEST_V2, OCI_INDEX, "application/vnd.oci.image.manifest.v1+json", None):
        status, digest, _ = served(flows, "proxy", ref, accept)
        assert (status, digest) == (200, image.digest), accept


# --- pulls by digest -------------------------------------------------------------------------


def test_an_image_pinned_by_digest_pulls_through_the_mirror_use_set_up_also_with_the_upstream_stopped(
    flows, snapshot, tmp_path
):
    """containerd resolves name@sha256:... with a HEAD by digest: the
    proxy's cache answers it, with the upstream gone too (else ctr would go
    to Docker Hub's own name, kept on loopback here, and fail)."""
    digest = upstream_digest(flows.upstream, PINNED)
    pinned = f"docker.io/{PINNED.split(':')[0]}@{digest}"
    snapshot(flows.facts)
    apply_use_ok(tmp_path, flows.facts)
    try:
        assert ctr_pull_digest(pinned) == digest
        docker("stop", flows.upstream["name"], check=True)
        use_ctr.cleanup()
        assert ctr_pull_digest(pinned) == digest
    finally:
        use_ctr.cleanup()
        docker("start", flows.upstream["name"], check=True)
