"""Unit tests of the htpasswd logic and the buildset_registry_htpasswd module."""

import json
import os

import bcrypt
import pytest
from helpers import load_library, mode, read, refuse_chmod, role_message, run_main, unwritable_root

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.layout import layout
from ansible.module_utils.buildset_registry.registry import htpasswd as htp

htpasswd_module = load_library("buildset_registry_htpasswd")


def ensure(root, username, password="", cost=4, check_mode=False):
    """The part's ensure(), validated as its module does; its report and diff as one dict."""
    params = dict(root=root, username=username, password=password, bcrypt_cost=cost)
    htp.validate(params)
    outcome = htp.ensure(params, check_mode=check_mode)
    return dict(outcome.report(), diff=outcome.diff())


USER = "zuul"


def write(path, data, file_mode=0o600):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, file_mode)


def entry(path):
    """The single (user, hash) of an htpasswd file, checking its exact form."""
    data = read(path).decode()
    assert data.endswith("\n") and data.count("\n") == 1, data
    user, hashed = data[:-1].split(":", 1)
    return user, hashed


def verifies(password, hashed):
    return bcrypt.checkpw(password.encode(), hashed.encode())


def run_module(args, capsys):
    return run_main(htpasswd_module.main, args, capsys)


@pytest.fixture
def paths(root):
    return layout(root)


# Inputs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, password, cost, var",
    [
        ("", "", 4, "buildset_registry_username"),
        ("a:b", "", 4, "buildset_registry_username"),
        ("a\nb", "", 4, "buildset_registry_username"),
        (" zuul", "", 4, "buildset_registry_username"),
        ("#zuul", "", 4, "buildset_registry_username"),
        (USER, "a\nb", 4, "buildset_registry_password"),
        (USER, "a\rb", 4, "buildset_registry_password"),
        (USER, "x" * 73, 4, "buildset_registry_password"),
        (USER, "", 3, "buildset_registry_bcrypt_cost"),
        (USER, "", 32, "buildset_registry_bcrypt_cost"),
    ],
)
def test_bad_inputs_are_rejected_before_writing(root, username, password, cost, var):
    with pytest.raises(RegistryError) as exc:
        ensure(root, username, password, cost)
    assert role_message(exc.value).startswith(var + ":")
    assert password not in str(exc.value) or not password
    assert not os.path.exists(root)


def test_good_inputs_pass_validation():
    htp.validate(dict(username="user.name-1@example", password="pa:ss word", bcrypt_cost=31))
    htp.validate(dict(username=USER, password="x" * 72, bcrypt_cost=4))


def test_parse_htpasswd():
    good = htp.make_hash("pw", 4)
    assert htp.parse_htpasswd(("a:%s\nb:%s\n" % (good, good)).encode()) == ([("a", good), ("b", good)], None)
    entries, error = htp.parse_htpasswd(("a:%s\ngarbage\n" % good).encode())
    assert error == "htpasswd line 2 does not parse as user:bcrypt-hash"
    assert htp.parse_htpasswd(b"a:{SHA}abc\n")[1] is not None
    assert htp.parse_htpasswd(b"\xff\xfe")[1] == "htpasswd is not UTF-8 text"


def test_make_hash_is_2y_with_the_cost():
    hashed = htp.make_hash("pw", 5)
    assert hashed.startswith("$2y$05$") and len(hashed) == 60
    assert htp.hash_cost(hashed) == 5
    assert verifies("pw", hashed) and not verifies("pW", hashed)


def test_generated_password_has_at_least_128_bits():
    passwords = {htp.generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) >= 32 for p in passwords)  # 24 bytes, base64


# Generated password ------------------------------------------------------------


