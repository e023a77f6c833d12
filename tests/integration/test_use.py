"""The use entry point with real clients: after it, the docker CLI and
engine, skopeo, podman and ctr pull through the buildset registry with no
flags of their own, pushed images first; a re-run changes nothing; absent
puts every file back byte for byte; bad input changes nothing.

The registry has a stand-in upstream of its own, and every client pulls
through its one endpoint; every change to this machine's configuration is put back after each
test (use_fixtures.Snapshot), and Docker Hub's and quay.io's names point
at loopback meanwhile (use_fixtures.hub_guard).
"""

import base64
import json
import os
from types import SimpleNamespace

import pytest
from clients import Clients, make_image, manifest_digest, podman, pulled_matches, sha256
from harness import docker, run
from use_fixtures import (
    DAEMON_JSON,
    HOME,
    HOSTS,
    STATE_FILE,
    Snapshot,
    apply_use,
    apply_use_ok,
    ctr,
    ctr_pull_digest,
    docker_pull_digest,
    make_use_registry,
    rmtree,
    running_mirrors,
    use_upstream,
    watched_paths,
)

UPSTREAM_ONLY, SHADOWED = "library/use-upstream:1", "library/use-shadowed:1"
QUAY = "quay.io/use/img:1"


def skopeo(*args, timeout=120):
    proc = run(["skopeo", *args], text=False, timeout=timeout)
    proc.output = proc.output.decode(errors="replace")
    return proc


def config_digest(*args):
    """The digest of the image's configuration, which names its content."""
    proc = skopeo("inspect", "--raw", *args)
    assert proc.returncode == 0, proc.output
    digest = json.loads(proc.stdout)["config"]["digest"]
    assert digest.startswith("sha256:") and len(digest) == 71, digest
    return digest


def inspect_digest(*args):
    """The digest of the manifest `skopeo inspect --raw ARGS` gets."""
    proc = skopeo("inspect", "--raw", *args)
    assert proc.returncode == 0, proc.output
    return manifest_digest(proc.stdout)


@pytest.fixture(scope="module")
def buildset(tmp_path_factory):
    """A registry whose one endpoint holds an image pushed there that
    shadows an upstream one, and one for quay.io; the upstream also has an
    image nobody pushed."""
    tmp = tmp_path_factory.mktemp("use")
    upstream = use_upstream(UPSTREAM_ONLY, SHADOWED)
    reg = make_use_registry(tmp, upstream["url"])
    try:
        _, facts = reg.apply_ok()
        assert facts["mirrors"] == ["localhost:%d" % facts["port"]]
        clients = Clients(facts, tmp)
        shadow, quay = make_image(tmp / "shadow", label="use-shadow"), make_image(tmp / "quay", label="use-quay")
        for image, ref in ((shadow, SHADOWED), (quay, QUAY)):
            proc = clients.push(image, "proxy", ref)
            assert proc.returncode == 0, proc.stderr
        yield SimpleNamespace(
            tmp=tmp,
            facts=facts,
            reg=reg,
            shadow=shadow,
            quay=quay,
            push="localhost:%d" % facts["push_port"],
            one="localhost:%d" % facts["port"],
            upstream_digest=inspect_digest(
                "--tls-verify=false", "docker://127.0.0.1:%d/%s" % (upstream["port"], UPSTREAM_ONLY)
            ),
            upstream_shadowed=inspect_digest(
                "--tls-verify=false", "docker://127.0.0.1:%d/%s" % (upstream["port"], SHADOWED)
            ),
        )
    finally:
        reg.remove()
        docker("rm", "-f", upstream["name"])
        rmtree(tmp / "root")


@pytest.fixture(scope="class")
def used(buildset, hub_guard):
    """use applied once for TestClients, taken back after it."""
    snap = Snapshot(watched_paths([buildset.facts]))
    try:
        buildset.first = apply_use_ok(buildset.tmp, buildset.facts)
        yield buildset
    finally:
        snap.restore()
        ctr.cleanup()


