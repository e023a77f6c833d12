"""Standalone buildkit's part of use: /etc/buildkit/buildkitd.toml with a
[registry."N"] per namespace (mirrors with the namespace's prefix) and
[registry."ENDPOINT"] with the CA, in a block of ours. The owner's bytes
outside it are kept, a table of theirs we need merges into ours, a re-run
changes nothing and absent puts every byte back; and the other families'
namespace mirrors (containers-image's prefix, containerd's override_path)."""

import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11: the unit tests on Python 3.9
    import tomli as tomllib
from helpers import use_fact
from test_use_plan import ALL, HOME, USER_FILES, Node

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.namespaces import default_value
from ansible.module_utils.buildset_registry.use import buildkit as buildkit
from ansible.module_utils.buildset_registry.use import containerd as containerd
from ansible.module_utils.buildset_registry.use import containers_image as containers
from ansible.module_utils.buildset_registry.use import tomlblock as tomlblock
from ansible.module_utils.buildset_registry.use.inputs import validate

ONE = "registry.example.org:5000"
PUSH = "registry.example.org:5001"
NAMESPACES = ["docker.io", "quay.io", "registry.k8s.io", "registry.example.com:5000"]
WITH_BUILDKIT = dict(ALL, buildkit=True)


def wanted(namespaces=NAMESPACES):
    return validate(use_fact(mirrors=[ONE]), list(namespaces))


def plan(old, namespaces=NAMESPACES, record=None):
    """(new bytes, reasons, record) of buildkitd.toml from old."""
    record = {} if record is None else record
    new, reasons = tomlblock.apply(buildkit.CONFIG, old, "registry", buildkit.tables(wanted(namespaces)), record)
    return new, reasons, record


OURS = {
    "docker.io": {"mirrors": [ONE]},
    "quay.io": {"mirrors": [ONE + "/quay.io"]},
    "registry.k8s.io": {"mirrors": [ONE + "/registry.k8s.io"]},
    "registry.example.com:5000": {"mirrors": [ONE + "/registry.example.com_5000"]},
    PUSH: {"ca": ["/etc/buildkit/certs.d/%s/ca.crt" % PUSH]},
    ONE: {"ca": ["/etc/buildkit/certs.d/%s/ca.crt" % ONE]},
}


def test_a_new_file_has_a_mirror_per_namespace_with_its_prefix_and_the_ca_per_endpoint():
    new, reasons, _ = plan(None)
    assert tomllib.loads(new.decode()) == {"registry": OURS}
    assert new.startswith(tomlblock.BEGIN.encode()) and new.endswith((tomlblock.END + "\n").encode())
    assert reasons


def test_the_default_namespaces_each_get_a_mirror():
    names = [pair[0] for pair in default_value()]
    conf = tomllib.loads(plan(None, names)[0].decode())["registry"]
    assert [n for n in conf if "example" not in n] == names
    assert conf["ghcr.io"] == {"mirrors": [ONE + "/ghcr.io"]}


USER = b"""# the node's own buildkit settings
debug = true

[worker.oci]
  max-parallelism = 4   # keep this comment

[registry."mirror.example.net"]
  http = true
"""


def test_the_owners_bytes_stay_and_a_rerun_changes_nothing():
    new, _, record = plan(USER)
    assert new.startswith(USER)
    conf = tomllib.loads(new.decode())
    assert conf["debug"] is True and conf["worker"] == {"oci": {"max-parallelism": 4}}
    assert conf["registry"]["mirror.example.net"] == {"http": True}
    again, reasons, _ = plan(new, record=record)
    assert again == new and reasons == []
    assert tomlblock.revert(new, record) == (USER, ["our block taken out, the rest kept"])


def test_a_table_of_the_owners_we_need_is_merged_our_mirrors_first_and_put_back():
    user = b'debug = true\n\n[registry."docker.io"]\n  mirrors = ["mirror.gcr.io"]\n  http = false\n\n[worker.oci]\n  gc = true\n'
    new, reasons, record = plan(user)
    conf = tomllib.loads(new.decode())
    assert conf["registry"]["docker.io"] == {"mirrors": [ONE, "mirror.gcr.io"], "http": False}
    assert conf["worker"] == {"oci": {"gc": True}} and conf["debug"] is True
    assert "merged" in reasons[-1]
    assert plan(new, record=record)[0] == new
    # Taken back: the owner's table returns (at the end), every key as it was.
    back, _ = tomlblock.revert(new, record)
    assert tomllib.loads(back.decode()) == tomllib.loads(user.decode())
    assert b'[registry."docker.io"]\n  mirrors = ["mirror.gcr.io"]\n  http = false\n' in back


