"""Every namespace cached behind `port`, pushed images first in each, by
direct reference and by every path form clients use: `/v2/N/NAME`
(containers-image, buildkit with a path), `/v2/NAME?ns=N` (containerd on a
mirror without a path), `/v2/docker.io/NAME` (microk8s).

Stand-in upstreams for docker.io, quay.io and registry.k8s.io (with a
one-component name, as registry.k8s.io/pause), each holding the same name
with content of its own; and a namespace with no URL (pushed images only).
"""

import time
import uuid

import pytest
from clients import Clients, Ctr, hosts_dir, make_image, podman, sha256, upstream_digest
from harness import Registry, docker, run

SAME = "org/app:1"
OWN = {"docker.io": "library/hub-own:1", "quay.io": "org/quay-own:1", "registry.k8s.io": "pause:3.9"}
PUSH_ONLY = "registry.example.com:5000"
# As clients ask (with curl's */*, registry 2.8 rewrites a schema 2 manifest into schema 1).
ACCEPT = "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
ctr = Ctr("it_namespaces", timeout=300)


@pytest.fixture(scope="module")
def ns(tmp_path_factory, private_upstream):
    tmp = tmp_path_factory.mktemp("namespaces")
    upstreams = {name: private_upstream(SAME, own) for name, own in OWN.items()}
    reg = Registry(tmp, upstreams["docker.io"]["url"])
    namespaces = [[name, up["url"]] for name, up in upstreams.items()] + [PUSH_ONLY]
    try:
        proc, facts = reg.apply_ok({"buildset_registry_namespaces": namespaces})
        c = Clients(facts, tmp)
        digests = {(name, ref): upstream_digest(up, ref) for name, up in upstreams.items() for ref in (SAME, OWN[name])}
        yield type("NS", (), dict(reg=reg, facts=facts, c=c, tmp=tmp, up=upstreams, digests=digests, proc=proc,
                                  port=c.addresses["proxy"]))  # fmt: skip
    finally:
        ctr.cleanup()
        reg.remove()
        run(["rm", "-rf", str(tmp / "root")])


def get(ns, path, user=True):
    """(status, Docker-Content-Digest, seconds) of GET path at port."""
    cmd = ["curl", "-sS", "-o", "/dev/null", "-D", "-", "--cacert", str(ns.c.ca), "-H", ACCEPT,
           f"https://{ns.port}{path}"]  # fmt: skip
    if user:
        cmd[1:1] = ["-u", ns.c.creds]
    start = time.monotonic()
    out = run(cmd, timeout=60)
    took = time.monotonic() - start
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    digest = next(
        (line.split(": ", 1)[1].strip() for line in lines if line.lower().startswith("docker-content-")), None
    )
    return int(lines[0].split()[1]), digest, took


def manifest(name, tag="1"):
    return f"/v2/{name}/manifests/{tag}"


def test_the_fact_lists_the_namespaces_served_without_credentials(ns):
    assert ns.facts["namespaces"] == [{"name": n, "url": u["url"]} for n, u in ns.up.items()] + [
        {"name": PUSH_ONLY, "url": ""}
    ]
    # One proxy per namespace with a URL, each its own container and cache.
    proxy = ns.reg.vars["buildset_registry_proxy_container"]
    assert sorted(ns.reg.container_ids()) == sorted(
        [proxy, proxy + "-quay.io", proxy + "-registry.k8s.io", ns.reg.vars["buildset_registry_push_container"],
         ns.reg.vars["buildset_registry_front_container"]]
    )  # fmt: skip
    root = ns.reg.paths["root"]
    assert run(["test", "-d", f"{root}/cache"]).returncode == 0
    for name in ("quay.io", "registry.k8s.io"):
        assert run(["test", "-d", f"{root}/caches/{name}"]).returncode == 0


@pytest.mark.parametrize(
    "namespace,path",
    [
        ("docker.io", manifest("org/app")),
        ("docker.io", manifest("docker.io/org/app")),
        ("docker.io", manifest("org/app") + "?ns=docker.io"),
        ("quay.io", manifest("quay.io/org/app")),
        ("quay.io", manifest("org/app") + "?ns=quay.io"),
        ("quay.io", manifest("quay.io/org/app") + "?ns=quay.io"),
        ("registry.k8s.io", manifest("registry.k8s.io/org/app")),
        ("registry.k8s.io", manifest("org/app") + "?ns=registry.k8s.io"),
    ],
)
def test_each_path_form_gets_its_own_namespaces_image(ns, namespace, path):
    status, digest, _ = get(ns, path)
    assert (status, digest) == (200, ns.digests[namespace, SAME])


def test_a_one_component_name_comes_from_its_namespace(ns):
    want = ns.digests["registry.k8s.io", OWN["registry.k8s.io"]]
    for path in (manifest("registry.k8s.io/pause", "3.9"), manifest("pause", "3.9") + "?ns=registry.k8s.io"):
        assert get(ns, path)[:2] == (200, want), path
    # Nowhere else.
    assert get(ns, manifest("pause", "3.9"))[0] == 404
    assert get(ns, manifest("pause", "3.9") + "?ns=quay.io")[0] == 404


def test_nothing_collides_and_a_namespace_nobody_configured_is_404_at_once(ns):
    assert get(ns, manifest("org/quay-own"))[0] == 404  # quay.io's, not docker.io's
    assert get(ns, manifest("org/quay-own") + "?ns=registry.k8s.io")[0] == 404
    for path in (
        manifest("org/app") + "?ns=some.other.registry",
        manifest("some.other.registry/org/app"),
        manifest("org/app") + "?ns=not%2Fa%2Fhost",
        manifest(f"{PUSH_ONLY.replace(':', '_')}/org/app"),
        manifest("org/app") + f"?ns={PUSH_ONLY}",
    ):
        status, _, took = get(ns, path)
        assert status == 404 and took < 5, (path, status, took)


