# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The node's side of `use`: which client families it has, whose home to
use, and reading and writing its files and the directories we make.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.layout import write_atomic
from ansible.module_utils.buildset_registry.use import buildkit as buildkit
from ansible.module_utils.buildset_registry.use import containerd as containerd
from ansible.module_utils.buildset_registry.use import containers_image as containers
from ansible.module_utils.buildset_registry.use import docker as docker

# A client family is configured when its /etc directory exists or one of
# its programs is installed. buildkit also wherever the docker CLI is:
# buildx is its plugin, and zuul-jobs' buildx builder reads our file.
FAMILIES = {
    "docker": (docker.ETC, ("dockerd",)),
    "containers": (containers.ETC, ("podman", "buildah", "skopeo", "crio")),
    "containerd": (containerd.ETC, ("containerd", "ctr", "nerdctl")),
    "buildkit": (buildkit.ETC, ("buildkitd", "buildctl", "docker")),
}
_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])


def families():
    return {
        name: os.path.isdir(etc) or any(shutil.which(p, path=_PATH) for p in programs)
        for name, (etc, programs) in FAMILIES.items()
    }


def default_home():
    """The home of the user Ansible connects as: sudo's caller, else the running user."""
    user = os.environ.get("SUDO_USER") if os.getuid() == 0 else None
    try:
        return pwd.getpwnam(user).pw_dir if user else pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return os.path.expanduser("~")


def read(path):
    """(bytes, mode) of path, (None, None) when missing."""
    try:
        with open(path, "rb") as f:
            return f.read(), stat.S_IMODE(os.fstat(f.fileno()).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except OSError as e:
        raise RegistryError(
            None, "cannot read %s (%s); run the use entry point as root (become)", path, e.strerror or e
        ) from None


def write(path, data, mode, owner=None, in_place=False):
    """Write data (None: remove) through a temp file and a rename, or in
    place (/etc/hosts: in a container often a bind mount, which a rename
    cannot replace). A file keeps its owner; a new one gets owner."""
    if data is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    if in_place and st is not None:
        with open(real, "r+b") as f:
            f.write(data)
            f.truncate()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        return
    write_atomic(real, data, mode)
    owner = (st.st_uid, st.st_gid) if st is not None else owner
    if owner and os.getuid() == 0:
        os.chown(real, *owner)


def isdir(path):
    return os.path.isdir(path)


def make_dirs(dirs, owner):
    """Make the missing dirs ([(path, mode)], outermost first)."""
    for path, mode in dirs:
        if not os.path.isdir(path):
            os.mkdir(path, mode)
            os.chmod(path, mode)
            if owner and os.getuid() == 0:
                os.chown(path, *owner)


def remove_dirs(state, keep):
    """Remove the dirs we made that are empty and not in keep, deepest first."""
    for path in sorted(state["dirs"], key=len, reverse=True):
        if path in keep:
            continue
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:
            continue  # not empty: someone else's files are in it now
        state["dirs"].remove(path)
