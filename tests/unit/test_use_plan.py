"""The use entry point's whole plan on a node held in a dict (path ->
(bytes, mode)): present, a re-run that changes nothing, absent that puts
every file back byte for byte; a file changed meanwhile loses only our
keys; diffs never show a credential. And the module's argument handling."""

import base64
import functools
import json

import pytest
from helpers import load_library, run_main, use_fact

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.options import use_spec
from ansible.module_utils.buildset_registry.common.shell import MASKED
from ansible.module_utils.buildset_registry.use import containers_image as containers
from ansible.module_utils.buildset_registry.use import docker as docker
from ansible.module_utils.buildset_registry.use import entry as use
from ansible.module_utils.buildset_registry.use import node as node
from ansible.module_utils.buildset_registry.use import state as records
from ansible.module_utils.buildset_registry.use.inputs import validate

HOME = "/home/zuul"
PASSWORD = "pa55-w0rd-for-tests"
ALL = {"docker": True, "containers": True, "containerd": True}


fact = functools.partial(use_fact, password=PASSWORD)


class Node:
    """A machine's files in a dict (path -> (bytes, mode)) and its
    directories in a set, behind use/node.py's read/write seam: plan() and
    apply() run on it as the module runs them on a machine."""

    def __init__(self, files):
        self.files = dict(files)
        self.dirs = set()
        self.state = records.new_state()

    def read(self, path):
        return self.files.get(path, (None, None))

    def write(self, path, data, mode, owner=None, in_place=False):
        if data is None:
            self.files.pop(path, None)
        else:
            self.files[path] = (data, mode)

    def isdir(self, path):
        return path in self.dirs or any(p.startswith(path + "/") for p in self.files)

    def make_dirs(self, dirs, owner):
        self.dirs.update(path for path, _ in dirs)

    def remove_dirs(self, state, keep):
        for path in sorted(state["dirs"], key=len, reverse=True):
            if path not in keep and not any(p.startswith(path + "/") for p in [*self.files, *self.dirs]):
                self.dirs.discard(path)
                state["dirs"].remove(path)

    def run(self, registry=None, namespaces=("docker.io",), found=ALL):
        """present with registry, absent without; returns the changes made."""
        self.state = records.load_state(self.read(use.STATE_FILE)[0], use.STATE_FILE)
        targets = []
        if registry is not None:
            wanted = validate(registry, list(namespaces))
            targets = use.build_targets(wanted, found, HOME, (1000, 1000), self.state, self.read)
        changes = use.plan(targets, self.state, self.read)
        use.apply(changes, self.state, None, {"warnings": [], "dockerd": {}}, files=self)
        return [c for c in changes if c.changed]


USER_FILES = {
    "/etc/docker/daemon.json": (b'{\n    "log-driver": "json-file"\n}', 0o644),
    HOME + "/.docker/config.json": (b'{"auths": {"https://index.docker.io/v1/": {"auth": "bWU6bWluZQ=="}}}', 0o600),
    "/etc/hosts": (b"127.0.0.1 localhost\n", 0o644),
    "/etc/containers/certs.d/registry.example.org:5001/ca.crt": (b"an older cert\n", 0o644),
}


def test_present_then_rerun_then_absent_restores_every_file_byte_for_byte():
    node = Node(USER_FILES)
    name = "buildset-registry-v6-00000000000000000000000000000001"
    registry = fact(addresses={name: "::1"})
    made = node.run(registry, ["docker.io", "quay.io"])
    paths = {c.path for c in made}
    assert {
        "/etc/docker/daemon.json",
        HOME + "/.docker/config.json",
        containers.DROP_IN,
        HOME + "/.config/containers/auth.json",
        "/etc/containerd/certs.d/docker.io/hosts.toml",
        "/etc/containerd/certs.d/quay.io/hosts.toml",
        "/etc/hosts",
        "/etc/docker/certs.d/registry.example.org:5000/ca.crt",
    } <= paths
    assert node.run(registry, ["docker.io", "quay.io"]) == []
    node.run()
    assert node.files == USER_FILES
    assert node.state["files"] == {}


def test_a_file_changed_meanwhile_loses_only_our_keys():
    node = Node(USER_FILES)
    node.run(fact())
    daemon = json.loads(node.files["/etc/docker/daemon.json"][0])
    daemon["debug"] = True
    node.files["/etc/docker/daemon.json"] = (json.dumps(daemon).encode(), 0o644)
    node.run()
    assert json.loads(node.files["/etc/docker/daemon.json"][0]) == {"log-driver": "json-file", "debug": True}
    # The others went back to their bytes.
    assert node.files[HOME + "/.docker/config.json"] == USER_FILES[HOME + "/.docker/config.json"]


def test_a_file_changed_between_two_runs_is_no_longer_restored_byte_for_byte():
    node = Node(USER_FILES)
    node.run(fact())
    cfg = json.loads(node.files[HOME + "/.docker/config.json"][0])
    cfg["psFormat"] = "table"
    node.files[HOME + "/.docker/config.json"] = (json.dumps(cfg).encode(), 0o600)
    assert node.run(fact()) == []
    node.run()
    assert json.loads(node.files[HOME + "/.docker/config.json"][0]) == {
        "auths": {"https://index.docker.io/v1/": {"auth": "bWU6bWluZQ=="}},
        "psFormat": "table",
    }


