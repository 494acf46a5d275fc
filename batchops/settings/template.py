"""What a profile may write into tickets: the ``default_message`` template, checked once.

The template is what a blank message of an UNSUSPEND/WITHDRAW row becomes, in the
ticket's history that its users read; ``{action}`` is filled with the action in the
user's language (:func:`batchops.sheet.validation.default_message` fills it).
"""

from __future__ import annotations

import re
import unicodedata

from batchops.errors import ConfigError
from batchops.i18n import _
from batchops.model import MAX_MESSAGE_LENGTH


def checked_template(text: str, where: str) -> str:
    """``text`` if it is fit to be the message written into tickets (trimmed): not
    blank, no field but ``{action}``, no control character but tabs and line breaks,
    within ITSM's length once filled; else one ConfigError line."""
    template = text.strip()
    fields = sorted(set(re.findall(r"\{[^{}]*\}", template)) - {"{action}"})
    longest = template.replace("{action}", "X" * _LONGEST_ACTION_WORD)
    problem = ""
    if not template:
        problem = _("it is blank")
    elif fields:
        problem = _("it may use only the field {{action}}, not {fields}").format(
            fields=", ".join(fields)
        )
    elif any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in template):
        problem = _("it holds a control character")
    elif len(longest) > MAX_MESSAGE_LENGTH:
        problem = _("filled in, it is longer than ITSM's {limit} characters").format(
            limit=MAX_MESSAGE_LENGTH
        )
    if problem:
        raise ConfigError(
            _(
                "{where} is the message written into tickets: {problem}; fix it and run again"
            ).format(where=where, problem=problem)
        )
    return template


#: The longest an action's name is, in any language (UNSUSPEND).
_LONGEST_ACTION_WORD = 9
