"""The message templates a profile may set (``undo_message``): text with named fields,
checked when the profile is read, so a typo stops the command before a row is written.
"""

from __future__ import annotations

import string

from batchops.errors import ConfigError
from batchops.i18n import _

#: The fields each template a profile may set can use.
TEMPLATE_FIELDS = {"undo_message": frozenset({"row", "file"})}


def checked_template(text: str, fields: frozenset[str], where: str) -> str:
    """``text`` if it is a message template that fills only ``fields`` (``{row}``); a
    ConfigError naming them otherwise, so a typo stops the command, not a row."""
    try:
        named = {name for _text, name, _spec, _conv in string.Formatter().parse(text) if name}
        text.format(**dict.fromkeys(fields, 1))
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        named = {"?"}
    if not named <= fields or not text.strip():
        known = ", ".join("{" + name + "}" for name in sorted(fields))
        raise ConfigError(
            _(
                "{where} must be text that uses only {known} (braces doubled to write one), "
                "not {value}; fix it and run again"
            ).format(where=where, known=known, value=repr(text))
        )
    return text
