# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What every part of the role shares: its error and its outcome.

RegistryError is the one error base. It carries the module option it is
about; the message names that option (and any other) as ``{option}``
tokens, so each module reports its own option names and the role's module
reports the role variables (``buildset_registry_<option>``) instead. Values
are interpolated after the names, so a brace in a user's value is never
mistaken for a token.

Outcome is the one shape of what a part did: changed, the reasons, and
before/after texts for ``--diff`` that never hold a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\{([a-z][a-z0-9_]*)\}")
# Tokens that render() treats as option names; the rest of the braces in a
# message (log text, JSON) stay untouched.
_OPTION_NAMES = set()


def known_options(names):
    """Declare option names (common/options.py does, for every part)."""
    _OPTION_NAMES.update(names)


class RegistryError(Exception):
    """A problem the user has to fix: the thing, the cause and the fix.

    option: the module option it is about (None: not one option).
    template: the message, with option names as {name} tokens and %s
    placeholders for values.
    """

    def __init__(self, option, template, *values):
        self.option = option
        self.template = template
        self.values = values
        super().__init__(self.render())

    def render(self, names=None):
        """The message, option tokens replaced through names (default: as is)."""
        names = names or {}
        # Unknown names keep their braces: text quoted from a log stays as it was.
        text = _TOKEN.sub(
            lambda m: names.get(m.group(1), m.group(1) if m.group(1) in _OPTION_NAMES else m.group(0)), self.template
        )
        return text % self.values if self.values else text

    @property
    def msg(self):
        return str(self)


@dataclass
class Outcome:
    """What one part did (or would do, in check mode)."""

    changed: bool = False
    reasons: list = field(default_factory=list)
    # Texts for --diff; never a key, hash or password.
    before: str = ""
    after: str = ""
    header: str = ""
    # What the part reports besides (paths, names, ...); may hold a secret
    # only where the part exists to return one.
    data: dict = field(default_factory=dict)

    def diff(self):
        return {"before": self.before, "after": self.after, "before_header": self.header, "after_header": self.header}

    def report(self):
        """changed, reasons and data, as a module result (or a part of one)."""
        return dict(self.data, changed=self.changed, reasons=list(self.reasons))
