"""The role under each engine it supports: Docker's engine and Podman's
Docker-compatible API service (buildset_registry_docker_host), with the same
tests parametrized over both (fixtures any_engine and engine_registry).

The cold apply and re-run wall times per engine are recorded with
record_property (cold_apply_seconds, rerun_seconds) and printed; nothing
asserts on speed.
"""

import os
import time

from clients import Clients, DockerCLI, make_image, pulled_matches, role_changed
from harness import Registry, engine_cli, engine_remove

PUSHED = "buildset/engine-test:1"


def timed_apply(registry, extra_vars=None):
    start = time.monotonic()
    proc, facts = registry.apply_ok(extra_vars)
    return proc, facts, time.monotonic() - start


def running_names(engine):
    out = engine_cli(engine, "ps", "--format", "{{.Names}}")
    assert out.returncode == 0, out.output
    return set(out.stdout.split())


def assert_pulls_from_both(c, image, tmp_path, ref=PUSHED):
    for kind in ("push", "proxy"):
        assert c.digest(kind, ref) == image.digest, kind
        dest = tmp_path / f"pulled-{kind}"
        proc = c.pull(kind, ref, dest)
        assert proc.returncode == 0, f"{kind}: {proc.stderr}"
        assert pulled_matches(dest, image) == [], kind


def test_apply_push_pull_rerun(any_engine, engine_registry, tmp_path, record_property):
    name = any_engine["name"]
    proc, facts, cold = timed_apply(engine_registry)
    assert "containers" in role_changed(proc), proc.output[-3000:]
    # Both containers run under this engine, by name.
    assert set(engine_registry.containers) <= running_names(any_engine)

    # docker login to both endpoints, skopeo push to the push endpoint,
    # then the same digests and blobs through both endpoints.
    cli = DockerCLI(facts, tmp_path)
    try:
        for kind in ("push", "proxy"):
            login = cli.login(kind)
            assert login.returncode == 0, f"{kind}: {login.output}"
    finally:
        cli.close()
    c = Clients(facts, tmp_path)
    image = make_image(tmp_path / "image", label=f"engine-{name}")
    pushed = c.push(image, "push", PUSHED)
    assert pushed.returncode == 0, pushed.stderr
    assert_pulls_from_both(c, image, tmp_path)

    # A re-run changes nothing and keeps the same containers.
    ids = engine_registry.container_ids()
    proc, again, rerun = timed_apply(engine_registry)
    assert role_changed(proc) == [], proc.output[-3000:]
    assert engine_registry.container_ids() == ids
    assert again["password"] == facts["password"]

    record_property("engine", name)
    record_property("cold_apply_seconds", round(cold, 2))
    record_property("rerun_seconds", round(rerun, 2))
    print(f"{name}: cold apply {cold:.2f} s, re-run {rerun:.2f} s")


def test_container_removed_by_hand_is_recreated_with_data(any_engine, engine_registry, tmp_path):
    _, facts = engine_registry.apply_ok()
    c = Clients(facts, tmp_path)
    image = make_image(tmp_path / "image")
    assert c.push(image, "push", PUSHED).returncode == 0
    before = engine_registry.container_ids()

    removed = engine_registry.vars["buildset_registry_push_container"]
    engine_remove(any_engine, removed)
    assert removed not in engine_registry.container_ids()

    proc, facts = engine_registry.apply_ok()
    assert role_changed(proc) == ["containers"], proc.output[-3000:]
    after = engine_registry.container_ids()
    assert set(after) == set(engine_registry.containers)
    assert after[removed] != before[removed]
    # The other container was left alone.
    kept = engine_registry.vars["buildset_registry_proxy_container"]
    assert after[kept] == before[kept]
    assert set(engine_registry.containers) <= running_names(any_engine)
    assert_pulls_from_both(Clients(facts, tmp_path), image, tmp_path)


def test_absent_removes_both_containers_keeps_data(any_engine, engine_registry, tmp_path):
    _, facts = engine_registry.apply_ok()
    c = Clients(facts, tmp_path)
    image = make_image(tmp_path / "image")
    assert c.push(image, "push", PUSHED).returncode == 0

    proc, _ = engine_registry.apply({"buildset_registry_state": "absent"})
    assert proc.returncode == 0, proc.output[-3000:]
    assert engine_registry.container_ids() == {}
    assert not set(engine_registry.containers) & running_names(any_engine)
    data = engine_registry.paths["data_dir"]
    assert os.path.isdir(data)
    stored = [f for _, _, files in os.walk(data) for f in files]
    assert stored, "the data dir was emptied"

    # Applied again, the same data is served.
    _, facts = engine_registry.apply_ok()
    assert_pulls_from_both(Clients(facts, tmp_path), image, tmp_path)


def test_unreachable_engine_names_the_variable(tmp_path, upstream):
    url = "unix:///nonexistent/podman.sock"
    reg = Registry(tmp_path, upstream["url"], engine={"name": "none", "docker_host": url, "cli": "podman"})
    start = time.monotonic()
    proc, facts = reg.apply()
    elapsed = time.monotonic() - start
    assert proc.returncode != 0, proc.output[-3000:]
    assert facts is None
    assert "buildset_registry_docker_host" in proc.output, proc.output[-3000:]
    assert url in proc.output and "not reachable" in proc.output, proc.output[-3000:]
    assert elapsed < 30, f"took {elapsed:.1f} s"
    assert not os.path.exists(reg.paths["root"])
