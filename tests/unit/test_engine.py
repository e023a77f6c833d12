"""The engine-facing code against a small fake at the docker SDK boundary.

FakeClient stands in for docker.APIClient only here, to pin down which
calls the role makes and how it reads the answers; the integration tests
and molecule run the same code against real engines.
"""

import docker.errors
import pytest
from helpers import containers_params

from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.options import role_variables
from ansible.module_utils.buildset_registry.registry import containers as containers
from ansible.module_utils.buildset_registry.registry import upstream as upstream
from ansible.module_utils.buildset_registry.registry.engine import PORT_LABEL, SPEC_LABEL, Engine, existing_of


class FakeClient:
    """Records calls; answers as Docker's engine does for the role's calls."""

    def __init__(self, images=None, listing=None, pull_messages=None):
        self.images = dict(images or {})
        self.listing = list(listing or [])
        self.pull_messages = pull_messages or []
        self.calls = []
        self.states = {}
        self.removed = set()

    def inspect_image(self, image):
        self.calls.append(("inspect_image", image))
        if image not in self.images:
            raise docker.errors.ImageNotFound("no such image: %s" % image)
        return {"Id": self.images[image]}

    def pull(self, image, stream, decode):
        self.calls.append(("pull", image))
        for message in self.pull_messages:
            if message == "ARRIVE":
                self.images[image] = "sha256:pulled"
            else:
                yield message

    def version(self):
        return {"Components": [{"Name": "Engine", "Version": "20.10.24"}]}

    def containers(self, all, filters):
        self.calls.append(("containers", tuple(filters["name"])))
        return self.listing

    def create_host_config(self, **kwargs):
        return {"host_config": kwargs}

    def create_container(self, **kwargs):
        self.calls.append(("create_container", kwargs["name"]))
        self.created = kwargs
        return {"Id": "new-" + kwargs["name"]}

    def start(self, cid):
        self.calls.append(("start", cid))

    def restart(self, cid, timeout):
        self.calls.append(("restart", cid))

    def remove_container(self, cid, force, v):
        assert force and v
        self.calls.append(("remove", cid))
        self.removed.add(cid)

    def inspect_container(self, cid):
        if cid in self.removed:
            raise docker.errors.NotFound("no such container: %s" % cid)
        status, restarts, code = self.states.get(cid, ("running", 0, 0))
        return {"State": {"Status": status, "ExitCode": code}, "RestartCount": restarts}

    def logs(self, cid, tail):
        raise docker.errors.APIError("gone")


@pytest.fixture(autouse=True)
def upstream_answers(monkeypatch):
    """The upstream probe answers "usable" without any traffic; a test sets
    answers[name] to (cause, detail) for a proxy whose upstream is down."""
    answers = {}
    monkeypatch.setattr(upstream, "probe_all", lambda targets: {t[0]: answers.get(t[0]) for t in targets})
    return answers


def summary(name, cid, state="running", spec="h", port="5000"):
    return {"Id": cid, "Names": ["/" + name], "State": state, "Labels": {SPEC_LABEL: spec, PORT_LABEL: port}}


def params(tmp_path, **over):
    given = dict(root=str(tmp_path / "root"), proxy_remote_url="https://up.example", wait_timeout=5)
    return containers_params(**dict(given, **over))


def test_image_id_inspects_first_and_pulls_only_what_is_missing():
    client = FakeClient(images={"registry:2": "sha256:abc"})
    assert Engine(client, "unix://x").image_id("registry:2", False) == ("sha256:abc", False)
    assert client.calls == [("inspect_image", "registry:2")]

    client = FakeClient(pull_messages=[{"status": "Pulling"}, "ARRIVE"])
    assert Engine(client, "unix://x").image_id("registry:2", False) == ("sha256:pulled", True)
    assert Engine(FakeClient(), "unix://x").image_id("registry:2", True) == (None, True)


def test_an_image_that_cannot_be_pulled_names_the_option_and_the_cause():
    client = FakeClient(pull_messages=[{"error": "manifest unknown"}])
    with pytest.raises(RegistryError) as exc:
        Engine(client, "unix://x").image_id("nope:1", False)
    msg = exc.value.render(role_variables())
    assert exc.value.option == "image"
    assert "nope:1 is not on this host and cannot be pulled: manifest unknown" in msg
    assert "Set buildset_registry_image" in msg and "provide-registry-image" in msg
    with pytest.raises(RegistryError) as exc:
        Engine(FakeClient(pull_messages=[{"error": "denied"}]), "unix://x").image_id("caddy:2", False, "front_image")
    assert exc.value.option == "front_image"
    msg = exc.value.render(role_variables())
    assert "Set buildset_registry_front_image" in msg and "provide-front-image" in msg


def test_find_matches_whole_names_and_reads_labels():
    client = FakeClient(
        listing=[
            summary("buildset_proxy", "c1", port="5000"),
            summary("buildset_proxy_old", "c2"),
            {"Id": "c3", "Names": ["/buildset_registry"], "State": "exited", "Labels": None},
        ]
    )
    found = Engine(client, "unix://x").find(["buildset_proxy", "buildset_registry"])
    assert client.calls == [("containers", ("^/?buildset_proxy$", "^/?buildset_registry$"))]
    assert found == {
        "buildset_proxy": {"id": "c1", "status": "running", "spec_hash": "h", "ports": [5000]},
        "buildset_registry": {"id": "c3", "status": "exited", "spec_hash": None, "ports": []},
    }
    assert existing_of(summary("x", "c", port="junk"))["ports"] == []


