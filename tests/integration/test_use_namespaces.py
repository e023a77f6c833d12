"""Every namespace through `port` after `use`, by the image's own name: a
registry with a cache per namespace (stand-in upstreams for docker.io,
quay.io and registry.k8s.io, the last with a one-component name like
registry.k8s.io/pause), and skopeo, podman and ctr on this machine pulling
by the names the images have upstream, with no flags of their own:

- each namespace's upstream image comes through `port`, and again from
  the cache once its stand-in is stopped;
- an image pushed as HOST:PORT/quay.io/org/app wins for quay.io/org/app;
  the same name in docker.io and registry.k8s.io stays each one's own;
- buildkit's mirrors in /etc/buildkit/buildkitd.toml answer the requests
  buildkit makes (containerd's resolver: the mirror's path after /v2 and
  ?ns=N), with the CA written for it;
- absent puts buildkitd.toml (with the node's own table merged into ours
  meanwhile) back byte for byte.

The machine's configuration is put back after each test
(use_fixtures.Snapshot), and the upstreams' real names point at loopback
meanwhile (use_fixtures.hub_guard).
"""

import os
import subprocess
from types import SimpleNamespace

import pytest
from clients import Clients, make_image, manifest_digest, podman
from harness import docker, run
from use_fixtures import (
    BUILDKITD_TOML,
    Snapshot,
    apply_use_ok,
    ctr,
    ctr_pull_digest,
    make_use_registry,
    rmtree,
    use_upstream,
    watched_paths,
)

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

# One name in every upstream, each with content of its own; a name each
# namespace alone has (registry.k8s.io's of one component).
SAME = "org/app:1"
OWN = {"docker.io": "library/ns-hub:1", "quay.io": "org/quayonly:1", "registry.k8s.io": "pause:3.9"}
NAMESPACES = list(OWN)
SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"


def skopeo(*args, timeout=120):
    proc = run(["skopeo", *args], text=False, timeout=timeout)
    proc.output = proc.output.decode(errors="replace")
    return proc


def upstream_digest(upstream, name):
    proc = skopeo("inspect", "--raw", "--tls-verify=false", "docker://127.0.0.1:%d/%s" % (upstream["port"], name))
    assert proc.returncode == 0, proc.output
    return manifest_digest(proc.stdout)


def own_name(ns, name):
    return "%s/%s" % (ns, name)


@pytest.fixture(scope="module")
def buildset(tmp_path_factory, hub_guard):
    """A registry caching three stand-in upstreams, one per namespace, with
    an image pushed as HOST:PORT/quay.io/org/app:1; use applied for them,
    and everything it changed put back after the module."""
    tmp = tmp_path_factory.mktemp("use-ns")
    upstreams = {ns: use_upstream(SAME, own) for ns, own in OWN.items()}
    pairs = [[ns, up["url"]] for ns, up in upstreams.items()]
    reg = make_use_registry(tmp, upstreams["docker.io"]["url"], buildset_registry_namespaces=pairs)
    snap = None
    try:
        _, facts = reg.apply_ok()
        one = "%s:%d" % (facts["host"], facts["port"])
        pushed = make_image(tmp / "pushed", label="use-ns-pushed")
        proc = Clients(facts, tmp).push(pushed, "proxy", own_name("quay.io", SAME))
        assert proc.returncode == 0, proc.stderr
        snap = Snapshot(watched_paths([facts], NAMESPACES))
        used = apply_use_ok(tmp, facts, namespaces=pairs)
        yield SimpleNamespace(
            tmp=tmp,
            facts=facts,
            one=one,
            upstreams=upstreams,
            pushed=pushed,
            used=used,
            digests={ns: {name: upstream_digest(up, name) for name in (SAME, OWN[ns])} for ns, up in upstreams.items()},
        )
    finally:
        if snap is not None:
            snap.restore()
        ctr.cleanup()
        reg.remove()
        proxies = ["%s-%s" % (reg.vars["buildset_registry_proxy_container"], ns.replace(":", "_")) for ns in OWN]
        docker("rm", "-f", *proxies)
        docker("rm", "-f", *[up["name"] for up in upstreams.values()])
        rmtree(tmp / "root")


def podman_pull_digest(tmp_path, ref):
    podman(tmp_path, "rmi", "-f", ref)
    proc = podman(tmp_path, "pull", "-q", ref)
    try:
        assert proc.returncode == 0, proc.stderr
        return podman(tmp_path, "image", "inspect", "-f", "{{.Digest}}", ref).stdout.strip()
    finally:
        podman(tmp_path, "rmi", "-f", ref)


def skopeo_copy_digest(tmp_path, ref):
    """Copy ref, blobs and all, into a new dir: layout; its manifest's digest."""
    dest = tmp_path / ("copy-%s" % os.urandom(3).hex())
    proc = skopeo("copy", "docker://" + ref, "dir:%s" % dest)
    assert proc.returncode == 0, proc.output
    return manifest_digest((dest / "manifest.json").read_bytes())


def every_client(tmp_path, ref):
    """{client: digest} of ref pulled afresh by skopeo, podman and ctr."""
    return {
        "skopeo": skopeo_copy_digest(tmp_path, ref),
        "podman": podman_pull_digest(tmp_path, ref),
        "ctr": ctr_pull_digest(ref),
    }


def test_use_configured_every_namespace_for_every_client_family(buildset):
    files = {f["path"] for f in buildset.used.result["files"]}
    for ns in NAMESPACES:
        assert "/etc/containerd/certs.d/%s/hosts.toml" % ns in files
    assert str(BUILDKITD_TOML) in files
    assert buildset.used.result["clients"]["buildkit"] is True


