"""Unit tests of the certificate logic and the buildset_registry_cert module."""

import datetime
import json
import os
import re
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from helpers import load_library, mode, read, refuse_chmod, role_message, run_main, unwritable_root

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.layout import layout, write_atomic
from ansible.module_utils.buildset_registry.registry import cert as cert

cert_module = load_library("buildset_registry_cert")


def ensure(root, host, extra_names=(), valid_days=365, renew_days=30, check_mode=False, now=None):
    """The part's ensure(), validated as its module does; its report as a dict."""
    params = dict(root=root, host=host, extra_names=list(extra_names), valid_days=valid_days, renew_days=renew_days)
    cert.validate(params)
    return cert.ensure(params, check_mode=check_mode, now=now).report()


HOST = "203.0.113.10"
LOCAL_SANS = {"IP:127.0.0.1", "IP:::1", "DNS:localhost"}


def load(path):
    return x509.load_pem_x509_certificate(read(path))


def san_strings(c):
    ext = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {"IP:%s" % n.value.compressed if isinstance(n, x509.IPAddress) else "DNS:%s" % n.value for n in ext}


def run_module(args, capsys):
    return run_main(cert_module.main, args, capsys)


# Names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("10.0.0.1", ("IP", "10.0.0.1")),
        ("2001:DB8:0:0::1", ("IP", "2001:db8::1")),
        ("Registry.Example.org", ("DNS", "registry.example.org")),
        ("node-1", ("DNS", "node-1")),
        ("a" * 63 + ".example", ("DNS", "a" * 63 + ".example")),
    ],
)
def test_classify_name_accepts(name, expected):
    assert cert.classify_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a b",
        "-node",
        "node-",
        "a..b",
        "node.",
        "a" * 64,
        "bad_name",
        "*.example.org",
        "10.0.0.256",
        "fe80::1%eth0",
        "[::1]",
        ".".join(["a" * 60] * 5),
    ],
)
def test_classify_name_rejects(name):
    assert cert.classify_name(name) is None


def test_requested_sans_adds_local_names_and_dedupes():
    sans = cert.requested_sans("localhost", ["127.0.0.1", "reg.example.org", "REG.example.org"])
    assert sans == ["DNS:localhost", "IP:127.0.0.1", "DNS:reg.example.org", "IP:::1"]


def test_bad_host_names_the_variable():
    with pytest.raises(RegistryError) as exc:
        cert.requested_sans("a b", [])
    assert re.match(r"^buildset_registry_host: 'a b' is not a valid", role_message(exc.value))


def test_bad_extra_name_names_the_variable():
    with pytest.raises(RegistryError) as exc:
        cert.requested_sans(HOST, ["ok.example.org", "bad_name"])
    assert re.match(r"^buildset_registry_cert_extra_names: 'bad_name'", role_message(exc.value))


def test_renew_days_not_below_valid_days_is_rejected(root):
    with pytest.raises(RegistryError) as exc:
        ensure(root, HOST, valid_days=10, renew_days=30)
    assert re.search(
        "buildset_registry_cert_renew_days: 30 .*buildset_registry_cert_valid_days", role_message(exc.value)
    )
    assert not os.path.exists(root)


# Making and keeping ---------------------------------------------------------


