"""defaults/main.yml, meta/argument_specs.yml and README.rst name the same
variables; the specs repeat every literal default; galaxy.yml agrees with
meta/main.yml."""

import os
import re

import yaml

ROLE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(*parts):
    with open(os.path.join(ROLE_DIR, *parts)) as f:
        return yaml.safe_load(f)


DEFAULTS = load("defaults", "main.yml")
ENTRY_POINTS = load("meta", "argument_specs.yml")["argument_specs"]
# Every entry point's options; an option both name (the state) is the same variable.
SPEC = {
    name: spec
    for entry in ENTRY_POINTS.values()
    for name, spec in entry["options"].items()
    if name != "buildset_registry"
}


def readme_vars():
    with open(os.path.join(ROLE_DIR, "README.rst")) as f:
        text = f.read()
    return set(re.findall(r"^\.\. zuul:rolevar:: (buildset_registry_\w+)", text, re.M))


def test_defaults_and_specs_name_the_same_variables():
    assert set(DEFAULTS) == set(SPEC)


def test_readme_documents_every_variable():
    assert readme_vars() == set(DEFAULTS)


def test_every_variable_is_prefixed():
    assert all(name.startswith("buildset_registry_") for name in DEFAULTS)


def test_specs_repeat_literal_defaults():
    for name, value in DEFAULTS.items():
        if isinstance(value, str) and "{{" in value:
            # Argument specs template their text, so templated defaults are
            # described instead of repeated.
            assert "default" not in SPEC[name], name
            continue
        assert SPEC[name].get("default") == value, name


def test_specs_types_match_defaults():
    kinds = {"str": str, "int": int, "list": list, "bool": bool, "dict": dict}
    for name, value in DEFAULTS.items():
        if isinstance(value, str) and "{{" in value:
            continue
        assert isinstance(value, kinds[SPEC[name]["type"]]), name


def test_galaxy_metadata_agrees_with_meta_main():
    meta = load("meta", "main.yml")["galaxy_info"]
    galaxy = load("galaxy.yml")
    assert galaxy["name"] == meta["role_name"]
    assert galaxy["namespace"] == meta["namespace"]
    assert galaxy["description"] == meta["description"]
    assert galaxy["license"] == [meta["license"]]
    assert galaxy["authors"] == [meta["author"]]
    assert set(galaxy["tags"]) == set(meta["galaxy_tags"])
