# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The one description of what lives under buildset_registry_root.

Every module, task and test takes paths from here instead of spelling them.
"""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.buildset_registry.common.errors import RegistryError

# Inside the containers.
CONTAINER_DATA = "/var/lib/registry"
CONTAINER_CERTS = "/certs"
CONTAINER_REGISTRY_CONFIG = "/etc/docker/registry/config.yml"
CONTAINER_FRONT_CONFIG = "/etc/caddy/caddy.json"


def layout(root):
    """Return the paths under root as a dict of absolute paths."""
    root = os.path.abspath(root)
    return {
        "root": root,
        "certs_dir": os.path.join(root, "certs"),
        "cert": os.path.join(root, "certs", "domain.crt"),
        "key": os.path.join(root, "certs", "domain.key"),
        "auth_dir": os.path.join(root, "auth"),
        "htpasswd": os.path.join(root, "auth", "htpasswd"),
        "password": os.path.join(root, "auth", "password"),
        "config_dir": os.path.join(root, "config"),
        "proxy_config": os.path.join(root, "config", "proxy.yml"),
        "push_config": os.path.join(root, "config", "push.yml"),
        # Holds the bcrypt hash and the tokens: 0600 like every config file.
        "front_config": os.path.join(root, "config", "front.json"),
        "served_state": os.path.join(root, "config", "served.json"),
        # What the buildset pushed.
        "data_dir": os.path.join(root, "data"),
        # docker.io's proxy's cache of the upstream, apart from the pushed data.
        "cache_dir": os.path.join(root, "cache"),
        # Another namespace N's cache: caches/N.
        "caches_dir": os.path.join(root, "caches"),
    }


def ensure_dir(path, mode=0o700):
    """Create path, and each missing parent, with mode; True when it was made."""
    if os.path.isdir(path):
        return False
    parent = os.path.dirname(path)
    if parent != path and not os.path.exists(parent):
        ensure_dir(parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return False
    os.chmod(path, mode)
    return True


def ensure_dirs(dirs):
    """Create each missing directory of dirs (0700), in order.

    A failure raises RegistryError naming the directory and the root option.
    """
    for path in dirs:
        try:
            ensure_dir(path)
        except OSError as e:
            raise RegistryError(
                "root",
                "{root}: cannot create directory %s (%s); set {root} to a directory this user can write",
                e.filename or path,
                e.strerror or e,
            ) from e


def write_file(path, data, mode):
    """write_atomic() into a directory made when missing; a failure raises
    RegistryError naming the file and the root option."""
    ensure_dirs((os.path.dirname(path),))
    try:
        write_atomic(path, data, mode)
    except OSError as e:
        raise RegistryError(
            "root",
            "{root}: cannot write %s (%s); set {root} to a directory this user can write",
            path,
            e.strerror or e,
        ) from e


def file_mode(path):
    """The permission bits of path, None when it is missing."""
    try:
        return os.stat(path).st_mode & 0o7777
    except (FileNotFoundError, NotADirectoryError):
        return None


def set_mode(path, mode):
    """chmod; a failure raises RegistryError naming the file and the root option."""
    try:
        os.chmod(path, mode)
    except OSError as e:
        raise RegistryError(
            "root",
            "{root}: cannot change the mode of %s to %04o (%s); run as the user that owns it, "
            "or set {root} to a directory this user owns",
            path,
            mode,
            e.strerror or e,
        ) from e


def read_optional(path):
    """Return the bytes of path, or None when it does not exist.

    Any other failure to read raises RegistryError naming the file and the
    root option.
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        # Missing; a path that cannot be made fails later, naming the directory.
        return None
    except OSError as e:
        raise RegistryError(
            "root",
            "{root}: cannot read %s (%s); fix its permissions, run as the user that owns {root}, "
            "or remove the file so a new one is made",
            path,
            e.strerror or e,
        ) from e


def write_atomic(path, data, mode):
    """Write data (bytes or str) to path through a temp file in the same
    directory, its mode set before the rename, so that no reader ever sees
    a half-written or briefly world-readable file."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
