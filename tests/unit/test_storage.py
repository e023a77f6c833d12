"""Where each registry keeps its data: the filesystem or an object store, pushed data and cache apart."""

import pytest
import yaml

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.layout import CONTAINER_DATA, layout
from ansible.module_utils.buildset_registry.common.options import role_variables
from ansible.module_utils.buildset_registry.registry import storage as storage
from ansible.module_utils.buildset_registry.registry.config import render_config
from ansible.module_utils.buildset_registry.registry.endpoints import data_dirs, registry_endpoints

S3 = {
    "s3": {
        "bucket": "b",
        "region": "us-east-1",
        "regionendpoint": "http://127.0.0.1:8080",
        "accesskey": "test:tester",
        "secretkey": "s3-Secret",
        "secure": False,
        "rootdirectory": "/bs",
    }
}
SWIFT = {
    "swift": {
        "authurl": "http://127.0.0.1:8080/auth/v1.0",
        "username": "test:tester",
        "password": "sw-Secret",
        "container": "c",
    }
}


def params(**over):
    base = {"object_storage": {}, "http_secret": ""}
    base.update(over)
    return base


def test_filesystem_keeps_pushed_data_and_the_cache_apart():
    paths = layout("/r")
    assert storage.data_dir("push", params(), paths) == paths["data_dir"]
    assert storage.data_dir("proxy", params(), paths) == paths["cache_dir"] != paths["data_dir"]
    for kind in ("proxy", "push"):
        assert storage.storage_config(kind, params()) == {"filesystem": {"rootdirectory": CONTAINER_DATA}}
    assert storage.http_secret(params()) == ""


def test_object_store_prefixes_and_no_mount():
    paths = layout("/r")
    p = params(object_storage=S3)
    assert storage.storage_config("push", p)["s3"]["rootdirectory"] == "/bs"
    assert storage.storage_config("proxy", p)["s3"]["rootdirectory"] == "/bs/proxy-cache"
    assert storage.storage_config("proxy", params(object_storage=SWIFT))["swift"]["prefix"] == "/proxy-cache"
    assert storage.data_dir("push", p, paths) is None
    full = dict(p, root="/r", push_container="r", proxy_container="p", front_container="f", image="registry:2",
                proxy_remote_url="https://up", proxy_username="", proxy_password="", host="h", port=1, push_port=2,
                namespaces=[["quay.io", "https://quay.io"], "push.only"])  # fmt: skip
    in_store = registry_endpoints(full, paths)
    assert [e.kind for e in in_store] == ["push", "proxy", "proxy-quay.io"]
    assert all(e.binds == () for e in in_store) and data_dirs(full, paths) == []
    on_disk = registry_endpoints(dict(full, object_storage={}), paths)
    assert [e.binds[0].split(":")[0] for e in on_disk] == ["/r/data", "/r/cache", "/r/caches/quay.io"]
    assert data_dirs(dict(full, object_storage={}), paths) == ["/r/data", "/r/cache", "/r/caches/quay.io"]
    # Each cache its own prefix in the store.
    roots = [e.config.split("rootdirectory: ")[1].split("\n")[0] for e in in_store]
    assert roots == ['"/bs"', '"/bs/proxy-cache"', '"/bs/proxy-cache-quay.io"']


def test_http_secret_given_or_derived_from_the_store_alike_on_every_node():
    assert storage.http_secret(params(http_secret="given")) == "given"
    derived = storage.http_secret(params(object_storage=S3))
    assert len(derived) == 64 and derived == storage.http_secret(params(object_storage=dict(S3)))
    assert derived != storage.http_secret(params(object_storage=SWIFT))
    assert "s3-Secret" not in derived


def test_config_puts_the_driver_and_secret_in_the_file():
    p = params(object_storage=S3)
    text = render_config("push", "@s", None, storage=storage.storage_config("push", p), http_secret="hs")
    config = yaml.safe_load(text)
    assert config["storage"]["s3"]["secretkey"] == "s3-Secret"
    assert config["storage"]["s3"]["secure"] is False
    assert "filesystem" not in config["storage"]
    assert config["http"]["secret"] == "hs"


@pytest.mark.parametrize(
    "store, words",
    [
        ({"gcs": {"bucket": "b"}}, "driver 'gcs' is not supported"),
        ({"s3": {"bucket": "b"}, "swift": {}}, "give one key"),
        ({"s3": {"region": "r"}}, "needs bucket"),
        ({"swift": {"authurl": "u"}}, "needs username, password, container"),
        ({"s3": "bucket=b"}, "must be a dict"),
        ({"s3": {"bucket": "b", "region": "r", "chunksize": [1]}}, "s3.chunksize must be a string, number or boolean"),
        ([{"s3": {}}], "give one key"),
    ],
)
def test_bad_object_storage_is_refused_naming_the_variable(store, words):
    with pytest.raises(RegistryError) as exc:
        storage.validate(params(object_storage=store))
    msg = exc.value.render(role_variables())
    assert msg.startswith("buildset_registry_object_storage: ") and words in msg
