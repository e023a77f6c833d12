"""Image indexes as buildx writes them, built offline in an OCI layout:
one manifest per platform and an attestation manifest (platform
unknown/unknown, in-toto layer), each with digests of its own.

An Index is written at path as an OCI layout (skopeo's `oci:PATH:TAG`)
and, for ctr, as a tar of that layout (`ctr image import`), with the
image name ctr gives it in the annotations.
"""

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from clients import sha256

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
IN_TOTO = "application/vnd.in-toto+json"
PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass(frozen=True)
class Child:
    digest: str
    size: int
    platform: str  # os/arch, or "unknown/unknown" for the attestation
    descriptor: dict

    @property
    def attestation(self):
        return self.platform == "unknown/unknown"


@dataclass(frozen=True)
class Index:
    path: Path
    raw: bytes
    children: tuple
    blobs: dict  # digest -> bytes, of every child manifest, config and layer

    @property
    def digest(self):
        return sha256(self.raw)

    def platform(self, platform):
        return next(c for c in self.children if c.platform == platform)

    def oci(self, tag="latest"):
        """The layout's reference for skopeo."""
        return f"oci:{self.path}:{tag}"

    def archive(self, name):
        """A tar of the layout that `ctr image import` names `name`."""
        self._write_layout(self.path, name)
        target = self.path.with_suffix(".tar")
        with tarfile.open(target, "w") as tar:
            for item in sorted(self.path.rglob("*")):
                if item.is_file():
                    tar.add(item, arcname=str(item.relative_to(self.path)))
        return target

    def _write_layout(self, path, name=None):
        path.mkdir(parents=True, exist_ok=True)
        blobs = path / "blobs" / "sha256"
        blobs.mkdir(parents=True, exist_ok=True)
        for digest, data in {**self.blobs, self.digest: self.raw}.items():
            (blobs / digest.split(":", 1)[1]).write_bytes(data)
        annotations = {"org.opencontainers.image.ref.name": name.rsplit(":", 1)[1] if name else "latest"}
        if name:
            annotations["io.containerd.image.name"] = name
        top = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_INDEX, "digest": self.digest, "size": len(self.raw), "annotations": annotations}
            ],
        }
        (path / "index.json").write_text(json.dumps(top))
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


def _blob(data, blobs):
    blobs[sha256(data)] = data
    return sha256(data), len(data)


def _layer(label, size):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("payload", os.urandom(size)), ("IMAGE", label.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue(), gzip.compress(raw.getvalue(), mtime=0)


def _manifest(config, layers, blobs, annotations=None):
    config_digest, config_size = _blob(config, blobs)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": layers,
    }
    if annotations:
        manifest["annotations"] = annotations
    return _blob(json.dumps(manifest, sort_keys=True).encode(), blobs)


def _platform_child(platform, label, size, blobs):
    os_name, arch = platform.split("/")
    tar, layer = _layer(f"{label} {platform}", size)
    layer_digest, layer_size = _blob(layer, blobs)
    config = json.dumps(
        {"architecture": arch, "os": os_name, "config": {"Labels": {"it.label": label}},
         "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]}},
        sort_keys=True,
    ).encode()  # fmt: skip
    digest, size = _manifest(config, [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer_size}], blobs)
    descriptor = {"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                  "platform": {"architecture": arch, "os": os_name}}  # fmt: skip
    return Child(digest, size, platform, descriptor)


def _attestation(subject, label, blobs):
    """What buildx adds by default: an in-toto statement about subject."""
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": subject.digest}],
                            "predicateType": "https://slsa.dev/provenance/v0.2", "predicate": {"label": label}},
                           sort_keys=True).encode()  # fmt: skip
    statement_digest, statement_size = _blob(statement, blobs)
    config = json.dumps({"architecture": "unknown", "os": "unknown", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [statement_digest]}}, sort_keys=True).encode()  # fmt: skip
    layers = [{"mediaType": IN_TOTO, "digest": statement_digest, "size": statement_size,
               "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]  # fmt: skip
    digest, size = _manifest(config, layers, blobs)
    descriptor = {
        "mediaType": OCI_MANIFEST, "digest": digest, "size": size,
        "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {"vnd.docker.reference.digest": subject.digest,
                        "vnd.docker.reference.type": "attestation-manifest"},
    }  # fmt: skip
    return Child(digest, size, "unknown/unknown", descriptor)


def make_index(path, label, platforms=PLATFORMS, size=32 * 1024):
    """A new index: one child per platform and an attestation of the first."""
    blobs = {}
    children = [_platform_child(platform, label, size, blobs) for platform in platforms]
    children.append(_attestation(children[0], label, blobs))
    return index_of(path, children, blobs)


def index_of(path, children, blobs, annotations=None):
    """An index over children (taken from other indexes: their blobs too)."""
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [c.descriptor for c in children]}
    if annotations:
        index["annotations"] = annotations
    used = {digest: data for digest, data in blobs.items()}
    made = Index(Path(path), json.dumps(index, sort_keys=True).encode(), tuple(children), used)
    made._write_layout(Path(path))
    return made