def test_a_pushed_image_wins_in_its_namespace_only(ns, tmp_path):
    image = make_image(tmp_path / "img", label="ns-pushed")
    ref = f"quay.io/org/pushed-{uuid.uuid4().hex[:6]}"
    assert ns.c.push(image, "proxy", f"{ref}:1").returncode == 0
    name = ref.split("/", 1)[1]
    for path in (manifest(ref), manifest(name) + "?ns=quay.io"):
        assert get(ns, path)[:2] == (200, image.digest), path
    assert get(ns, manifest(name))[0] == 404
    assert get(ns, manifest(name) + "?ns=registry.k8s.io")[0] == 404
    # Over an upstream name too: quay.io's org/app is the pushed one now; docker.io's stays.
    shadow = make_image(tmp_path / "shadow", label="ns-shadow")
    assert ns.c.push(shadow, "proxy", "quay.io/" + SAME).returncode == 0
    assert get(ns, manifest("quay.io/org/app"))[:2] == (200, shadow.digest)
    assert get(ns, manifest("org/app") + "?ns=quay.io")[:2] == (200, shadow.digest)
    assert get(ns, manifest("org/app"))[:2] == (200, ns.digests["docker.io", SAME])
    assert get(ns, manifest("registry.k8s.io/org/app"))[:2] == (200, ns.digests["registry.k8s.io", SAME])
    # A push-only namespace serves what was pushed under its path.
    own = make_image(tmp_path / "own", label="ns-push-only")
    assert ns.c.push(own, "proxy", f"{PUSH_ONLY.replace(':', '_')}/team/tool:1").returncode == 0
    assert get(ns, manifest("team/tool") + f"?ns={PUSH_ONLY}")[:2] == (200, own.digest)


def test_skopeo_podman_and_ctr_pull_by_direct_reference_also_from_the_cache_with_the_upstream_stopped(ns, tmp_path):
    ref = OWN["registry.k8s.io"]
    direct = f"{ns.port}/registry.k8s.io/{ref}"
    want = ns.digests["registry.k8s.io", ref]
    hosts = hosts_dir(tmp_path / "hosts", ns.port, ns.c.ca)
    (tmp_path / "auth.json").write_text("{}")
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    creds = ["--creds", ns.c.creds]

    def pulls():
        got = {}
        proc = ns.c.skopeo("inspect", "--raw", *creds, "--cert-dir", str(ns.c.cert_dir), f"docker://{direct}")
        got["skopeo"] = sha256(proc.stdout.encode()) if proc.returncode == 0 else proc.stderr
        ctr.cleanup()
        proc = ctr("image", "pull", "--hosts-dir", hosts, "-u", ns.c.creds, direct)
        got["ctr"] = ctr.digest(direct) if proc.returncode == 0 else proc.output[-300:]
        podman(tmp_path, "rmi", "-f", direct, env=env)
        proc = podman(tmp_path, "pull", "-q", *creds, "--cert-dir", str(ns.c.cert_dir), direct, env=env)
        if proc.returncode == 0:
            got["podman"] = podman(tmp_path, "image", "inspect", "-f", "{{.Digest}}", direct, env=env).stdout.strip()
        else:
            got["podman"] = proc.stderr
        return got

    try:
        assert pulls() == {"skopeo": want, "ctr": want, "podman": want}
        docker("stop", ns.up["registry.k8s.io"]["name"], check=True)
        assert pulls() == {"skopeo": want, "ctr": want, "podman": want}
    finally:
        docker("start", ns.up["registry.k8s.io"]["name"])
        podman(tmp_path, "rmi", "-f", direct, env=env)
        ctr.cleanup()


def test_one_namespaces_upstream_down_at_start_fails_neither_the_role_nor_the_others(ns, tmp_path, unused_port):
    reg = Registry(tmp_path, ns.up["docker.io"]["url"])
    dead = f"http://127.0.0.1:{unused_port}"
    namespaces = [["docker.io", ns.up["docker.io"]["url"]], ["quay.io", dead],
                  ["registry.k8s.io", ns.up["registry.k8s.io"]["url"]]]  # fmt: skip
    try:
        proc, facts = reg.apply_ok({"buildset_registry_namespaces": namespaces})
        assert "buildset_registry_namespaces" in proc.output and dead in proc.output, proc.output[-3000:]
        c = Clients(facts, tmp_path)
        other = type("NS", (), dict(port=c.addresses["proxy"], c=c))
        assert get(other, manifest("org/app"))[:2] == (200, ns.digests["docker.io", SAME])
        assert get(other, manifest("registry.k8s.io/org/app"))[:2] == (200, ns.digests["registry.k8s.io", SAME])
        status, _, took = get(other, manifest("quay.io/org/app"))
        assert status == 404 and took < 5, (status, took)
        # Pushed images in that namespace work meanwhile.
        image = make_image(tmp_path / "img", label="ns-down")
        assert c.push(image, "proxy", "quay.io/org/while-down:1").returncode == 0
        assert get(other, manifest("org/while-down") + "?ns=quay.io")[:2] == (200, image.digest)
    finally:
        reg.remove()
        run(["rm", "-rf", str(tmp_path / "root")])
