"""The characters a cell may carry to ITSM: invisible ones trimmed at its ends, hidden
and control ones refused inside, with the same rule for every field that is sent.

Text copied from a web page, a chat or a PDF brings along characters nobody sees: zero
width spaces, no-break spaces, byte order marks, and sometimes control characters (NUL,
ESC). What each field does with them:

* at the **ends** of ``sn``, ``operator`` and ``action_message``, blanks and the invisible
  characters of :data:`INVISIBLE` are trimmed; the row is sent trimmed, and the report's
  message says what was removed (blanks alone are trimmed silently);
* **inside** an ``sn``: any blank, control, format (zero width), separator or private-use
  character makes the row invalid (a ticket number holds none, and sent as it is it
  comes back "ticket not found");
* inside an ``operator``: any control, format (zero width), line or paragraph separator,
  private-use or lone surrogate character, and any blank but the plain space, makes the
  row invalid (a user name holds none, and ITSM would record a user nobody can find);
* inside an ``action_message``: any control character but tab and line breaks (``\\t``,
  ``\\n``, ``\\r``) and any lone surrogate makes the row invalid. The message lands in
  the ticket's history as it is sent, where NUL, ESC and the like never belong. Format
  characters such as the zero width joiner are kept inside a message: emoji and some
  scripts need them.

A refused row's reason names each kind of character found, with its position in the
trimmed text (1 = the first character), and how to fix it. Nothing here is slow on a big
file: one C-level test over all cells of a field joined decides for a column of plain
text; only the other cells are looked at one by one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from batchops.i18n import N_, _

__all__ = ["INVISIBLE", "MESSAGE", "OPERATOR", "SN", "CellRule", "clean_cells"]

StrArray = npt.NDArray[np.object_]

#: Invisible characters a copy from a web page or chat leaves around a cell: trimmed at
#: the ends (the report says so). Plain blanks are trimmed silently.
INVISIBLE: Final = "\u200b\u200c\u200d\u2060\ufeff\u00a0\u202f\u2007\u3000\u180e"

#: How many kinds of character a reason names at most (it stays one line).
_SHOWN_KINDS: Final = 3


def _unfit_in_sn(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp", "Co")


def _unfit_in_operator(char: str) -> bool:
    if char == " ":
        return False
    return char.isspace() or unicodedata.category(char) in (
        "Cc",
        "Cf",
        "Cs",
        "Zs",
        "Zl",
        "Zp",
        "Co",
    )


def _unfit_in_message(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cs")


@dataclass(frozen=True, slots=True)
class CellRule:
    """What one field may hold inside, and what its reasons and notes say."""

    #: The field as reasons and notes name it.
    name: str
    unfit: Callable[[str], bool]
    #: How to fix a refused cell: the end of its reason (marked ``N_``, shown with ``_``).
    fix: str
    #: Whether the reason quotes the cell (a message may be long: only the characters).
    quote: bool = True
    #: Whether a plain space inside is looked at (for sns: it is unfit).
    spaces_matter: bool = False


SN: Final = CellRule(
    "sn",
    _unfit_in_sn,
    N_(
        "a ticket number has none, so type the sn again (copying from a web page or chat "
        "brings hidden characters along)"
    ),
    spaces_matter=True,
)
OPERATOR: Final = CellRule(
    "operator",
    _unfit_in_operator,
    N_(
        "a user name has none, so type it again (copying from a web page or chat brings "
        "hidden characters along)"
    ),
)
MESSAGE: Final = CellRule(
    "action_message",
    _unfit_in_message,
    N_(
        "remove it (a message may hold tabs and line breaks but no other control character: "
        "ITSM keeps it in the ticket's history as sent)"
    ),
    quote=False,
)


def clean_cells(
    raw: pd.Series, values: StrArray, rule: CellRule
) -> tuple[dict[int, str], dict[int, str]]:
    """Trim invisible characters at the ends of the cells of ``raw`` into ``values`` (in
    place); return the reasons of the cells that hold an unfit character inside, and the
    notes of the trimmed ones, both by row."""
    reasons: dict[int, str] = {}
    notes: dict[int, str] = {}
    for index in _suspects(raw.tolist(), rule.spaces_matter):
        text = str(raw.iloc[index])
        core = _trimmed(text)
        values[index] = core  # when blank now, it is flagged as such
        inner = [(at, c) for at, c in enumerate(core, start=1) if rule.unfit(c)]
        if inner:
            reasons[index] = _refusal(rule, core, inner)
            continue
        removed = text.replace(core, "", 1)
        hidden = sorted({c for c in removed if c in INVISIBLE}, key=ord)
        if hidden:
            codes = ", ".join(f"U+{ord(c):04X}" for c in hidden)
            notes[index] = _(
                "{field} trimmed of invisible characters at its ends ({codes})"
            ).format(field=rule.name, codes=codes)
    return reasons, notes


def _trimmed(text: str) -> str:
    core = text
    while True:
        shorter = core.strip().strip(INVISIBLE)
        if shorter == core:
            return core
        core = shorter


def _refusal(rule: CellRule, core: str, inner: list[tuple[int, str]]) -> str:
    """One line: the cell (or not), each kind of unfit character and where it first is."""
    first: dict[str, int] = {}
    for at, char in inner:
        first.setdefault(char, at)
    at_position = _("{char} at position {at}")
    kinds = [at_position.format(char=_shown_char(c), at=at) for c, at in first.items()]
    if len(kinds) > _SHOWN_KINDS:
        more = _("{count} more").format(count=len(kinds) - _SHOWN_KINDS)
        kinds = [*kinds[:_SHOWN_KINDS], more]
    what = _(", ").join(kinds)
    if rule.quote:
        shown = core.encode("unicode_escape").decode("ascii")
        if len(shown) > 60:
            shown = shown[:59] + "…"
        return _("{field} {cell} holds {what}; {fix}").format(
            field=rule.name, cell=repr(shown), what=what, fix=_(rule.fix)
        )
    return _("{field} holds {what}; {fix}").format(field=rule.name, what=what, fix=_(rule.fix))


def _plain(text: str, spaces_matter: bool) -> bool:
    """Printable text with no blank to look into: nothing to trim or refuse."""
    if not text.isprintable():
        return False
    return not spaces_matter or " " not in text.strip(" ")


def _suspects(cells: list[str], spaces_matter: bool) -> list[int]:
    """Rows whose cell may hold an invisible or control character, cheaply: one C-level
    test over all cells joined decides for a whole column of plain text (1M sns: ~20 ms,
    where a regex per cell took 0.65 s); only otherwise is each cell tested.

    Every character of :data:`INVISIBLE`, every control and every separator but the
    space is not printable, so a printable cell has nothing to trim or refuse (besides
    the blanks at its ends, which ``str.strip`` took).
    """
    joined = "".join(cells)
    if joined.isprintable() and not (spaces_matter and " " in joined):
        return []
    return [i for i, text in enumerate(cells) if not _plain(text, spaces_matter)]


_CHARACTER_NAMES: Final = {
    "\t": N_("a tab"),
    "\n": N_("a line break"),
    "\r": N_("a line break"),
    "\x00": N_("a NUL character"),
    "\x07": N_("a bell character (BEL, U+0007)"),
    "\x1b": N_("an escape character (ESC, U+001B)"),
    "\x7f": N_("a delete character (DEL, U+007F)"),
    " ": N_("a blank"),
}


def _shown_char(char: str) -> str:
    """A character as a person can recognise it: 'a tab', 'zero width space (U+200B)'."""
    if char in _CHARACTER_NAMES:
        return _(_CHARACTER_NAMES[char])
    name = unicodedata.name(char, "").lower() or _("a control character")
    return f"{name} (U+{ord(char):04X})"
