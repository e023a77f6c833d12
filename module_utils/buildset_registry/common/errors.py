# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""What every part of the role shares: its error and its outcome.

RegistryError is the one error base. It carries the module option it is
about; the message names that option (and any other) as ``{option}``
tokens, and the module that reports it says which name each token takes
(render(names)): a part module its own option names, the role's module the
role variables (``buildset_registry_<option>``). Values are interpolated
after the names, so a brace in a user's value is never mistaken for a token.

Outcome is the one shape of what a part did: changed, the reasons, and
before/after texts for ``--diff`` that never hold a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\{([a-z][a-z0-9_]*)\}")


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
        """The message, each token replaced through names (option -> the
        name the reader knows). A token names lacks keeps its braces: text
        quoted from a log into a message stays as it was. Without names
        (str()), every token is its bare name."""

        def name(match):
            if names is None:
                return match.group(1)
            return names.get(match.group(1), match.group(0))

        text = _TOKEN.sub(name, self.template)
        return text % self.values if self.values else text


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