class TestClients:
    """One application of use, read by every client."""

    def test_first_run_changes_and_a_rerun_changes_nothing(self, used):
        assert used.first.result["changed"] is True
        assert {f["path"]: f["action"] for f in used.first.result["files"]}[str(DAEMON_JSON)] in ("created", "updated")
        again = apply_use_ok(used.tmp, used.facts)
        assert again.result["changed"] is False, [f for f in again.result["files"] if f["changed"]]
        assert "changed=0" in again.output

    def test_dockerd_runs_with_the_one_endpoint_as_its_mirror(self, used):
        assert running_mirrors() == ["https://" + used.one]
        assert used.first.result["dockerd"]["reloaded"] is True
        assert used.first.result["dockerd"]["confirmed"] is True

    def test_docker_pulls_pushed_images_first_and_the_rest_from_upstream(self, used):
        assert docker_pull_digest(SHADOWED) == [used.shadow.digest]
        assert used.shadow.digest != used.upstream_shadowed
        assert docker_pull_digest("docker.io/" + UPSTREAM_ONLY) == [used.upstream_digest]

    def test_skopeo_copies_with_no_flags_of_its_own(self, used, tmp_path):
        proc = skopeo("copy", "docker://docker.io/" + SHADOWED, "dir:%s" % (tmp_path / "s"))
        assert proc.returncode == 0, proc.output
        assert pulled_matches(tmp_path / "s", used.shadow) == []
        proc = skopeo("copy", "docker://" + QUAY, "dir:%s" % (tmp_path / "q"))
        assert proc.returncode == 0, proc.output
        assert pulled_matches(tmp_path / "q", used.quay) == []
        proc = skopeo("copy", "docker://docker.io/" + UPSTREAM_ONLY, "dir:%s" % (tmp_path / "u"))
        assert proc.returncode == 0, proc.output
        assert sha256((tmp_path / "u" / "manifest.json").read_bytes()) == used.upstream_digest

    def test_ctr_pulls_with_the_hosts_dir(self, used):
        assert ctr_pull_digest("docker.io/" + SHADOWED) == used.shadow.digest
        assert ctr_pull_digest(QUAY) == used.quay.digest
        assert ctr_pull_digest("docker.io/" + UPSTREAM_ONLY) == used.upstream_digest
        # The endpoint directly, with the cert and credentials use wrote.
        assert ctr_pull_digest("%s/%s" % (used.one, QUAY)) == used.quay.digest

    def test_podman_pulls_pushed_images_first(self, used, tmp_path):
        try:
            for ref, digest in (("docker.io/" + SHADOWED, used.shadow.digest), (QUAY, used.quay.digest)):
                proc = podman(tmp_path, "pull", "-q", ref)
                assert proc.returncode == 0, proc.stderr
                assert podman(tmp_path, "image", "inspect", "-f", "{{.Digest}}", ref).stdout.strip() == digest
        finally:
            podman(tmp_path, "rmi", "-f", "docker.io/" + SHADOWED, QUAY)

    def test_every_client_gets_pushed_images_first_by_direct_reference(self, used, tmp_path):
        direct = "%s/%s" % (used.one, SHADOWED)
        assert docker_pull_digest(direct) == [used.shadow.digest]
        assert inspect_digest("docker://" + direct) == used.shadow.digest
        assert ctr_pull_digest(direct) == used.shadow.digest
        upstream_only = "%s/%s" % (used.one, UPSTREAM_ONLY)
        assert docker_pull_digest(upstream_only) == [used.upstream_digest]
        assert inspect_digest("docker://" + upstream_only) == used.upstream_digest
        assert ctr_pull_digest(upstream_only) == used.upstream_digest
        proc = podman(tmp_path, "pull", "-q", direct)
        try:
            assert proc.returncode == 0, proc.stderr
            assert (
                podman(tmp_path, "image", "inspect", "-f", "{{.Digest}}", direct).stdout.strip() == used.shadow.digest
            )
        finally:
            podman(tmp_path, "rmi", "-f", direct)

    @pytest.mark.parametrize("port", ["one", "push"])
    def test_every_client_pushes_with_the_login_use_set_up(self, used, tmp_path, port):
        """docker (config.json), skopeo and podman (auth.json) and ctr (the
        hosts directory's header) push with no credentials of their own."""
        endpoint = getattr(used, port)
        base = "%s/%s" % (used.one, UPSTREAM_ONLY)
        tags = {c: "%s/buildset/use-%s-%s:1" % (endpoint, c, os.urandom(3).hex()) for c in ("docker", "podman", "ctr")}
        try:
            assert docker_pull_digest(base) == [used.upstream_digest]
            assert docker("pull", base).returncode == 0
            assert docker("tag", base, tags["docker"]).returncode == 0
            proc = docker("push", tags["docker"])
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert podman(tmp_path, "pull", "-q", base).returncode == 0
            assert podman(tmp_path, "tag", base, tags["podman"]).returncode == 0
            proc = podman(tmp_path, "push", tags["podman"])
            assert proc.returncode == 0, proc.stderr
            assert ctr_pull_digest(base) == used.upstream_digest
            assert ctr("image", "tag", base, tags["ctr"]).returncode == 0
            proc = ctr("image", "push", "--hosts-dir", "/etc/containerd/certs.d", tags["ctr"])
            assert proc.returncode == 0, proc.output
            image = make_image(tmp_path / "sk", label="use-skopeo-push")
            ref = "%s/buildset/use-skopeo-%s:1" % (endpoint, os.urandom(3).hex())
            proc = skopeo("copy", "dir:%s" % image.path, "docker://" + ref)
            assert proc.returncode == 0, proc.output
            assert inspect_digest("docker://" + ref.replace(endpoint, used.one, 1)) == image.digest
            upstream_config = config_digest("docker://%s/%s" % (used.one, UPSTREAM_ONLY))
            for tag in tags.values():
                # Each came back through the one endpoint: upstream's image (its
                # config; a client may re-serialize the manifest) under a new name.
                assert config_digest("docker://" + tag.replace(endpoint, used.one, 1)) == upstream_config
        finally:
            docker("rmi", "-f", base, *tags.values())
            podman(tmp_path, "rmi", "-f", base, *tags.values())
            ctr.cleanup()

    def test_docker_hub_never_gets_the_buildset_credentials_from_containers_image(self, used):
        # containers-image reads docker's config.json too, where the
        # buildset's credentials sit under Docker Hub's key for the engine.
        # auth.json is read first and has a docker.io entry of its own.
        ref = "docker.io/library/use-nowhere"
        proc = skopeo("--debug", "inspect", "--raw", "docker://%s:1" % ref, timeout=60)
        assert proc.returncode != 0  # nobody has it; the fallback meets the guard
        auth_json = HOME / ".config" / "containers" / "auth.json"
        assert (
            "Found credentials for %s in credential helper containers-auth.json in file %s" % (ref, auth_json)
            in proc.output
        )
        assert (
            "Found credentials for %s/%s in credential helper containers-auth.json in file %s"
            % (used.one, ref.split("/", 1)[1], auth_json)
            in proc.output
        )
        entry = json.loads(auth_json.read_text())["auths"]["docker.io"]
        user, _, _ = base64.b64decode(entry["auth"]).decode().partition(":")
        assert user == ""  # an anonymous token request: no user, no password sent
        assert used.facts["password"] not in proc.output

    def test_files_with_credentials_are_0600(self, used):
        for path in (
            HOME / ".docker" / "config.json",
            HOME / ".config" / "containers" / "auth.json",
            STATE_FILE,
            "/etc/containerd/certs.d/docker.io/hosts.toml",
            "/etc/containerd/certs.d/%s/hosts.toml" % used.one,
        ):
            assert os.stat(path).st_mode & 0o777 == 0o600, path


