"""module_utils/buildset_registry/common/options.py is the one list of options:
each module's DOCUMENTATION, tasks/main.yml and tasks/use.yml,
defaults/main.yml and meta/argument_specs.yml must name the same options,
with the same types and defaults."""

import os

import pytest
import yaml
from helpers import load_library

from ansible.module_utils.buildset_registry.common.options import PARTS, part_spec, role_spec, use_spec, use_variables

ROLE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = {"buildset_registry": role_spec(), "buildset_registry_use": use_spec()}
MODULES.update({"buildset_registry_" + part: part_spec(part) for part in PARTS})


def load_yaml(*parts):
    with open(os.path.join(ROLE_DIR, *parts)) as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_documentation_matches_the_argument_spec(name):
    doc = yaml.safe_load(load_library(name).DOCUMENTATION)
    spec = MODULES[name]
    assert doc["module"] == name
    assert set(doc["options"]) == set(spec)
    for option, documented in doc["options"].items():
        assert documented.get("type", "str") == spec[option]["type"], option
        assert documented.get("default") == spec[option].get("default"), option
        assert bool(documented.get("required")) == bool(spec[option].get("required")), option
        assert documented.get("choices") == spec[option].get("choices"), option


def test_the_role_task_passes_every_option_from_its_role_variable():
    task = load_yaml("tasks", "main.yml")[0]["block"][0]
    args = task["buildset_registry"]
    assert set(args) == set(role_spec())
    for option, value in args.items():
        assert value == "{{ buildset_registry_%s }}" % option, option


def test_every_option_is_a_role_variable_with_the_same_default():
    defaults = load_yaml("defaults", "main.yml")
    specs = load_yaml("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    for option, spec in role_spec().items():
        var = "buildset_registry_" + option
        assert var in defaults and var in specs, var
        if "default" in spec and spec["default"] is not None:
            assert defaults[var] == spec["default"], var


def test_the_use_task_passes_every_option_from_its_role_variable():
    task = load_yaml("tasks", "use.yml")[0]["block"][0]
    args = task["buildset_registry_use"]
    assert set(args) == set(use_spec())
    for option, value in args.items():
        assert value.startswith("{{ %s " % use_variables()[option]) and value.endswith("}}"), option


def test_every_use_option_is_a_variable_of_the_use_entry_point_with_the_same_default():
    defaults = load_yaml("defaults", "main.yml")
    specs = load_yaml("meta", "argument_specs.yml")["argument_specs"]["use"]["options"]
    assert set(specs) == set(use_variables().values())
    for option, spec in use_spec().items():
        var = use_variables()[option]
        assert specs[var].get("default") == spec.get("default"), var
        if "default" in spec:
            assert defaults[var] == spec["default"], var
