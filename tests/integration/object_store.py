"""A real object store for integration tests: a one-node OpenStack Swift on
loopback (scripts/object-store) with its S3 API, and the registry 2.8 storage
driver parameters that point at it.

A plugin of tests/integration (conftest.py's PLUGINS): a test takes
the session's store by naming the fixture:

    def test_something(object_store):
        storage = {"s3": object_store.s3("bucket-a", "/prefix")}
        ...
        assert all(n.startswith("prefix/") for n in object_store.objects("bucket-a"))

The fixture yields an ObjectStore, a dict (`url`, `port`, `dir`, `s3`, `swift`,
`objects`, `bucket`; also readable as attributes). The Swift packages must be
installed beforehand (CI runs `scripts/object-store install`); when they are
missing the fixture fails and says so.

Which store: with OBJECT_STORE_DIR set, the store of that directory (started
with `scripts/object-store start` when it does not run, on OBJECT_STORE_PORT
or 18080), so a CI job or a developer can keep one running across sessions.
Otherwise a private store in a temporary directory, on the first block of six
free ports from 18080 within 18000-18099. The fixture stops the store at the
end only when it started it.

Registry 2.8 behaviour worth knowing (measured against this store):
- s3: the bucket must exist (s3() creates it). Objects go under
  `rootdirectory` without its leading slash; multipart parts go to the Swift
  container `BUCKET+segments`. Blob GETs are answered with a 307 to a
  presigned URL of the store itself unless `storage.redirect.disable: true`.
  A registry started while the store is down starts and answers /v2/; each
  storage request then fails with 500 until the store is back.
- swift: the driver creates its container. The root-directory prefix is
  `prefix` (objects under PREFIX/files/... and PREFIX/segments/...); a
  `rootdirectory` key is silently ignored. A registry started while the
  store is down panics at once (`panic: swift authentication failed`).
"""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from harness import Ports, run

ROLE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROLE_DIR, "scripts", "object-store")
USER = "test:tester"
KEY = "testing"
REGION = "us-east-1"
# Six ports per store (proxy, object, container, account, memcached, log sink),
# TCP and UDP, the first block from 18080 first.
PORT_BLOCKS = [*range(18080, 18095, 6), *range(18000, 18075, 6)]


class ObjectStoreError(AssertionError):
    pass


class ObjectStore(dict):
    """The running store: its endpoint and helpers, as a dict and as attributes."""

    def __init__(self, directory, port, started_in=None):
        url = f"http://127.0.0.1:{port}"
        super().__init__(
            url=url,
            port=port,
            dir=str(directory),
            started_in=started_in,
            s3=self.s3,
            swift=self.swift,
            objects=self.objects,
            bucket=self.bucket,
        )
        self._token = None
        self._storage_url = None

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    # --- registry 2.8 driver parameters ---------------------------------

    def s3(self, bucket, rootdirectory="/"):
        """Parameters of the registry's `s3` driver; creates the bucket
        (the driver needs it; S3 bucket names: lower case, digits, dashes)."""
        self.bucket(bucket)
        return {
            "regionendpoint": self["url"],
            "bucket": bucket,
            "accesskey": USER,
            "secretkey": KEY,
            "region": REGION,
            "secure": False,
            "rootdirectory": rootdirectory,
        }

    def swift(self, container, prefix=""):
        """Parameters of the registry's `swift` driver (it creates the container)."""
        params = {
            "authurl": f"{self['url']}/auth/v1.0",
            "username": USER,
            "password": KEY,
            "container": container,
        }
        if prefix:
            params["prefix"] = prefix
        return params

    # --- Swift API --------------------------------------------------------

    def bucket(self, name):
        """Create a bucket (Swift container); fine when it exists."""
        status, _ = self._request("PUT", name)
        if status not in (201, 202):
            raise ObjectStoreError(f"creating bucket {name}: HTTP {status}")
        return name

    def objects(self, container, prefix=""):
        """Names of every object in container (S3 bucket), sorted; [] when it
        does not exist. A bucket's multipart parts are in `BUCKET+segments`."""
        names, marker = [], ""
        while True:
            query = urllib.parse.urlencode({"format": "json", "limit": 10000, "marker": marker, "prefix": prefix})
            status, body = self._request("GET", f"{container}?{query}")
            if status == 404:
                return []
            if status not in (200, 204):
                raise ObjectStoreError(f"listing {container}: HTTP {status}")
            page = [item["name"] for item in json.loads(body or b"[]")]
            if not page:
                return sorted(names)
            names += page
            marker = page[-1]

    def _authenticate(self):
        request = urllib.request.Request(
            f"{self['url']}/auth/v1.0", headers={"X-Storage-User": USER, "X-Storage-Pass": KEY}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            self._token = response.headers["X-Auth-Token"]
            self._storage_url = response.headers["X-Storage-Url"]

    def _request(self, method, path):
        for attempt in (1, 2):
            if self._token is None:
                self._authenticate()
            container, _, query = path.partition("?")
            url = f"{self._storage_url}/{urllib.parse.quote(container, safe='')}" + (f"?{query}" if query else "")
            request = urllib.request.Request(url, method=method, headers={"X-Auth-Token": self._token})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 1:
                    self._token = None
                    continue
                return err.code, err.read()
        raise AssertionError("unreachable")


def _script(*args, timeout=120):
    return run([SCRIPT, *args], timeout=timeout)


def _start(directory, port=None):
    """(ObjectStore, "") once `scripts/object-store start` succeeded, else (None, its stderr)."""
    began = time.monotonic()
    proc = _script("start", str(directory), *([str(port)] if port else []))
    if proc.returncode != 0:
        return None, proc.stderr
    with open(os.path.join(directory, "run", "port")) as f:
        port = int(f.read())
    return ObjectStore(directory, port, started_in=round(time.monotonic() - began, 2)), ""


def start_store(tmp_path_factory):
    """(store, started here): the OBJECT_STORE_DIR store, else a private one."""
    shared = os.environ.get("OBJECT_STORE_DIR")
    if shared:
        running = _script("status", shared).returncode == 0
        store, error = _start(shared, None if running else os.environ.get("OBJECT_STORE_PORT", "18080"))
        if store is None:
            raise ObjectStoreError(f"scripts/object-store start {shared} failed:\n{error}")
        return store, not running
    directory = tmp_path_factory.mktemp("object-store")
    blocks, errors = Ports(PORT_BLOCKS, size=6, udp=True, random_start=False), []
    for _ in PORT_BLOCKS:
        store, error = _start(directory, blocks.take())
        if store is not None:
            return store, True
        errors.append(error)
        if "is in use" not in error:
            break
    raise ObjectStoreError(
        "cannot start an object store (is Swift installed? scripts/object-store install):\n" + "\n".join(errors)
    )


@pytest.fixture(scope="session")
def object_store(tmp_path_factory):
    """The running ObjectStore; stopped at the end when this session started it."""
    store, ours = start_store(tmp_path_factory)
    yield store
    if ours:
        proc = _script("stop", store["dir"])
        assert proc.returncode == 0, proc.stderr
