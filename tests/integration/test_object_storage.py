"""Registry data in a real object store (a one-node Swift, through its S3
API with the s3 driver and its native API with the swift driver): push and
pull through both endpoints, objects under the expected prefixes, two role
instances standing for two nodes sharing one store, no secret in the
output, and a store that is down at start."""

import json
import uuid

from clients import Clients, make_image, role_changed
from harness import docker
from object_store import KEY


def inspect(name):
    """docker inspect's JSON of container name; fails the test when there is none
    (an empty output holds no secret and would prove nothing)."""
    proc = docker("inspect", "--type", "container", name, timeout=None)
    assert proc.returncode == 0, f"docker inspect {name}: {proc.stderr}"
    assert json.loads(proc.stdout)[0]["Name"] == "/" + name, proc.stdout[:500]
    return proc.stdout


def test_s3_pushed_data_and_the_proxy_cache_under_their_prefixes_and_no_secrets(
    registry, upstream, object_store, tmp_path
):  # noqa: F811
    bucket = f"s3-{uuid.uuid4().hex[:8]}"
    store = {"s3": object_store.s3(bucket, "/buildset")}
    extra = {"buildset_registry_object_storage": store}
    proc, facts = registry.apply_ok(extra, verbosity=3)
    # The store's secret key never shows: not in -vvv output, not in the containers.
    assert KEY not in proc.output
    for name in registry.containers:
        assert KEY not in inspect(name)
    c = Clients(facts, tmp_path)
    image = make_image(tmp_path / "image")
    assert c.push(image, "push", "buildset/in-s3:1").returncode == 0
    assert c.digest("push", "buildset/in-s3:1") == image.digest
    assert c.pull("proxy", upstream["images"][0], tmp_path / "up").returncode == 0
    names = object_store.objects(bucket)
    assert any(n.startswith("buildset/docker/registry/v2/repositories/buildset/in-s3/") for n in names), names[:20]
    assert any(n.startswith("buildset/proxy-cache/docker/registry/v2/") for n in names), names[:20]
    assert not (tmp_path / "root" / "data").exists() or not any((tmp_path / "root" / "data").iterdir())
    proc, again = registry.apply_ok(extra)
    assert role_changed(proc) == [] and again == facts, proc.output[-3000:]


def test_two_nodes_share_one_store(registry, make_registry, object_store, tmp_path):
    bucket = f"nodes-{uuid.uuid4().hex[:8]}"
    extra = {
        "buildset_registry_object_storage": {"s3": object_store.s3(bucket, "/shared")},
        "buildset_registry_password": "one-password-for-both-nodes",
    }
    _, facts_a = registry.apply_ok(extra)
    node_b = make_registry("node-b")
    _, facts_b = node_b.apply_ok(extra)
    a, b = Clients(facts_a, tmp_path / "a"), Clients(facts_b, tmp_path / "b")
    image = make_image(tmp_path / "image", size=2 * 1024 * 1024)
    assert a.push(image, "push", "buildset/across:1").returncode == 0
    for kind in ("push", "proxy"):
        assert b.digest(kind, "buildset/across:1") == image.digest, kind
        assert b.pull(kind, "buildset/across:1", tmp_path / f"b-{kind}").returncode == 0
    node_b.remove()


def test_swift_driver_push_pull_under_its_prefix(registry, object_store, tmp_path):  # noqa: F811
    container = f"sw-{uuid.uuid4().hex[:8]}"
    extra = {"buildset_registry_object_storage": {"swift": object_store.swift(container, "/reg")}}
    _, facts = registry.apply_ok(extra)
    c = Clients(facts, tmp_path)
    image = make_image(tmp_path / "image")
    assert c.push(image, "push", "buildset/in-swift:1").returncode == 0
    for kind in ("push", "proxy"):
        assert c.digest(kind, "buildset/in-swift:1") == image.digest, kind
    names = object_store.objects(container)
    assert names and all(n.startswith("reg/") for n in names), names[:20]


def test_store_down_at_start_fails_naming_the_store(registry, unused_port):
    endpoint = f"http://127.0.0.1:{unused_port}"
    store = {"s3": {"bucket": "b", "region": "us-east-1", "regionendpoint": endpoint, "accesskey": "k",
                    "secretkey": "down-s3cret", "secure": False}}  # fmt: skip
    proc, facts = registry.apply({"buildset_registry_object_storage": store, "buildset_registry_wait_timeout": 10})
    assert proc.returncode != 0 and facts is None
    assert endpoint in proc.output and "buildset_registry_object_storage" in proc.output, proc.output[-3000:]
    assert "down-s3cret" not in proc.output
    print("store down:", json.dumps(proc.output[-600:]))