def test_a_new_registry_takes_back_the_old_endpoints():
    node = Node(USER_FILES)
    node.run(fact(port=5000))
    node.run(fact(port=6000))
    assert "/etc/docker/certs.d/registry.example.org:5000/ca.crt" not in node.files
    assert "/etc/docker/certs.d/registry.example.org:6000/ca.crt" in node.files
    auths = json.loads(node.files[HOME + "/.docker/config.json"][0])["auths"]
    assert set(auths) == {"https://index.docker.io/v1/", "registry.example.org:6001", "registry.example.org:6000"}
    node.run()
    assert node.files == USER_FILES


def test_containers_image_gets_the_users_own_docker_hub_credentials_not_the_buildsets():
    node = Node(USER_FILES)
    node.run(fact())
    auth = json.loads(node.files[HOME + "/.config/containers/auth.json"][0])["auths"]
    assert auth["docker.io"] == {"auth": "bWU6bWluZQ=="}  # me:mine, from docker's file before us
    hub = json.loads(node.files[HOME + "/.docker/config.json"][0])["auths"][docker.HUB_KEY]
    assert base64.b64decode(hub["auth"]).decode() == "zuul:" + PASSWORD


def test_without_docker_neither_daemon_json_nor_a_docker_io_entry():
    node = Node({})
    node.run(fact(), found={"docker": False, "containers": True, "containerd": False})
    assert not any(p.startswith(("/etc/docker", HOME + "/.docker", "/etc/containerd")) for p in node.files)
    assert "docker.io" not in json.loads(node.files[HOME + "/.config/containers/auth.json"][0])["auths"]


def test_modes_credentials_files_are_0600_and_a_loose_one_is_tightened():
    node = Node({HOME + "/.docker/config.json": (b"{}", 0o644)})
    made = {c.path: c for c in node.run(fact())}
    assert made[HOME + "/.docker/config.json"].mode == 0o600
    assert "mode 0644, want 0600" in made[HOME + "/.docker/config.json"].reasons
    assert made["/etc/containerd/certs.d/docker.io/hosts.toml"].mode == 0o600
    assert made["/etc/docker/certs.d/registry.example.org:5000/ca.crt"].mode == 0o644


def test_diffs_never_show_a_credential():
    node = Node(USER_FILES)
    texts = []
    for change in node.run(fact(), ["docker.io", "quay.io"]) + node.run():
        diff = change.outcome().diff()
        texts += [diff["before"], diff["after"]]
    joined = "".join(texts)
    for secret in (PASSWORD, base64.b64encode(("zuul:" + PASSWORD).encode()).decode(), "bWU6bWluZQ=="):
        assert secret not in joined
    assert "registry-mirrors" in joined


def test_state_round_trip_and_a_damaged_state_is_refused():
    node = Node(USER_FILES)
    node.run(fact())
    assert records.load_state(records.dump_state(node.state), "s") == node.state
    with pytest.raises(RegistryError) as exc:
        records.load_state(b"{oops", "/var/lib/buildset-registry/use-state.json")
    assert "/var/lib/buildset-registry/use-state.json cannot be read" in str(exc.value)


def test_directories_we_made_go_and_others_stay(tmp_path):
    state = records.new_state()
    ours, theirs = tmp_path / "a", tmp_path / "b"
    theirs.mkdir()
    state["dirs"] = [str(ours), str(ours / "c")]
    node.make_dirs([(str(ours), 0o755), (str(ours / "c"), 0o700), (str(theirs), 0o755)], None)
    (theirs / "keep").write_text("x")
    node.remove_dirs(state, keep=set())
    assert not ours.exists() and theirs.exists() and state["dirs"] == []


# --- the module ---------------------------------------------------------------------

module = load_library("buildset_registry_use")


@pytest.fixture
def no_state(tmp_path, monkeypatch):
    monkeypatch.setattr(use, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(use, "STATE_FILE", str(tmp_path / "state" / "use-state.json"))


@pytest.mark.parametrize(
    "args, words",
    [
        (dict(), "buildset_registry is not set"),
        (dict(registry=fact(mirrors=None)), "buildset_registry lacks mirrors"),
        (dict(registry=fact(), namespaces=["https://quay.io"]), "buildset_registry_namespaces: 'https://quay.io'"),
        (dict(registry=fact(), namespaces=["quay.io", "quay.io"]), "given twice"),
        (dict(registry=fact(), home="/nonexistent/home"), "buildset_registry_use_home: /nonexistent/home"),
    ],
)
def test_module_refuses_bad_input_naming_the_role_variable(capsys, no_state, args, words):
    code, out = run_main(module.main, args, capsys)
    assert code == 1 and out["failed"] and not out["changed"]
    assert words in out["msg"]
    assert PASSWORD not in json.dumps(out)


def test_module_masks_the_registry_in_its_invocation(capsys, no_state):
    code, out = run_main(module.main, dict(registry=fact(), namespaces=["Quay.io"]), capsys)
    assert out["invocation"]["module_args"]["registry"] == MASKED
    assert out["invocation"]["module_args"]["namespaces"] == ["Quay.io"]


def test_module_absent_with_nothing_recorded_changes_nothing(capsys, no_state):
    code, out = run_main(module.main, dict(state="absent", _ansible_check_mode=True), capsys)
    assert code == 0 and out["changed"] is False and out["files"] == []


def test_module_options_match_its_documentation():
    import yaml

    doc = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert set(doc) == set(use_spec())
    for name, spec in use_spec().items():
        assert doc[name]["type"] == spec["type"], name
        assert doc[name].get("default") == spec.get("default"), name
