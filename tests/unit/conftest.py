"""Fixtures of the unit tests (their functions are in helpers.py)."""

import pytest


@pytest.fixture
def root(tmp_path):
    """A registry root that does not exist yet."""
    return str(tmp_path / "registry")