def test_a_namespace_no_longer_wanted_gives_back_the_table_that_moved():
    user = b'[registry."quay.io"]\n  mirrors = ["quay-mirror.example.net"]\n'
    new, _, record = plan(user)
    fewer, _, record = plan(new, ["docker.io"], record)
    assert tomllib.loads(fewer.decode())["registry"]["quay.io"] == {"mirrors": ["quay-mirror.example.net"]}
    assert "quay.io" not in record["moved"]


def test_a_table_defined_inline_is_refused_naming_the_file():
    user = b'registry = { "docker.io" = { mirrors = ["mirror.gcr.io"] } }\n'
    with pytest.raises(RegistryError) as e:
        plan(user)
    assert "/etc/buildkit/buildkitd.toml defines registry" in str(e.value) and "Nothing was changed" in str(e.value)


def test_a_file_that_is_not_toml_is_refused_naming_it():
    with pytest.raises(RegistryError) as e:
        plan(b"[worker.oci\n")
    assert "/etc/buildkit/buildkitd.toml is not valid TOML" in str(e.value)


def test_a_last_line_without_a_line_break_gets_it_back_after_absent():
    new, _, record = plan(b"debug = true")
    assert tomllib.loads(new.decode())["debug"] is True
    assert tomlblock.revert(new, record)[0] == b"debug = true"


def test_a_file_we_made_is_removed_when_only_our_block_is_left():
    new, _, record = plan(None)
    record["original"] = None
    assert tomlblock.revert(new, record) == (None, ["only our block was left: removed"])


def test_values_are_written_as_toml():
    table = {"a": [1, 2.5, True, 'x"y'], "b": {"c": "d"}, "e-f": "é"}
    assert tomllib.loads("t = %s" % tomlblock.value(table)) == {"t": table}


def test_on_a_node_buildkit_gets_its_file_and_certs_and_absent_restores_every_byte():
    user_toml = (USER, 0o644)
    node = Node(dict(USER_FILES, **{buildkit.CONFIG: user_toml}))
    made = {c.path for c in node.run(use_fact(mirrors=[ONE]), NAMESPACES, found=WITH_BUILDKIT)}
    assert {buildkit.CONFIG, buildkit.ca_path(ONE), buildkit.ca_path(PUSH)} <= made
    assert node.files[buildkit.CONFIG][0].startswith(USER)
    assert node.run(use_fact(mirrors=[ONE]), NAMESPACES, found=WITH_BUILDKIT) == []
    node.run()
    assert node.files[buildkit.CONFIG] == user_toml
    assert node.files == dict(USER_FILES, **{buildkit.CONFIG: user_toml})


def test_a_buildkitd_toml_changed_meanwhile_keeps_the_change_after_absent():
    node = Node(USER_FILES)
    node.run(use_fact(mirrors=[ONE]), NAMESPACES, found=WITH_BUILDKIT)
    data, mode = node.files[buildkit.CONFIG]
    node.files[buildkit.CONFIG] = (b"debug = true\n" + data, mode)
    node.run()
    assert node.files[buildkit.CONFIG] == (b"debug = true\n", mode)
    assert HOME + "/.docker/config.json" in node.files


# --- the other families' mirrors for each namespace ----------------------------------


def test_containers_image_mirrors_each_namespace_under_its_prefix():
    conf = tomllib.loads(containers.registries_conf(wanted()).decode())
    assert {r["prefix"]: [m["location"] for m in r["mirror"]] for r in conf["registry"]} == {
        ns: table["mirrors"] for ns, table in OURS.items() if "mirrors" in table
    }
    assert all(r["location"] == r["prefix"] for r in conf["registry"])


@pytest.mark.parametrize("namespace", ["quay.io", "registry.k8s.io", "registry.example.com:5000"])
def test_containerd_mirrors_each_namespace_with_override_path(namespace):
    conf = tomllib.loads(containerd.namespace_hosts(wanted(), namespace).decode())
    assert conf["server"] == "https://" + namespace
    ((url, host),) = conf["host"].items()
    assert url == "https://%s/v2/%s" % (ONE, namespace.replace(":", "_"))
    assert host["override_path"] is True and host["capabilities"] == ["pull", "resolve"]
