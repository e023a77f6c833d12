# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""/etc/hosts lines for the registry's host names (an IPv6 registry needs
one: clients reject IPv6 literals in image references).

We own the lines that end with MARKER and nothing else: every other line
keeps its bytes. Pure: bytes in, bytes out.
"""

from __future__ import annotations

MARKER = b"# buildset-registry"


def line(name, address):
    return b"%s %s  %s\n" % (address.encode(), name.encode(), MARKER)


def _ours(text):
    return text.rstrip(b"\r\n").endswith(MARKER)


def wanted_lines(addresses):
    """Our lines for addresses (host name -> IP address), in name order."""
    return [line(name, addresses[name]) for name in sorted(addresses)]


def apply(data, addresses, record):
    """/etc/hosts with our lines for addresses; returns (bytes, reasons).

    Lines already as wanted stay where they are; otherwise ours are taken
    out and the wanted ones appended. record["newline_added"] notes a
    final line break we had to add to the user's last line.
    """
    want = wanted_lines(addresses)
    lines = (data or b"").splitlines(keepends=True)
    if [text for text in lines if _ours(text)] == want:
        return data, []
    kept = [text for text in lines if not _ours(text)]
    if not want and data is None:
        return None, []
    reasons = ["%s %s" % ("adds" if want else "removes", ", ".join(sorted(addresses)) or "our lines")]
    if kept and not kept[-1].endswith(b"\n") and want:
        kept[-1] += b"\n"
        record["newline_added"] = True
    return b"".join(kept + want), reasons


def revert(data, record):
    """/etc/hosts without our lines; returns (bytes, reasons)."""
    if data is None:
        return None, []
    lines = data.splitlines(keepends=True)
    kept = [text for text in lines if not _ours(text)]
    if len(kept) == len(lines):
        return data, []
    new = b"".join(kept)
    # The line break we added to the user's last line goes too, when ours
    # still end the file.
    if record.get("newline_added") and _ours(lines[-1]) and new.endswith(b"\n"):
        new = new[:-1]
    return new, ["our lines removed, the rest kept"]


def masked(data):
    return (data or b"").decode("utf-8", "replace")