def test_absent_puts_every_file_back_byte_for_byte(buildset, snapshot, tmp_path):
    snapshot(buildset.facts)
    # A node with configuration of its own.
    DAEMON_JSON.write_text('{\n  "log-level": "info"\n}')
    (HOME / ".docker").mkdir(exist_ok=True)
    config = HOME / ".docker" / "config.json"
    config.write_text(
        json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": "bWU6bWluZQ=="}}, "psFormat": "table"}, indent=4)
    )
    os.chmod(config, 0o600)
    before = Snapshot(watched_paths([buildset.facts]))
    present = apply_use_ok(tmp_path, buildset.facts)
    assert present.result["changed"]
    assert before.differences()
    # The user's own Docker Hub credentials are what containers-image uses for docker.io.
    auth = json.loads((HOME / ".config" / "containers" / "auth.json").read_text())
    assert auth["auths"]["docker.io"] == {"auth": "bWU6bWluZQ=="}
    absent = apply_use_ok(tmp_path, buildset.facts, extra_vars={"buildset_registry_state": "absent"})
    assert absent.result["changed"]
    assert before.differences() == []
    assert running_mirrors() == before.mirrors == []
    again = apply_use_ok(tmp_path, buildset.facts, extra_vars={"buildset_registry_state": "absent"})
    assert again.result["changed"] is False


