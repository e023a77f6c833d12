"""Re-runs, a change of image and state=absent never delete the data
directory or what was pushed; and the proxy's upstream-first tag lookup as
registry:2 does it today."""

import os
import uuid

from clients import Clients, container_exists, make_image, role_changed, upstream_digest
from harness import docker, run

CONTAINERS_PART = "containers"


def data_files(root):
    return {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files}


def container_ids(registry):
    """Name -> ID of every container of the registry; fails, naming it, when
    one does not exist (an empty or partial dict would compare equal to
    another and prove nothing)."""
    ids = registry.container_ids()
    assert sorted(ids) == sorted(registry.containers), f"missing: {set(registry.containers) - set(ids)}"
    assert len(set(ids.values())) == len(registry.containers) >= 2, ids
    return ids


def assert_pulls(c, ref, image):
    for kind in ("proxy", "push"):
        assert c.digest(kind, ref) == image.digest, kind
        dest = c.workdir / f"pull-{uuid.uuid4().hex[:6]}"
        proc = c.pull(kind, ref, dest)
        assert proc.returncode == 0, proc.stderr


def test_reruns_image_change_and_absent_keep_pushed_data(registry, tmp_path):
    _, facts = registry.apply_ok()
    c = Clients(facts, tmp_path)
    image = make_image(tmp_path / "image")
    ref = "buildset/safe:1"
    assert c.push(image, "push", ref).returncode == 0
    data_dir = registry.paths["data_dir"]
    stored = data_files(data_dir)
    assert stored

    # A re-run changes nothing and returns the same facts.
    ids = container_ids(registry)
    proc, again = registry.apply_ok()
    assert role_changed(proc) == [], proc.output[-3000:]
    assert again == facts
    assert container_ids(registry) == ids
    assert_pulls(c, ref, image)

    suffix = uuid.uuid4().hex[:6]
    alias = f"it_registry:alt-{suffix}"
    rebuilt = f"it_registry:label-{suffix}"
    try:
        # Another name for the same image ID: the containers' spec (by image
        # ID) is the same, so they are kept (DESIGN.md: recreated only when
        # the desired spec changes).
        base = registry.vars.get("buildset_registry_image", "registry:2")
        assert docker("tag", base, alias).returncode == 0
        proc, _ = registry.apply_ok({"buildset_registry_image": alias})
        assert container_ids(registry) == ids, proc.output[-3000:]
        assert_pulls(c, ref, image)

        # A really different image (other ID): both registry containers are
        # recreated (the front runs another image).
        context = tmp_path / "build"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM {base}\nLABEL it.rebuilt={suffix}\n")
        build = run(["docker", "build", "-q", "-t", rebuilt, str(context)], timeout=120)
        assert build.returncode == 0, build.stderr
        proc, after_change = registry.apply_ok({"buildset_registry_image": rebuilt})
        assert CONTAINERS_PART in role_changed(proc)
        new_ids = container_ids(registry)
        registries = [registry.vars[f"buildset_registry_{kind}_container"] for kind in ("push", "proxy")]
        assert all(new_ids[n] != ids[n] for n in registries), (ids, new_ids)
        assert after_change == facts
        assert stored <= data_files(data_dir)
        assert_pulls(c, ref, image)

        # state=absent removes the containers, never the data.
        proc, _ = registry.apply({"buildset_registry_state": "absent"})
        assert proc.returncode == 0, proc.output[-3000:]
        assert role_changed(proc) == [CONTAINERS_PART]
        assert not any(container_exists(n) for n in registry.containers)
        assert stored <= data_files(data_dir)
        # A second absent is a no-op and still keeps the data.
        proc, _ = registry.apply({"buildset_registry_state": "absent"})
        assert proc.returncode == 0 and role_changed(proc) == [], proc.output[-3000:]
        assert stored <= data_files(data_dir)
    finally:
        registry.remove()
        docker("rmi", alias, rebuilt)

    # Present again: the same facts, the pushed image is still there.
    _, back = registry.apply_ok()
    assert back == facts
    assert_pulls(c, ref, image)


def test_a_pushed_tag_that_exists_upstream_stays_the_pushed_one(registry, upstream, tmp_path):
    """registry:2 as a proxy looks tags up upstream first (DESIGN.md); the
    front asks the push registry first, so a pushed tag is never replaced
    by upstream's, however often it is pulled."""
    _, facts = registry.apply_ok()
    c = Clients(facts, tmp_path)
    ref = upstream["images"][0]
    theirs = upstream_digest(upstream, ref)
    # Cached first through the one endpoint: upstream's, as long as nothing is pushed.
    assert c.digest("proxy", ref) == theirs
    mine = make_image(tmp_path / "mine")
    assert c.push(mine, "proxy", ref).returncode == 0
    assert mine.digest != theirs
    for _ in range(3):
        assert c.digest("proxy", ref) == mine.digest
    assert c.digest("push", ref) == mine.digest
