"""Faults around the registry: no engine, no upstream (at start: a warning;
later: pushed and cached images still pull),
a container removed by hand, damaged certificate/key/htpasswd/password.
(The engine restart lives in test_zz_engine_restart.py, run last.)"""

import os
import time

import pytest
from clients import Clients, DockerCLI, container_exists, make_image, pulled_matches, role_changed
from harness import docker, run

CONTAINERS_PART = "containers"
CERT_PART = "certificate"
HTPASSWD_PART = "htpasswd"


def test_engine_not_reachable_fails_fast(registry, record_property):
    start = time.monotonic()
    # The role's engine is buildset_registry_docker_host (DOCKER_HOST is for the part module alone).
    proc, facts = registry.apply({"buildset_registry_docker_host": "unix:///nonexistent.sock"})
    elapsed = time.monotonic() - start
    record_property("elapsed_seconds", round(elapsed, 2))
    print(f"engine not reachable: playbook failed after {elapsed:.1f} s")
    assert proc.returncode != 0, proc.output[-3000:]
    assert facts is None
    assert "not reachable" in proc.output and "unix:///nonexistent.sock" in proc.output, proc.output[-3000:]
    assert elapsed < 20, f"took {elapsed:.1f} s"
    # The check comes before the certificate task: nothing was made.
    assert not os.path.exists(registry.paths["root"])


def test_image_that_cannot_be_pulled_names_the_variable(registry, unused_port):
    # A registry on a loopback port where nothing listens: the pull fails at
    # once, and no traffic leaves the machine.
    image = f"127.0.0.1:{unused_port}/missing/registry:none"
    proc, facts = registry.apply({"buildset_registry_image": image})
    assert proc.returncode != 0, proc.output[-3000:]
    assert facts is None
    assert image in proc.output and "buildset_registry_image" in proc.output, proc.output[-3000:]
    assert "scripts/provide-registry-image" in proc.output, proc.output[-3000:]
    # The image is checked before anything is made.
    assert not os.path.exists(registry.paths["root"])
    assert not any(container_exists(name) for name in registry.containers)


def test_unreachable_upstream_at_start_warns_and_the_role_succeeds(registry, unused_port, record_property):
    # Issue 24: no upstream fails the buildset (more in test_upstream_down.py).
    url = f"http://127.0.0.1:{unused_port}"
    start = time.monotonic()
    proc, facts = registry.apply({"buildset_registry_proxy_remote_url": url, "buildset_registry_wait_timeout": 30})
    elapsed = time.monotonic() - start
    record_property("elapsed_seconds", round(elapsed, 2))
    print(f"unreachable upstream: playbook succeeded after {elapsed:.1f} s (wait_timeout 30)")
    assert proc.returncode == 0, proc.output[-3000:]
    assert facts and facts["port"] == registry.vars["buildset_registry_port"]
    text = " ".join(proc.output.split())
    assert "[WARNING]" in text and url in text, proc.output[-3000:]
    assert "buildset_registry_proxy_remote_url" in text and "refuses connections" in text, proc.output[-3000:]
    assert elapsed < 20, f"took {elapsed:.1f} s, the wait timeout is 30 s"


def wait_cached(paths, digests, timeout=15):
    """Wait until the proxy has stored every blob in its cache (it stores
    them in the background after serving), apart from the pushed data."""
    deadline = time.monotonic() + timeout
    blobs = os.path.join(paths["cache_dir"], "docker", "registry", "v2", "blobs", "sha256")
    while True:
        missing = [d for d in digests if not os.path.exists(os.path.join(blobs, d[7:9], d[7:], "data"))]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.2)


