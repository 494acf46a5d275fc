"""What a profile may write into tickets: its message templates, checked once.

``default_message`` is what a blank message of an UNSUSPEND/WITHDRAW row becomes
(``{action}``: the action in the user's language, filled by
:func:`batchops.sheet.validation.default_message`); ``undo_message`` is the reason
``undo`` writes (``{row}``, ``{file}``). Both land in the ticket's history that its users
read, so they are checked when the profile is read: a typo stops the command before a
row is written.
"""

from __future__ import annotations

import string
import unicodedata

from batchops.errors import ConfigError
from batchops.i18n import _
from batchops.model import MAX_MESSAGE_LENGTH

#: The fields each template a profile may set can use.
TEMPLATE_FIELDS = {
    "default_message": frozenset({"action"}),
    "undo_message": frozenset({"row", "file"}),
}

#: The longest a field's value is counted when the filled template is measured: an
#: action's name (UNSUSPEND), a sheet row; a file name is the undo's to shorten.
_LONGEST = {"action": 9, "row": 7, "file": 0}


def checked_template(text: str, fields: frozenset[str], where: str) -> str:
    """``text`` (trimmed) if it is fit to be written into tickets: not blank, no field but
    ``fields``, no control character but tabs and line breaks, within ITSM's length once
    filled; else one ConfigError line."""
    template = text.strip()
    try:
        named = {name for _text, name, _spec, _conv in string.Formatter().parse(template)}
    except ValueError:  # a lone brace
        named = {"?"}
    named.discard(None)
    unknown = sorted("{" + str(name) + "}" for name in named if name not in fields)
    longest = template
    if not unknown:
        try:
            longest = template.format(**{f: "X" * _LONGEST.get(f, 0) for f in fields})
        except (ValueError, IndexError, KeyError, AttributeError, TypeError):
            unknown = ["{?}"]  # a field with an index or attribute: {action.x}, {action[0]}
    problem = ""
    if not template:
        problem = _("it is blank")
    elif unknown:
        problem = _("it may use only the fields {known}, not {fields}").format(
            known=", ".join("{" + f + "}" for f in sorted(fields)), fields=", ".join(unknown)
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