def test_first_run_generates_and_stores_password(root, paths):
    result = ensure(root, USER)
    assert result["changed"] is True
    assert result["password_generated"] is True
    assert result["reasons"] == ["password file missing", "htpasswd missing"]
    assert result["htpasswd_path"] == paths["htpasswd"]
    assert result["username"] == USER
    password = result["password"]
    assert len(password) >= 32
    assert read(paths["password"]) == (password + "\n").encode()
    user, hashed = entry(paths["htpasswd"])
    assert user == USER
    assert hashed.startswith("$2y$04$")
    assert verifies(password, hashed)
    for d in (paths["root"], paths["auth_dir"]):
        assert mode(d) == 0o700
    for f in (paths["htpasswd"], paths["password"]):
        assert mode(f) == 0o600


def test_second_run_keeps_everything(root, paths):
    first = ensure(root, USER)
    ht, pw = read(paths["htpasswd"]), read(paths["password"])
    second = ensure(root, USER)
    assert second["changed"] is False
    assert second["reasons"] == []
    assert second["password"] == first["password"]
    assert second["password_generated"] is True
    assert read(paths["htpasswd"]) == ht and read(paths["password"]) == pw


def test_stored_password_is_used(root, paths):
    os.makedirs(paths["auth_dir"])
    write(paths["password"], b"stored-password\n")
    result = ensure(root, USER)
    assert result["password"] == "stored-password"
    assert result["reasons"] == ["htpasswd missing"]
    assert verifies("stored-password", entry(paths["htpasswd"])[1])
    assert read(paths["password"]) == b"stored-password\n"


def test_empty_password_file_is_replaced(root, paths):
    os.makedirs(paths["auth_dir"])
    write(paths["password"], b"")
    result = ensure(root, USER)
    assert result["reasons"][0] == "password file empty or unusable"
    assert len(result["password"]) >= 32
    assert read(paths["password"]) == (result["password"] + "\n").encode()


def test_hash_is_verified_not_compared(root, paths):
    first = ensure(root, USER)
    # Same password and cost, other salt and the $2b$ prefix: still good.
    other = bcrypt.hashpw(first["password"].encode(), bcrypt.gensalt(4)).decode()
    assert other.startswith("$2b$04$")
    write(paths["htpasswd"], ("%s:%s\n" % (USER, other)).encode())
    result = ensure(root, USER)
    assert result["changed"] is False
    assert entry(paths["htpasswd"])[1] == other


# User's password -----------------------------------------------------------


def test_user_password_is_used_and_not_stored(root, paths):
    result = ensure(root, USER, "user-secret")
    assert result["password"] == "user-secret"
    assert result["password_generated"] is False
    assert not os.path.exists(paths["password"])
    assert verifies("user-secret", entry(paths["htpasswd"])[1])
    assert ensure(root, USER, "user-secret")["changed"] is False


def test_other_user_password_changes_hash_and_keeps_stored_file(root, paths):
    generated = ensure(root, USER)["password"]
    stored = read(paths["password"])
    result = ensure(root, USER, "new-secret")
    assert result["changed"] is True
    assert result["reasons"] == ["hash does not verify the password"]
    hashed = entry(paths["htpasswd"])[1]
    assert verifies("new-secret", hashed) and not verifies(generated, hashed)
    assert read(paths["password"]) == stored
    # Back to a generated password: the stored one comes back.
    back = ensure(root, USER)
    assert back["password"] == generated and back["changed"] is True
    assert verifies(generated, entry(paths["htpasswd"])[1])


# What the htpasswd file may hold ------------------------------------------------


def test_garbled_line_is_replaced(root, paths):
    password = ensure(root, USER)["password"]
    good = read(paths["htpasswd"])
    write(paths["htpasswd"], good + b"garbage line\n")
    result = ensure(root, USER)
    assert result["changed"] is True
    assert result["reasons"] == ["htpasswd line 2 does not parse as user:bcrypt-hash"]
    user, hashed = entry(paths["htpasswd"])
    assert user == USER and verifies(password, hashed)


def test_extra_entry_is_removed(root, paths):
    ensure(root, USER)
    good = read(paths["htpasswd"])
    write(paths["htpasswd"], good + ("other:%s\n" % htp.make_hash("x", 4)).encode())
    result = ensure(root, USER)
    assert result["reasons"] == ["htpasswd has 2 entries, want 1"]
    assert read(paths["htpasswd"]) == good  # the verified hash is kept


