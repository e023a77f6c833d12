# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Where each registry keeps its data: pure.

The push registry keeps what the buildset pushed in root/data, or in the
object store's root directory (where every earlier version of the role
kept it, so an upgrade keeps every pushed image); the proxy caches the
upstream apart, in root/cache or under a "proxy-cache" prefix beside it;
another namespace N's proxy in root/caches/N or under "proxy-cache-N".

object_storage: {} for the filesystem under the root, or one registry 2.8
storage driver ("s3" or "swift") and its parameters.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.layout import CONTAINER_DATA

PROXY_CACHE = "proxy-cache"
# Each driver: its required parameters, and the one that holds its prefix.
DRIVERS = {
    "s3": {"required": ("bucket", "region"), "prefix": "rootdirectory"},
    "swift": {"required": ("authurl", "username", "password", "container"), "prefix": "prefix"},
}


def validate(params):
    """Check object_storage; pure."""
    store = params["object_storage"]
    if store in (None, {}):
        return
    example = "e.g. {s3: {bucket: NAME, region: REGION, regionendpoint: URL, accesskey: KEY, secretkey: SECRET}}"
    if not isinstance(store, dict) or len(store) != 1:
        raise RegistryError(
            "object_storage",
            "{object_storage}: give one key, the registry's storage driver (%s), whose value holds its "
            "parameters (%s); or {} for the filesystem under {root}",
            " or ".join(DRIVERS),
            example,
        )
    driver, options = next(iter(store.items()))
    if driver not in DRIVERS:
        raise RegistryError(
            "object_storage", "{object_storage}: driver %r is not supported; use %s (%s)", driver,
            " or ".join(DRIVERS), example,
        )  # fmt: skip
    if not isinstance(options, dict):
        raise RegistryError(
            "object_storage", "{object_storage}: the %s driver's value must be a dict of its parameters, not %s",
            driver, type(options).__name__,
        )  # fmt: skip
    missing = [name for name in DRIVERS[driver]["required"] if not options.get(name)]
    if missing:
        raise RegistryError(
            "object_storage", "{object_storage}: the %s driver needs %s; add %s", driver, ", ".join(missing),
            " and ".join(missing),
        )  # fmt: skip
    for name, value in options.items():
        if not isinstance(value, (str, int, float, bool)):
            raise RegistryError(
                "object_storage", "{object_storage}: %s.%s must be a string, number or boolean, not %s",
                driver, name, type(value).__name__,
            )  # fmt: skip


def driver_of(params):
    """The object store's driver name, or None for the filesystem."""
    store = params.get("object_storage") or {}
    return next(iter(store), None)


def storage_config(kind, params, namespace=""):
    """The registry configuration's storage section (driver and options) for
    one registry; namespace: a proxy's other than docker.io's."""
    driver = driver_of(params)
    if driver is None:
        return {"filesystem": {"rootdirectory": CONTAINER_DATA}}
    options = dict(params["object_storage"][driver])
    if kind == "proxy":
        key = DRIVERS[driver]["prefix"]
        base = str(options.get(key) or "").rstrip("/")
        options[key] = "%s/%s%s" % (base, PROXY_CACHE, "-" + namespace if namespace else "")
    # Blobs through the registry, not a redirect to the store: clients
    # trust and reach the registry, not necessarily the store.
    return {driver: options, "redirect": {"disable": True}}


def store_endpoint(params):
    """Where the object store is, for messages (no credentials)."""
    driver = driver_of(params)
    options = params["object_storage"][driver]
    return options.get("regionendpoint") or options.get("authurl") or "%s bucket %s" % (driver, options.get("bucket"))


def data_dir(kind, params, paths, namespace=""):
    """The host directory a registry's container mounts as its storage, or
    None when its data is in an object store; namespace: a proxy's other
    than docker.io's (root/caches/N)."""
    if driver_of(params) is not None:
        return None
    if kind != "proxy":
        return paths["data_dir"]
    return os.path.join(paths["caches_dir"], namespace) if namespace else paths["cache_dir"]


def http_secret(params):
    """The registry's http.secret: the one given, else (with an object
    store) one derived from the store's parameters, so that every node
    serving the same store signs upload sessions alike; else none (each
    filesystem registry is a single process)."""
    if params.get("http_secret"):
        return params["http_secret"]
    if driver_of(params) is None:
        return ""
    canonical = json.dumps(params["object_storage"], sort_keys=True)
    return hashlib.sha256(("buildset-registry http.secret\n" + canonical).encode("utf-8")).hexdigest()