def test_absent_keeps_what_the_user_changed_meanwhile(buildset, snapshot, tmp_path):
    snapshot(buildset.facts)
    before = Snapshot(watched_paths([buildset.facts]))
    apply_use_ok(tmp_path, buildset.facts)
    daemon = json.loads(DAEMON_JSON.read_text())
    DAEMON_JSON.write_text(json.dumps(dict(daemon, **{"log-level": "info"})))
    apply_use_ok(tmp_path, buildset.facts, extra_vars={"buildset_registry_state": "absent"})
    assert json.loads(DAEMON_JSON.read_text()) == {"log-level": "info"}
    assert before.differences() == [str(DAEMON_JSON)]
    assert running_mirrors() == []


@pytest.mark.parametrize(
    "how, words",
    [
        (dict(omit_fact=True), "buildset_registry is not set"),
        (dict(namespaces=["https://quay.io"]), "buildset_registry_namespaces: 'https://quay.io' has a scheme"),
        (dict(namespaces=["quay.io", "quay.io"]), "buildset_registry_namespaces: 'quay.io' is given twice"),
        (dict(facts_over={"mirrors": None}), "buildset_registry lacks mirrors"),
        (dict(facts_over={"host": "::1"}), "IPv6 address"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(buildset, snapshot, tmp_path, how, words):
    snap = snapshot(buildset.facts)
    facts = dict(buildset.facts, **how.pop("facts_over", {}))
    proc = apply_use(tmp_path, facts, **how)
    assert proc.returncode != 0
    assert words in proc.output
    assert buildset.facts["password"] not in proc.output
    assert snap.differences() == []


def test_a_daemon_json_that_is_not_json_is_refused_naming_it(buildset, snapshot, tmp_path):
    snapshot(buildset.facts)
    DAEMON_JSON.write_text("{not json")
    before = Snapshot(watched_paths([buildset.facts]))
    proc = apply_use(tmp_path, buildset.facts)
    assert proc.returncode != 0
    assert "/etc/docker/daemon.json is not valid JSON" in proc.output
    assert before.differences() == []


def test_check_mode_writes_nothing_and_the_diff_masks_credentials(buildset, snapshot, tmp_path):
    snap = snapshot(buildset.facts)
    proc = apply_use(tmp_path, buildset.facts, check=True, diff=True)
    assert proc.returncode == 0, proc.output[-3000:]
    assert "registry-mirrors" in proc.output and "[[registry.mirror]]" in proc.output
    auth = base64.b64encode(("%s:%s" % (buildset.facts["username"], buildset.facts["password"])).encode()).decode()
    assert buildset.facts["password"] not in proc.output and auth not in proc.output
    assert snap.differences() == []


def test_an_ipv6_registry_is_reached_through_a_hosts_name(buildset, snapshot, tmp_path):
    reg = make_use_registry(
        tmp_path, buildset.reg.vars["buildset_registry_proxy_remote_url"], buildset_registry_host="::1"
    )
    try:
        _, facts = reg.apply_ok()
        name = facts["host"]
        assert facts["addresses"] == {name: "::1"}
        snapshot(facts)
        before = Snapshot(watched_paths([facts]))
        apply_use_ok(tmp_path, facts)
        assert b"::1 %s  # buildset-registry\n" % name.encode() in HOSTS.read_bytes()
        image = make_image(tmp_path / "v6", label="use-v6")
        # use set up trust and credentials: skopeo needs nothing more.
        proc = skopeo("copy", "dir:%s" % image.path, "docker://%s:%d/library/use-v6:1" % (name, facts["port"]))
        assert proc.returncode == 0, proc.output
        assert docker_pull_digest("library/use-v6:1") == [image.digest]
        assert ctr_pull_digest("docker.io/library/use-v6:1") == image.digest
        apply_use_ok(tmp_path, facts, extra_vars={"buildset_registry_state": "absent"})
        assert before.differences() == []
    finally:
        reg.remove()
        rmtree(tmp_path / "root")
        ctr.cleanup()


@pytest.mark.parametrize("anonymous", [True, False])
def test_the_docker_engine_pulls_pushed_images_through_its_mirror_without_hub_credentials(
    buildset,
    snapshot,
    tmp_path,
    anonymous,
):
    """dockerd hands a mirror only Docker Hub's credentials; zuul-jobs'
    use-buildset-registry writes none. Pushed images are readable without
    a login, so they come first all the same; upstream's only with
    anonymous pull (without it, the mirror answers 404 and dockerd goes to
    Docker Hub, kept on loopback here, so that pull fails)."""
    reg = make_use_registry(tmp_path, buildset.reg.vars["buildset_registry_proxy_remote_url"],
                            buildset_registry_anonymous_pull=anonymous)  # fmt: skip
    ref = "library/use-anon-%s:1" % os.urandom(3).hex()
    try:
        _, facts = reg.apply_ok()
        assert facts["anonymous_pull"] is anonymous
        image = make_image(tmp_path / "anon", label="use-anon")
        assert Clients(facts, tmp_path).push(image, "proxy", ref).returncode == 0
        snapshot(facts)
        apply_use_ok(tmp_path, facts)
        config = json.loads((HOME / ".docker" / "config.json").read_text())
        assert ("https://index.docker.io/v1/" in config.get("auths", {})) is not anonymous
        if not anonymous:
            # What a node set up by use-buildset-registry has: no Docker Hub credentials.
            del config["auths"]["https://index.docker.io/v1/"]
            (HOME / ".docker" / "config.json").write_text(json.dumps(config))
        assert docker_pull_digest(ref) == [image.digest]
        docker("rmi", "-f", UPSTREAM_ONLY)
        upstream = docker("pull", UPSTREAM_ONLY)
        assert (upstream.returncode == 0) is anonymous, upstream.stdout + upstream.stderr
        if anonymous:
            assert docker_pull_digest(UPSTREAM_ONLY) == [buildset.upstream_digest]
        # Pushes always need the login: skopeo without credentials is refused.
        bare = skopeo("copy", "--dest-no-creds", "dir:%s" % image.path,
                      "docker://%s:%d/%s-bare" % (facts["host"], facts["port"], ref))  # fmt: skip
        assert bare.returncode != 0
    finally:
        docker("rmi", "-f", ref, UPSTREAM_ONLY)
        reg.remove()
        rmtree(tmp_path / "root")
