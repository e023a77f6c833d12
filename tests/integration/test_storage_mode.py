"""Storage modes end to end: in separate mode the proxy caches apart from
what was pushed, the fact lists the push endpoint first, and switching
modes either way keeps every pushed image."""

import os
import uuid

from clients import Clients, make_image, role_changed


def files_under(path):
    return {os.path.relpath(os.path.join(d, f), path) for d, _, files in os.walk(path) for f in files}


def test_separate_mode_caches_apart_and_switching_keeps_pushed_images(registry, upstream, tmp_path):
    _, shared = registry.apply_ok()
    assert shared["mirrors"] == [f"localhost:{shared['port']}"]
    c = Clients(shared, tmp_path)
    image = make_image(tmp_path / "image")
    ref = f"buildset/mode-{uuid.uuid4().hex[:6]}:1"
    assert c.push(image, "push", ref).returncode == 0

    proc, separate = registry.apply_ok({"buildset_registry_storage_mode": "separate"})
    assert separate["mirrors"] == [f"localhost:{separate['push_port']}", f"localhost:{separate['port']}"]
    assert {k: v for k, v in separate.items() if k != "mirrors"} == {k: v for k, v in shared.items() if k != "mirrors"}
    # The pushed image is still served by the push endpoint; the proxy no longer sees it.
    assert c.digest("push", ref) == image.digest
    assert c.manifest("proxy", ref)[0].returncode != 0
    # An upstream image pulled through the proxy lands in cache/, not data/.
    before = files_under(registry.paths["data_dir"])
    upstream_ref = upstream["images"][0]
    assert c.pull("proxy", upstream_ref, tmp_path / "up").returncode == 0
    assert files_under(registry.paths["data_dir"]) == before
    assert any("upstream-only" in f for f in files_under(registry.paths["cache_dir"]))

    # A re-run in separate mode changes nothing; back to shared keeps the image.
    proc, again = registry.apply_ok({"buildset_registry_storage_mode": "separate"})
    assert again == separate and role_changed(proc) == [], proc.output[-3000:]
    _, back = registry.apply_ok()
    assert back == shared
    for kind in ("proxy", "push"):
        assert c.digest(kind, ref) == image.digest, kind
