# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The Python libraries the modules need on the node: whether this Python
has them, in which version, and what to tell the user when one will not
do. Standard library only, and nothing here imports a library it checks:
a module runs this before its job, so that a missing or old library fails
the task before anything changes, with a message (never a traceback,
which a no_log task shows as a bare MODULE FAILURE).

The least versions are the oldest the tests run (README.rst, Support
matrix): Ubuntu 22.04's python3-docker, python3-cryptography and
python3-bcrypt.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import sys

try:
    from importlib import metadata as _metadata
except ImportError:  # Python < 3.8
    _metadata = None

# name -> (least version that works, what it is)
LEAST = {
    "docker": ((5, 0, 3), "the Docker SDK for Python"),
    "cryptography": ((3, 4, 8), "cryptography"),
    "bcrypt": ((3, 2, 0), "bcrypt"),
}
# Distribution packages of each (Debian/Ubuntu and Fedora/RHEL use the same names).
PACKAGES = {name: "python3-" + name for name in LEAST}

# The docker SDK before 7.1.0 talks to the engine through a requests adapter
# that requests 2.32.0 broke ("Not supported URL scheme http+docker"), and
# before 6.1.0 through urllib3 1.x internals that urllib3 2.0 removed.
CLASHES = (
    # (library, fixed in, other library, breaks from)
    ("docker", (7, 1, 0), "requests", (2, 32, 0)),
    ("docker", (6, 1, 0), "urllib3", (2, 0, 0)),
)


def parse(text):
    """The leading numbers of a version string as a tuple ("3.2.2" -> (3, 2, 2); "" -> ())."""
    numbers = re.match(r"\s*v?(\d+(?:\.\d+)*)", text or "")
    return tuple(int(n) for n in numbers.group(1).split(".")) if numbers else ()


def show(version):
    return ".".join(str(n) for n in version)


def installed(name):
    """The version string of the distribution name on this Python, None when
    it cannot be imported, "" when importable but of unknown version."""
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except (ImportError, ValueError):
        return None
    if _metadata is not None:
        try:
            return _metadata.version(name)
        except Exception:  # PackageNotFoundError; a broken metadata directory
            pass
    return ""


def _python():
    return "%s (Python %s)" % (sys.executable or "this Python", platform.python_version())


def _fix(name, least):
    return (
        "install it with `%s -m pip install '%s>=%s'`, or the distribution's package %s; or set "
        "ansible_python_interpreter to a Python that has it"
        % (sys.executable or "python3", name, show(least), PACKAGES.get(name, name))
    )


def problems(names, found=None):
    """Why the libraries names will not do on this Python: a message per
    library (missing, too old, or clashing with another library), [] when
    all will. found: name -> version string, None for missing (default:
    what installed() finds)."""
    found = dict(found or {})
    version = lambda name: found[name] if name in found else installed(name)  # noqa: E731
    out = []
    for name in names:
        least, what = LEAST.get(name, ((), name))
        have = version(name)
        label = name if what == name else "%s (%s)" % (name, what)
        if have is None:
            out.append(
                "%s is missing on %s; the role needs %s or newer: %s"
                % (label, _python(), show(least) or "any version", _fix(name, least))
            )
        elif have and parse(have) < least:
            out.append(
                "%s %s on %s is older than %s, the oldest the role works with: %s"
                % (label, have, _python(), show(least), _fix(name, least))
            )
    for name, fixed, other, breaks in CLASHES:
        if name not in names:
            continue
        have, theirs = version(name), version(other)
        if have and theirs and parse(have) < fixed and parse(theirs) >= breaks:
            out.append(
                "%s %s on %s does not work with %s %s (fixed in %s %s): install %s>=%s "
                "(`%s -m pip install '%s>=%s'`), or %s<%s"
                % (
                    name,
                    have,
                    _python(),
                    other,
                    theirs,
                    name,
                    show(fixed),
                    name,
                    show(fixed),
                    sys.executable or "python3",
                    name,
                    show(fixed),
                    other,
                    show(breaks),
                )
            )
    return out
