"""cert_check.kept(), the re-run's check without cryptography, agrees with
cert.ensure(), which decides with cryptography: kept() returns an Outcome
exactly when ensure() would change nothing, with the same data."""

import datetime
import os

import pytest

from ansible.module_utils.buildset_registry.common.layout import layout
from ansible.module_utils.buildset_registry.registry import cert, cert_check


def params(root, **over):
    return dict(dict(root=root, host="192.0.2.10", extra_names=[], valid_days=365, renew_days=30), **over)


def agree(p):
    """kept()'s answer, checked against ensure() in check mode (which changes nothing)."""
    fast = cert_check.kept(p)
    slow = cert.ensure(p, check_mode=True)
    assert (fast is not None) == (not slow.changed), (fast, slow.reasons)
    if fast is not None:
        for key in ("cert", "sans", "not_after", "fingerprint", "cert_path", "key_path"):
            assert fast.data[key] == slow.data[key], key
        assert fast.before == slow.before
    return fast, slow.reasons


def test_a_fresh_key_and_certificate_are_kept_with_the_data_ensure_gives(root):
    cert.ensure(params(root))
    fast, reasons = agree(params(root))
    assert fast is not None and reasons == []


@pytest.mark.parametrize(
    "over, reason",
    [
        (dict(host="192.0.2.11"), "subjectAltName lacks"),
        (dict(extra_names=["registry.example"]), "subjectAltName lacks"),
        (dict(renew_days=400), "expires within"),
    ],
)
def test_what_ensure_would_change_kept_leaves_to_it(root, over, reason):
    cert.ensure(params(root))
    fast, reasons = agree(params(root, **over))
    assert fast is None and any(reason in r for r in reasons), reasons


def test_damaged_or_mismatched_files_are_left_to_ensure(root, tmp_path):
    p = params(root)
    paths = layout(root)
    cert.ensure(p)
    os.chmod(paths["key"], 0o644)
    assert agree(p)[0] is None
    os.chmod(paths["key"], 0o600)
    other = str(tmp_path / "other")
    cert.ensure(params(other))
    with open(layout(other)["key"], "rb") as f:
        foreign = f.read()
    with open(paths["key"], "wb") as f:
        f.write(foreign)
    assert agree(p)[0] is None
    cert.ensure(p)
    with open(paths["cert"], "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\ngarbled\n-----END CERTIFICATE-----\n")
    assert agree(p)[0] is None
    os.unlink(paths["cert"])
    assert agree(p)[0] is None


def test_an_expired_certificate_is_left_to_ensure(root):
    p = params(root, valid_days=2, renew_days=1)
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=10)
    cert.ensure(p, now=long_ago)
    assert agree(p)[0] is None