@pytest.mark.parametrize("ns", NAMESPACES)
def test_every_client_pulls_each_namespace_by_its_own_name_then_from_the_cache_with_the_upstream_stopped(
    buildset, tmp_path, ns
):
    ref = own_name(ns, OWN[ns])
    want = buildset.digests[ns][OWN[ns]]
    try:
        assert every_client(tmp_path, ref) == dict.fromkeys(("skopeo", "podman", "ctr"), want)
        ctr.cleanup()  # ctr's content store too: the blobs come through `port` again
        assert docker("stop", buildset.upstreams[ns]["name"]).returncode == 0
        assert every_client(tmp_path, ref) == dict.fromkeys(("skopeo", "podman", "ctr"), want)
    finally:
        docker("start", buildset.upstreams[ns]["name"])
        ctr.cleanup()


def test_a_pushed_image_wins_in_its_namespace_and_nothing_collides_across_namespaces(buildset, tmp_path):
    try:
        got = {ns: every_client(tmp_path, own_name(ns, SAME)) for ns in NAMESPACES}
    finally:
        ctr.cleanup()
    clients = ("skopeo", "podman", "ctr")
    assert got["quay.io"] == dict.fromkeys(clients, buildset.pushed.digest)
    assert got["docker.io"] == dict.fromkeys(clients, buildset.digests["docker.io"][SAME])
    assert got["registry.k8s.io"] == dict.fromkeys(clients, buildset.digests["registry.k8s.io"][SAME])
    distinct = {buildset.pushed.digest, buildset.digests["docker.io"][SAME], buildset.digests["registry.k8s.io"][SAME]}
    assert len(distinct) == 3
    # The pushed one hides quay.io's upstream image of that name, which exists.
    assert buildset.digests["quay.io"][SAME] not in distinct


def buildkit_request(buildset, mirror, ns, name):
    """What buildkit asks a mirror for name's manifest (containerd's
    resolver: the mirror's path after /v2, then ?ns=N), with the CA and the
    credentials buildkit has; (status, digest or None)."""
    host, _, path = mirror.partition("/")
    repo, tag = name.rsplit(":", 1)
    url = "https://%s/v2/%s/manifests/%s?ns=%s" % (host, "/".join(p for p in (path, repo) if p), tag, ns)
    conf = tomllib.loads(BUILDKITD_TOML.read_text())
    (ca,) = conf["registry"][host]["ca"]
    user = "%s:%s" % (buildset.facts["username"], buildset.facts["password"])
    proc = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert", ca, "-u", user, "-H", "Accept: " + SCHEMA2, url],
        capture_output=True,
        timeout=60,
    )
    body, _, status = proc.stdout.rpartition(b"\n")
    return int(status or 0), (manifest_digest(body) if status == b"200" else None)


def test_buildkits_mirrors_answer_what_buildkit_asks_with_the_ca_written_for_it(buildset):
    conf = tomllib.loads(BUILDKITD_TOML.read_text())["registry"]
    assert conf["docker.io"]["mirrors"] == [buildset.one]
    for ns in ("quay.io", "registry.k8s.io"):
        assert conf[ns]["mirrors"] == ["%s/%s" % (buildset.one, ns)]
    with open(conf[buildset.one]["ca"][0]) as f:
        assert f.read() == buildset.facts["cert"]
    got = {ns: buildkit_request(buildset, conf[ns]["mirrors"][0], ns, OWN[ns]) for ns in NAMESPACES}
    assert got == {ns: (200, buildset.digests[ns][OWN[ns]]) for ns in NAMESPACES}
    assert buildkit_request(buildset, conf["quay.io"]["mirrors"][0], "quay.io", SAME) == (200, buildset.pushed.digest)


def test_absent_gives_buildkitd_toml_back_byte_for_byte_with_the_nodes_own_table(buildset, snapshot, tmp_path):
    snapshot(buildset.facts, namespaces=NAMESPACES)
    # What a node may have: settings of its own and a mirror for docker.io.
    apply_use_ok(tmp_path, buildset.facts, extra_vars={"buildset_registry_state": "absent"})
    BUILDKITD_TOML.parent.mkdir(exist_ok=True)
    own = b'# the node\'s\ndebug = true\n\n[registry."docker.io"]\n  mirrors = ["mirror.example.net"]\n\n[worker.oci]\n  gc = true\n'
    BUILDKITD_TOML.write_bytes(own)
    before = Snapshot(watched_paths([buildset.facts], NAMESPACES))
    pairs = [[ns, up["url"]] for ns, up in buildset.upstreams.items()]
    present = apply_use_ok(tmp_path, buildset.facts, namespaces=pairs)
    assert present.result["changed"]
    conf = tomllib.loads(BUILDKITD_TOML.read_text())
    assert conf["registry"]["docker.io"]["mirrors"] == [buildset.one, "mirror.example.net"]
    assert conf["debug"] is True and conf["worker"] == {"oci": {"gc": True}}
    again = apply_use_ok(tmp_path, buildset.facts, namespaces=pairs)
    assert again.result["changed"] is False, [f for f in again.result["files"] if f["changed"]]
    apply_use_ok(tmp_path, buildset.facts, extra_vars={"buildset_registry_state": "absent"})
    assert BUILDKITD_TOML.read_bytes() == own
    assert before.differences() == []
