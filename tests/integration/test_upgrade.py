"""Upgrading from the role before the front (two registries on their own
ports, storage mode shared or separate) keeps every pushed image: the push
registry serves root/data, where both modes kept pushed data."""

import tarfile
import uuid

import pytest
from clients import Clients, make_image, role_changed, upstream_digest
from harness import ROLE_DIR, run

# The last version of the role before the front (two containers, storage modes).
BEFORE_FRONT = "09a38e9"


@pytest.fixture(scope="module")
def old_role(tmp_path_factory):
    """The role as it was at BEFORE_FRONT, from this repository's history."""
    dest = tmp_path_factory.mktemp("old-role") / "run-buildset-registry"
    dest.mkdir()
    archive = dest.parent / "old.tar"
    proc = run(["git", "-C", ROLE_DIR, "archive", "-o", str(archive), BEFORE_FRONT], timeout=None)
    assert proc.returncode == 0, "git archive %s: %s (a shallow clone lacks it)" % (BEFORE_FRONT, proc.stderr)
    with tarfile.open(archive) as tar:
        tar.extractall(dest)
    return dest


@pytest.mark.parametrize("mode", ["shared", "separate"])
def test_a_root_of_the_two_container_role_keeps_its_pushed_images(registry, upstream, old_role, tmp_path, mode):
    proc, old = registry.apply({"buildset_registry_storage_mode": mode}, role_dir=old_role)
    assert proc.returncode == 0 and old, proc.output[-3000:]
    c = Clients(old, tmp_path)
    image = make_image(tmp_path / "pushed", label="before-the-front")
    ref = "library/upgraded-%s:1" % uuid.uuid4().hex[:6]
    assert c.push(image, "push", ref).returncode == 0
    # The upgrade replaces the old containers, which hold the same ports.
    proc, new = registry.apply_ok()
    assert new["password"] == old["password"] and new["cert"] == old["cert"]
    assert new["mirrors"] == ["%s:%d" % (new["host"], new["port"])]
    c = c.with_facts(new)
    for kind in ("proxy", "push"):
        assert c.digest(kind, ref) == image.digest
    # And the upstream comes through the one endpoint, as upstream serves it.
    assert c.digest("proxy", upstream["images"][0]) == upstream_digest(upstream, upstream["images"][0])
    again, _ = registry.apply_ok()
    assert role_changed(again) == [], again.output[-3000:]