def test_upstream_gone_after_start_pushed_and_cached_images_still_pull(registry, private_upstream, tmp_path):
    up = private_upstream("library/gone-soon:1")
    _, facts = registry.apply_ok({"buildset_registry_proxy_remote_url": up["url"]})
    c = Clients(facts, tmp_path)
    pushed = make_image(tmp_path / "pushed")
    assert c.push(pushed, "push", "buildset/pushed:1").returncode == 0

    # Pull the upstream image through the proxy: it is cached.
    first = c.pull("proxy", "library/gone-soon:1", tmp_path / "first")
    assert first.returncode == 0, first.stderr
    manifest = (tmp_path / "first" / "manifest.json").read_bytes()
    blobs = [f.name for f in (tmp_path / "first").iterdir() if len(f.name) == 64]
    assert len(blobs) == 2
    missing = wait_cached(registry.paths, [f"sha256:{b}" for b in blobs])
    assert not missing, f"the proxy did not store {missing}"

    stop = docker("stop", up["name"])
    assert stop.returncode == 0, stop.output
    gone = run(["curl", "-sS", "-o", "/dev/null", f"{up['url']}/v2/"], timeout=10)
    assert gone.returncode != 0, "the upstream still answers"

    again = c.pull("proxy", "buildset/pushed:1", tmp_path / "again-pushed")
    assert again.returncode == 0, again.stderr
    assert pulled_matches(tmp_path / "again-pushed", pushed) == []
    again = c.pull("proxy", "library/gone-soon:1", tmp_path / "again-cached")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again-cached" / "manifest.json").read_bytes() == manifest
    for b in blobs:
        assert (tmp_path / "again-cached" / b).read_bytes() == (tmp_path / "first" / b).read_bytes()


def test_container_removed_by_hand_is_recreated_and_data_kept(registry, tmp_path):
    _, facts = registry.apply_ok()
    c = Clients(facts, tmp_path)
    image = make_image(tmp_path / "image")
    assert c.push(image, "push", "buildset/kept:1").returncode == 0
    cli = DockerCLI(facts, tmp_path)
    try:
        for name in registry.containers:
            before = registry.container_ids()
            assert docker("rm", "-f", name).returncode == 0
            assert not container_exists(name)
            proc, facts_after = registry.apply_ok()
            assert CONTAINERS_PART in role_changed(proc), proc.output[-3000:]
            after = registry.container_ids()
            assert set(after) == set(registry.containers)
            assert after[name] != before[name]
            assert facts_after == facts
            for kind in ("proxy", "push"):
                assert cli.login(kind).returncode == 0
                pulled = cli.pull(kind, "buildset/kept:1")
                assert pulled.returncode == 0, pulled.output
                assert cli.repo_digest(kind, "buildset/kept:1") == [image.digest]
    finally:
        cli.close()


# Damage done to one file under root: (layout key, how).
DAMAGE = [
    ("cert", "deleted"),
    ("cert", "garbled"),
    ("key", "deleted"),
    ("key", "garbled"),
    ("htpasswd", "deleted"),
    ("htpasswd", "garbled"),
    ("password", "deleted"),
    ("password", "garbled"),
]
# The part of the role that must repair each file.
REPAIRED_BY = {"cert": CERT_PART, "key": CERT_PART, "htpasswd": HTPASSWD_PART, "password": HTPASSWD_PART}


@pytest.fixture(scope="module")
def damaged(make_registry):
    """One registry the damage cases take turns on; each case leaves it repaired."""
    reg = make_registry("damaged")
    _, reg.facts = reg.apply_ok()
    return reg


@pytest.mark.parametrize("what, how", DAMAGE, ids=[f"{w}-{h}" for w, h in DAMAGE])
def test_damaged_file_is_regenerated_and_served(damaged, tmp_path, what, how):
    path = damaged.paths[what]
    old = Clients(damaged.facts, tmp_path / "old")
    if how == "deleted":
        os.unlink(path)
    else:
        data = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2] + b"\xff\x00garbled\n" + os.urandom(16))

    proc, facts = damaged.apply_ok()
    changed = role_changed(proc)
    assert REPAIRED_BY[what] in changed, proc.output[-3000:]
    assert CONTAINERS_PART in changed, proc.output[-3000:]
    if what != "cert":
        assert os.stat(path).st_mode & 0o777 == 0o600
    new = Clients(facts, tmp_path / "new")

    for kind in ("proxy", "push"):
        # The endpoints present the certificate the role returned, and it verifies them.
        assert new.served_cert(kind) == facts["cert"]
        tls = new.s_client(kind)
        assert tls.returncode == 0 and "Verify return code: 0 (ok)" in tls.output, tls.output[-2000:]
        # Logging in works with the returned password.
        assert new.status(kind, "/v2/", True) == 200
        assert new.status(kind, "/v2/", None) == 401

    if what in ("cert", "key"):
        assert facts["cert"] != damaged.facts["cert"]
        assert facts["password"] == damaged.facts["password"]
    if what == "htpasswd":
        assert facts == damaged.facts
    if what == "password":
        assert facts["password"] != damaged.facts["password"]
        assert old.status("proxy", "/v2/", True) == 401
    damaged.facts = facts
