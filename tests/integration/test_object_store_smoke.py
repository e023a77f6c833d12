"""The object store the object-storage tests use really runs: a fresh bucket
is created through the Swift API, filled through the S3 API (a real AWS
signature V4 PUT) and listed through the Swift API."""

import datetime
import hashlib
import hmac
import urllib.request
import uuid

from object_store import KEY, REGION, USER


def s3_put(url, bucket, key, body):
    """PUT one object through the S3 API, signed with AWS signature V4."""
    host = url.split("://", 1)[1]
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        ["PUT", f"/{bucket}/{key}", "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", signed, payload_hash]
    )
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = f"AWS4{KEY}".encode()
    for part in (day, REGION, "s3", "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{url}/{bucket}/{key}", data=body, method="PUT")
    for name, value in headers.items():
        if name != "host":
            request.add_header(name, value)
    request.add_header(
        "Authorization", f"AWS4-HMAC-SHA256 Credential={USER}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_fresh_bucket_is_listed(object_store):  # noqa: F811
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    assert object_store.objects(bucket) == []

    params = object_store.s3(bucket, "/smoke/prefix")
    assert params["bucket"] == bucket and params["regionendpoint"] == object_store.url
    assert object_store.objects(bucket) == []

    assert s3_put(object_store.url, bucket, "smoke/prefix/hello", b"hello") == 200
    assert object_store.objects(bucket) == ["smoke/prefix/hello"]
    assert object_store["objects"](bucket, prefix="smoke/") == ["smoke/prefix/hello"]
    assert object_store.swift("c", "p")["prefix"] == "p"