def test_first_run_makes_key_and_ca_certificate(root):
    result = ensure(root, HOST, ["reg.example.org"])
    paths = layout(root)
    assert result["changed"] is True
    assert result["reasons"] == ["private key missing", "certificate missing"]
    assert (result["cert_path"], result["key_path"]) == (paths["cert"], paths["key"])
    assert mode(paths["root"]) == 0o700
    assert mode(paths["certs_dir"]) == 0o700
    assert mode(paths["key"]) == 0o600
    assert mode(paths["cert"]) == 0o644

    c = load(paths["cert"])
    assert result["cert"].encode() == read(paths["cert"])
    assert san_strings(c) == {"IP:" + HOST, "DNS:reg.example.org"} | LOCAL_SANS
    assert set(result["sans"]) == san_strings(c)
    assert c.subject.rfc4514_string() == "CN=" + HOST
    assert c.issuer == c.subject
    c.verify_directly_issued_by(c)  # self-signed: raises when not
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_cert_sign
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    days = (c.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)).days
    assert 363 <= days <= 365
    assert result["not_after"] == c.not_valid_after_utc.isoformat()

    key = serialization.load_pem_private_key(read(paths["key"]), None)
    assert key.public_key() == c.public_key()
    assert "PRIVATE KEY" not in json.dumps(result)


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl CLI not installed")
def test_openssl_accepts_the_certificate_as_its_own_ca(root):
    path = ensure(root, HOST, ["reg.example.org"])["cert_path"]
    for check in (
        ["-verify_ip", HOST],
        ["-verify_ip", "::1"],
        ["-verify_hostname", "reg.example.org"],
        ["-purpose", "sslserver"],
    ):
        out = subprocess.run(["openssl", "verify", "-CAfile", path] + check + [path], capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip().endswith(": OK"), (check, out)
    bad = subprocess.run(
        ["openssl", "verify", "-CAfile", path, "-verify_ip", "192.0.2.1", path], capture_output=True, text=True
    )
    assert bad.returncode != 0


def test_second_run_keeps_both_files(root):
    first = ensure(root, HOST)
    paths = layout(root)
    key, crt = read(paths["key"]), read(paths["cert"])
    second = ensure(root, HOST)
    assert second["changed"] is False
    assert second["reasons"] == []
    assert read(paths["key"]) == key and read(paths["cert"]) == crt
    assert second["cert"] == first["cert"]
    assert second["fingerprint"] == first["fingerprint"]


def test_time_passing_alone_keeps_the_certificate(root):
    ensure(root, HOST)
    crt = read(layout(root)["cert"])
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=300)
    assert ensure(root, HOST, now=later)["changed"] is False
    assert read(layout(root)["cert"]) == crt


def test_new_name_regenerates_certificate_with_same_key(root):
    ensure(root, HOST)
    paths = layout(root)
    key, crt = read(paths["key"]), read(paths["cert"])
    result = ensure(root, HOST, ["10.0.0.1", "reg.example.org"])
    assert result["changed"] is True
    assert result["reasons"] == ["subjectAltName lacks IP:10.0.0.1", "subjectAltName lacks DNS:reg.example.org"]
    assert read(paths["key"]) == key
    assert read(paths["cert"]) != crt
    assert {"IP:10.0.0.1", "DNS:reg.example.org"} <= san_strings(load(paths["cert"]))


def test_dropped_name_keeps_the_certificate(root):
    ensure(root, HOST, ["reg.example.org"])
    crt = read(layout(root)["cert"])
    assert ensure(root, HOST)["changed"] is False
    assert read(layout(root)["cert"]) == crt


def test_new_host_regenerates(root):
    ensure(root, HOST)
    result = ensure(root, "registry.example.org")
    assert result["reasons"] == ["subjectAltName lacks DNS:registry.example.org"]
    assert load(layout(root)["cert"]).subject.rfc4514_string() == "CN=registry.example.org"


def test_longer_renew_window_regenerates(root):
    ensure(root, HOST, valid_days=40, renew_days=30)
    crt = read(layout(root)["cert"])
    assert ensure(root, HOST, valid_days=40, renew_days=30)["changed"] is False
    result = ensure(root, HOST, valid_days=60, renew_days=45)
    assert result["changed"] is True
    assert len(result["reasons"]) == 1
    assert result["reasons"][0].startswith("expires within 45 days (")
    assert read(layout(root)["cert"]) != crt
    assert ensure(root, HOST, valid_days=60, renew_days=45)["changed"] is False


def test_old_certificate_near_expiry_regenerates(root):
    ensure(root, HOST)
    paths = layout(root)
    key = serialization.load_pem_private_key(read(paths["key"]), None)
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=355)
    old = cert.make_cert(key, HOST, cert.requested_sans(HOST), 365, now=long_ago)
    write_atomic(paths["cert"], old, 0o644)

    result = ensure(root, HOST)
    assert result["reasons"][0].startswith("expires within 30 days (")
    c = load(paths["cert"])
    assert read(paths["cert"]) != old
    assert c.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=360)