def test_other_user_is_replaced(root, paths):
    password = ensure(root, USER)["password"]
    result = ensure(root, "builder")
    assert result["changed"] is True
    assert result["reasons"] == ["htpasswd has no entry for builder"]
    user, hashed = entry(paths["htpasswd"])
    assert user == "builder" and verifies(password, hashed)


def test_cost_change_rehashes(root, paths):
    password = ensure(root, USER)["password"]
    result = ensure(root, USER, cost=5)
    assert result["changed"] is True
    assert result["reasons"] == ["bcrypt cost 4, want 5"]
    hashed = entry(paths["htpasswd"])[1]
    assert hashed.startswith("$2y$05$") and verifies(password, hashed)
    assert ensure(root, USER, cost=5)["changed"] is False


def test_missing_newline_is_fixed_keeping_the_hash(root, paths):
    ensure(root, USER)
    good = read(paths["htpasswd"])
    write(paths["htpasswd"], good.rstrip(b"\n"))
    result = ensure(root, USER)
    assert result["reasons"] == ["htpasswd not in canonical form"]
    assert read(paths["htpasswd"]) == good


def test_file_modes_are_fixed(root, paths):
    ensure(root, USER)
    ht = read(paths["htpasswd"])
    os.chmod(paths["htpasswd"], 0o644)
    os.chmod(paths["password"], 0o640)
    result = ensure(root, USER)
    assert result["changed"] is True
    assert sorted(result["reasons"]) == ["htpasswd mode 0644, want 0600", "password file mode 0640, want 0600"]
    assert mode(paths["htpasswd"]) == 0o600 and mode(paths["password"]) == 0o600
    assert read(paths["htpasswd"]) == ht
    assert ensure(root, USER)["changed"] is False


def test_plan_decides_from_what_is_found():
    hashed = htp.make_hash("pw", 4)
    good = htp.line(USER, hashed)
    kept = htp.plan(htp.Found(htpasswd=good, htpasswd_mode=0o600), USER, "pw", 4, None)
    assert (kept.reasons, kept.write_htpasswd, kept.keep_hash, kept.generated) == ((), False, hashed, False)
    loose = htp.Found(stored=b"pw\n", stored_mode=0o644, htpasswd=good, htpasswd_mode=0o640)
    todo = htp.plan(loose, USER, "", 4, "unused")
    assert (todo.password, todo.generated, todo.store) == ("pw", True, False)
    assert (todo.fix_stored_mode, todo.fix_htpasswd_mode, todo.write_htpasswd) == (True, True, False)
    assert todo.reasons == ("password file mode 0644, want 0600", "htpasswd mode 0640, want 0600")
    fresh = htp.plan(htp.Found(), USER, "", 4, "new-pw")
    assert (fresh.password, fresh.store, fresh.keep_hash) == ("new-pw", True, None)
    assert fresh.reasons == ("password file missing", "htpasswd missing")
    # Check mode: the new password is not made yet.
    preview = htp.plan(htp.Found(htpasswd=good, htpasswd_mode=0o600), USER, "", 4, None)
    assert (preview.password, preview.store, preview.write_htpasswd) == ("", True, True)
    assert preview.reasons == ("password file missing", "hash does not verify the new password")


def test_a_mode_that_cannot_be_fixed_fails_naming_the_file(root, paths, monkeypatch, capsys):
    ensure(root, USER)
    os.chmod(paths["htpasswd"], 0o644)
    refuse_chmod(monkeypatch)
    with pytest.raises(RegistryError) as exc:
        ensure(root, USER)
    why = "cannot change the mode of %s to 0600 (Operation not permitted)" % paths["htpasswd"]
    assert role_message(exc.value).startswith("buildset_registry_root: " + why)
    rc, out = run_module({"root": root, "username": USER}, capsys)
    assert rc == 1 and out["msg"].startswith("root: " + why) and out["changed"] is False


