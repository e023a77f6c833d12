"""One way to import the role's code in every test, and, in CI, no skip.

Modules import their logic as ``ansible.module_utils.<name>``, which is how
Ansible ships a role's module_utils; extending that package's path lets the
tests import the very same files the same way. Modules in library/ are
loaded with tests/unit/helpers.load_library().
"""

import os
import re

import pytest

import ansible.module_utils

ROLE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_MODULE_UTILS = os.path.join(ROLE_DIR, "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)


# --- in CI, a skip is a failure ---------------------------------------------------
#
# CI (CI=true) installs every part the tests use, so a test that skips there
# ran on a machine that was not prepared: the run fails, naming the part. On
# a developer's machine a skip stays a skip. tox does not pass CI on, so its
# commands hand it over as --ci={env:CI:}; run directly, pytest reads CI.

# A word in a skip's reason -> the missing part it names (first match wins).
MISSING_PARTS = [
    (r"podman", "Podman"),
    (r"zuul", "Zuul"),
    (r"swift|object[- ]store", "Swift"),
    (r"skopeo", "skopeo"),
    (r"ctr|containerd", "ctr"),
    (r"openssl", "openssl"),
    (r"docker|engine", "the Docker engine"),
]


def pytest_addoption(parser):
    parser.addoption(
        "--ci",
        default=None,
        metavar="true|false",
        help="CI run: a skip (a missing part) fails the test (default: the CI environment variable)",
    )


def in_ci(config):
    value = config.getoption("--ci")
    if value is None:
        value = os.environ.get("CI", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def skip_reason(longrepr):
    """The reason of a skip report's longrepr ((path, line, 'Skipped: why'))."""
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason


def missing_part_message(reason):
    part = next((name for words, name in MISSING_PARTS if re.search(rf"\b({words})\b", reason, re.I)), None)
    named = f"missing part: {part}" if part else "a skip"
    return f"CI=true: {named} ({reason}); CI installs every part the tests use, so this machine was not prepared"


class MissingPart(pytest.Item):
    """Stands in, in CI, for a test module whose collection skipped."""

    def __init__(self, *, message, **kw):
        super().__init__(**kw)
        self.message = message

    def runtest(self):
        pytest.fail(self.message, pytrace=False)

    def reportinfo(self):
        return self.path, None, self.name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and in_ci(item.config):
        report.outcome = "failed"
        report.longrepr = missing_part_message(skip_reason(report.longrepr))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A module that skips as a whole (importorskip) becomes, in CI, one
    failing test that names the part; the rest of the suite still runs."""
    report = yield
    if report.skipped and isinstance(collector, pytest.Module) and in_ci(collector.config):
        item = MissingPart.from_parent(
            collector, name="missing part", message=missing_part_message(skip_reason(report.longrepr))
        )
        report = pytest.CollectReport(collector.nodeid, "passed", None, [item])
    return report