def test_expired_certificate_regenerates(root):
    ensure(root, HOST)
    paths = layout(root)
    key = serialization.load_pem_private_key(read(paths["key"]), None)
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=400)
    write_atomic(paths["cert"], cert.make_cert(key, HOST, cert.requested_sans(HOST), 365, now=long_ago), 0o644)
    assert ensure(root, HOST)["reasons"][0].startswith("expired (")


def test_certificate_not_matching_key_regenerates(root):
    ensure(root, HOST)
    paths = layout(root)
    other = cert.key_pem(cert.make_key())
    write_atomic(paths["key"], other, 0o600)
    result = ensure(root, HOST)
    assert result["reasons"] == ["certificate does not match the key"]
    assert read(paths["key"]) == other  # a parsable key is kept
    key = serialization.load_pem_private_key(other, None)
    assert load(paths["cert"]).public_key() == key.public_key()


def test_unparsable_key_makes_new_key_and_certificate(root):
    ensure(root, HOST)
    paths = layout(root)
    crt = read(paths["cert"])
    with open(paths["key"], "wb") as f:
        f.write(b"not a key\n")
    result = ensure(root, HOST)
    assert result["reasons"] == ["private key unparsable"]
    serialization.load_pem_private_key(read(paths["key"]), None)
    assert read(paths["cert"]) != crt
    assert mode(paths["key"]) == 0o600


def test_missing_key_makes_new_key_and_certificate(root):
    ensure(root, HOST)
    paths = layout(root)
    os.unlink(paths["key"])
    result = ensure(root, HOST)
    assert result["reasons"] == ["private key missing"]
    key = serialization.load_pem_private_key(read(paths["key"]), None)
    assert load(paths["cert"]).public_key() == key.public_key()