# Check mode -----------------------------------------------------------------


def test_check_mode_writes_nothing_on_first_run(root):
    result = ensure(root, USER, check_mode=True)
    assert result["changed"] is True
    assert result["password"] == ""
    assert result["password_generated"] is True
    assert not os.path.exists(root)


def test_check_mode_with_user_password_returns_it(root):
    result = ensure(root, USER, "user-secret", check_mode=True)
    assert (result["changed"], result["password"]) == (True, "user-secret")
    assert not os.path.exists(root)


def test_check_mode_reports_changes_without_writing(root, paths):
    password = ensure(root, USER)["password"]
    ht = read(paths["htpasswd"])
    os.chmod(paths["htpasswd"], 0o644)
    result = ensure(root, USER, cost=6, check_mode=True)
    assert result["changed"] is True
    assert result["reasons"] == ["bcrypt cost 4, want 6"]
    assert result["password"] == password
    assert read(paths["htpasswd"]) == ht
    assert mode(paths["htpasswd"]) == 0o644
    assert sorted(os.listdir(paths["auth_dir"])) == ["htpasswd", "password"]


def test_check_mode_after_a_run_reports_no_change(root):
    ensure(root, USER)
    assert ensure(root, USER, check_mode=True)["changed"] is False


# Unwritable root ------------------------------------------------------------


def test_root_below_a_regular_file_fails_clearly(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    root = str(tmp_path / "file" / "registry")
    with pytest.raises(RegistryError) as exc:
        ensure(root, USER)
    msg = role_message(exc.value)
    assert msg.startswith("buildset_registry_root: cannot create directory %s (" % root)
    assert msg.endswith("set buildset_registry_root to a directory this user can write")


# The module ---------------------------------------------------------------


def test_module_generates_then_keeps(root, paths, capsys):
    rc, first = run_module({"root": root, "username": USER}, capsys)
    assert rc == 0 and first["changed"] is True and first["password_generated"] is True
    assert verifies(first["password"], entry(paths["htpasswd"])[1])
    rc, second = run_module({"root": root, "username": USER}, capsys)
    assert (rc, second["changed"], second["password"]) == (0, False, first["password"])
    assert "$2" not in json.dumps(second)


def test_module_returns_user_password_but_masks_the_argument(root, capsys):
    # The username contains the password: AnsibleModule's masking would hit it too.
    rc, out = run_module({"root": root, "username": "user-secret", "password": "secret", "_ansible_diff": True}, capsys)
    assert rc == 0
    assert out["password"] == "secret"
    assert out["username"] == "user-secret"
    assert out["password_generated"] is False
    assert out["invocation"]["module_args"]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert out["diff"]["after"] == "htpasswd for user user-secret: hash updated\n"
    assert "$2" not in json.dumps(out["diff"])


def test_module_check_mode_writes_nothing(root, capsys):
    rc, out = run_module({"root": root, "username": USER, "_ansible_check_mode": True}, capsys)
    assert (rc, out["changed"], out["password"]) == (0, True, "")
    assert not os.path.exists(root)


@pytest.mark.parametrize(
    "args, var",
    [
        ({"username": "a:b"}, "username"),
        ({"username": "a\nb"}, "username"),
        ({"username": ""}, "username"),
        ({"username": USER, "password": "line1\nline2"}, "password"),
        ({"username": USER, "bcrypt_cost": 40}, "bcrypt_cost"),
    ],
)
def test_module_rejects_bad_inputs(root, capsys, args, var):
    rc, out = run_module(dict(args, root=root), capsys)
    assert rc == 1 and out["failed"] is True and out["changed"] is False
    assert out["msg"].startswith(var + ":")
    assert "line1" not in json.dumps(out)
    assert not os.path.exists(root)


def test_module_unwritable_root(tmp_path, capsys):
    root = unwritable_root(tmp_path)
    rc, out = run_module({"root": root, "username": USER}, capsys)
    assert rc == 1 and out["changed"] is False
    assert root in out["msg"] and "set root to a directory" in out["msg"]