def test_logs_that_cannot_be_read_say_so():
    assert Engine(FakeClient(), "unix://x").logs("c").startswith("(cannot read the log: ")


def test_sdk_errors_become_a_registry_error_naming_the_engine():
    engine = Engine(FakeClient(), "unix:///run/x.sock")
    with pytest.raises(RegistryError) as exc, engine.errors():
        raise docker.errors.APIError("500 Server Error")
    assert exc.value.option == "docker_host"
    assert "Docker engine at unix:///run/x.sock failed a request: 500 Server Error" in str(exc.value)


def test_preflight_absent_asks_for_the_containers_only(tmp_path):
    client = FakeClient(listing=[summary("buildset_proxy", "c1")])
    pre = containers.preflight(Engine(client, "unix://x"), params(tmp_path, state="absent"), False)
    assert pre.found == {"buildset_proxy": {"id": "c1", "status": "running", "spec_hash": "h", "ports": [5000]}}
    assert [c[0] for c in client.calls] == ["containers"]


def test_absent_removes_what_exists_and_reports_the_rest(tmp_path):
    client = FakeClient(listing=[summary("buildset_proxy", "c1")])
    engine = Engine(client, "unix://x")
    p = params(tmp_path, state="absent")
    outcome = containers.ensure(engine, p, containers.preflight(engine, p, False))
    assert ("remove", "c1") in client.calls
    assert outcome.changed and outcome.data["containers"]["proxy"]["action"] == "removed"
    assert outcome.data["containers"]["push"]["action"] == "absent"
    assert outcome.data["containers"]["front"]["action"] == "absent"
    assert "proxy container buildset_proxy: running" in outcome.before


def test_check_mode_plans_without_acting_or_writing(tmp_path):
    client = FakeClient(images={"registry:2": "sha256:abc", "caddy:2": "sha256:caddy"})
    engine = Engine(client, "unix://x")
    p = params(tmp_path, port=17951, push_port=17952)
    outcome = containers.ensure(engine, p, containers.preflight(engine, p, True), check_mode=True)
    actions = {k: v["action"] for k, v in outcome.data["containers"].items()}
    assert actions == {"proxy": "created", "push": "created", "front": "created"}
    assert outcome.changed and "proxy container buildset_proxy created: no container yet" in outcome.reasons
    assert not any(c[0] in ("create_container", "start", "remove") for c in client.calls)
    assert not (tmp_path / "root").exists()


def test_apply_removes_a_recreated_container_before_creating_and_restarts_a_kept_one(tmp_path):
    from ansible.module_utils.buildset_registry.common.layout import layout
    from ansible.module_utils.buildset_registry.registry.act import act
    from ansible.module_utils.buildset_registry.registry.endpoints import endpoint_list
    from ansible.module_utils.buildset_registry.registry.login import derive_tokens
    from ansible.module_utils.buildset_registry.registry.plan import plan_endpoints

    p = params(tmp_path)
    tokens = derive_tokens("zuul", "pw")
    endpoints = endpoint_list(p, layout(p["root"]), "$2y$04$" + "a" * 53, tokens)
    images = {"registry:2": "sha256:abc", "caddy:2": "sha256:caddy"}
    first = {item.kind: item for item in plan_endpoints(endpoints, images, {}, {}, {}, {})}
    found = {
        "buildset_proxy": {"id": "c1", "status": "running", "spec_hash": "old", "ports": []},
        "buildset_registry": {"id": "c2", "status": "running", "spec_hash": first["push"].hash, "ports": []},
        "buildset_front": {"id": "c3", "status": "running", "spec_hash": first["front"].hash, "ports": [5000, 5001]},
    }
    on_disk = {item.endpoint.config_path: item.endpoint.config for item in first.values()}
    plans = plan_endpoints(endpoints, images, found, {}, {}, on_disk)
    client = FakeClient()
    started = act(Engine(client, "unix://x"), plans, lambda endpoint: containers.checks(endpoint, tokens))
    # The registries together (in either order; one create is followed by
    # its start), the front last.
    assert client.calls[0] == ("remove", "c1") and client.calls[-1] == ("restart", "c3")
    assert sorted(client.calls[1:4]) == [
        ("create_container", "buildset_proxy"),
        ("restart", "c2"),
        ("start", "new-buildset_proxy"),
    ]
    assert client.calls.index(("create_container", "buildset_proxy")) < client.calls.index(
        ("start", "new-buildset_proxy")
    )
    assert [(s.kind, s.id, s.restarts) for s in started] == [
        ("push", "c2", None),
        ("proxy", "new-buildset_proxy", 0),
        ("front", "c3", None),
    ]
    assert client.created["labels"][SPEC_LABEL] == first["proxy"].hash


def test_remove_retries_podmans_state_improper_until_the_container_is_gone():
    class Flaky(FakeClient):
        failures = 2

        def remove_container(self, cid, force, v):
            if self.failures:
                self.failures -= 1
                raise docker.errors.APIError(
                    "500: container state improper", response=type("R", (), {"status_code": 500})()
                )
            super().remove_container(cid, force, v)

    client = Flaky()
    Engine(client, "unix://x").remove("c1")
    assert client.failures == 0 and client.removed == {"c1"}


def test_a_failed_engine_read_is_a_registry_error_about_docker_host():
    from ansible.module_utils.buildset_registry.common.errors import RegistryError
    from ansible.module_utils.buildset_registry.registry.engine_reader import EngineReadError

    error = EngineReadError("GET /_ping: 500 boom {x}")
    assert isinstance(error, RegistryError) and error.option == "docker_host"
    assert str(error) == "GET /_ping: 500 boom {x}"