def test_unparsable_certificate_regenerates_with_same_key(root):
    ensure(root, HOST)
    paths = layout(root)
    key = read(paths["key"])
    with open(paths["cert"], "wb") as f:
        f.write(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    result = ensure(root, HOST)
    assert result["reasons"] == ["certificate unparsable"]
    assert read(paths["key"]) == key
    load(paths["cert"])


def test_key_mode_is_fixed_without_new_certificate(root):
    ensure(root, HOST)
    paths = layout(root)
    crt = read(paths["cert"])
    os.chmod(paths["key"], 0o644)
    result = ensure(root, HOST)
    assert result["changed"] is True
    assert result["reasons"] == ["private key mode 0644, want 0600"]
    assert mode(paths["key"]) == 0o600
    assert read(paths["cert"]) == crt


def test_plan_decides_from_the_files_and_the_key_mode():
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = cert.requested_sans(HOST)
    key = cert.make_key()
    pem, crt = cert.key_pem(key), cert.make_cert(key, HOST, sans, 365, now)
    reasons = ("private key missing", "certificate missing")
    assert cert.plan(None, None, None, sans, 30, now) == cert.Plan(True, True, False, reasons)
    assert cert.plan(pem, crt, 0o600, sans, 30, now) == cert.Plan(False, False, False, ())
    assert cert.plan(pem, crt, 0o644, sans, 30, now) == cert.Plan(
        False, False, True, ("private key mode 0644, want 0600",)
    )
    todo = cert.plan(pem, None, 0o640, sans, 30, now)
    assert (todo.new_key, todo.new_cert, todo.fix_key_mode) == (False, True, True)
    assert todo.reasons == ("certificate missing", "private key mode 0640, want 0600")
    assert cert.plan(b"junk", crt, 0o600, sans, 30, now).reasons == ("private key unparsable",)


def test_a_key_mode_that_cannot_be_fixed_fails_naming_the_file(root, monkeypatch, capsys):
    ensure(root, HOST)
    key = layout(root)["key"]
    os.chmod(key, 0o644)
    refuse_chmod(monkeypatch)
    with pytest.raises(RegistryError) as exc:
        ensure(root, HOST)
    why = "cannot change the mode of %s to 0600 (Operation not permitted)" % key
    assert role_message(exc.value).startswith("buildset_registry_root: " + why)
    rc, out = run_module({"root": root, "host": HOST}, capsys)
    assert rc == 1 and out["msg"].startswith("root: " + why) and out["changed"] is False


def test_long_host_is_truncated_in_common_name(root):
    host = "a" * 40 + "." + "b" * 40 + ".example"
    ensure(root, host)
    c = load(layout(root)["cert"])
    assert c.subject.rfc4514_string() == "CN=" + host[:64]
    assert "DNS:" + host in san_strings(c)


# Check mode ---------------------------------------------------------------


def test_check_mode_writes_nothing_on_first_run(root):
    result = ensure(root, HOST, check_mode=True)
    assert result["changed"] is True
    assert result["cert"] == ""
    assert result["reasons"] == ["private key missing", "certificate missing"]
    assert not os.path.exists(root)


def test_check_mode_reports_regeneration_without_writing(root):
    ensure(root, HOST)
    paths = layout(root)
    before = sorted(os.listdir(paths["certs_dir"]))
    crt = read(paths["cert"])
    result = ensure(root, HOST, ["reg.example.org"], check_mode=True)
    assert result["changed"] is True
    assert result["reasons"] == ["subjectAltName lacks DNS:reg.example.org"]
    assert read(paths["cert"]) == crt
    assert sorted(os.listdir(paths["certs_dir"])) == before


# Unwritable root ------------------------------------------------------------


def test_root_below_a_regular_file_fails_clearly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    root = str(blocker / "registry")
    with pytest.raises(RegistryError) as exc:
        ensure(root, HOST)
    msg = role_message(exc.value)
    assert msg.startswith("buildset_registry_root: cannot create directory %s (" % root)
    assert msg.endswith("set buildset_registry_root to a directory this user can write")


# The module ---------------------------------------------------------------


def test_module_first_and_second_run(root, capsys):
    rc, first = run_module({"root": root, "host": HOST}, capsys)
    assert rc == 0
    assert first["changed"] is True
    assert first["cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert set(first) >= {"cert", "cert_path", "key_path", "sans", "not_after", "fingerprint", "reasons"}
    assert first["fingerprint"] == load(first["cert_path"]).fingerprint(hashes.SHA256()).hex()
    assert "PRIVATE KEY" not in json.dumps(first)
    rc, second = run_module({"root": root, "host": HOST}, capsys)
    assert (rc, second["changed"], second["reasons"]) == (0, False, [])
    assert second["cert"] == first["cert"]


def test_module_diff_shows_certificate_facts_not_the_key(root, capsys):
    ensure(root, HOST)
    rc, out = run_module(
        {"root": root, "host": HOST, "extra_names": ["reg.example.org"], "_ansible_diff": True}, capsys
    )
    assert rc == 0 and out["changed"] is True
    before, after = out["diff"]["before"], out["diff"]["after"]
    assert "DNS:reg.example.org" not in before and "DNS:reg.example.org" in after
    assert "sha256: %s" % out["fingerprint"] in after
    key = read(layout(root)["key"]).decode()
    assert "PRIVATE" not in before + after and key not in json.dumps(out)


def test_module_check_mode_writes_nothing(root, capsys):
    rc, out = run_module({"root": root, "host": HOST, "_ansible_check_mode": True}, capsys)
    assert (rc, out["changed"]) == (0, True)
    assert not os.path.exists(root)


def test_module_rejects_bad_host(root, capsys):
    rc, out = run_module({"root": root, "host": "a b"}, capsys)
    assert rc == 1 and out["failed"] is True and out["changed"] is False
    # The part module names its own option; the role's module, the role variable.
    assert out["msg"].startswith("host: 'a b' is not a valid DNS name or IP address")
    assert not os.path.exists(root)


def test_module_rejects_bad_extra_name(root, capsys):
    rc, out = run_module({"root": root, "host": HOST, "extra_names": ["ok.example", "no way"]}, capsys)
    assert rc == 1 and out["msg"].startswith("extra_names: 'no way'")


def test_module_unwritable_root(tmp_path, capsys):
    root = unwritable_root(tmp_path)
    rc, out = run_module({"root": root, "host": HOST}, capsys)
    assert rc == 1 and out["changed"] is False
    assert root in out["msg"] and "set root to a directory" in out["msg"]
