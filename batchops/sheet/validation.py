"""The rules a row must satisfy to be sent, checked for every row at once (vectorised).

It owns what ``operate_ticket`` needs of a row and what batchops refuses before sending:

* ``sn``: not blank, no hidden character inside (invisible ones at its ends are trimmed,
  and the row notes it), not mangled by Excel into a number;
* ``operator`` not blank, no control or zero-width character inside (trimmed at its ends
  as an sn is); ``action_type`` one of the actions or their Chinese aliases;
* ``action_message``: present where the server requires one, within its length, no
  control character but tabs and line breaks (trimmed at its ends as an sn is), and the
  default sent for UNSUSPEND/WITHDRAW when it is blank (:mod:`batchops.sheet.characters`
  says which characters each field may hold, and why);
* one ticket's sn written in two letter cases ("req1" and "REQ1"), which ITSM may take
  for one ticket;
* the same action twice in a row for one ticket.

A bad row is never an exception, only a one-line reason; the first problem found wins.
Rows hidden in the sheet that the run leaves out get no reason, and take no part in the
checks across rows (a left-out row repeats nothing and spells no sn first).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from batchops.i18n import N_, _
from batchops.model import MAX_MESSAGE_LENGTH, Action

from .characters import INVISIBLE, MESSAGE, OPERATOR, SN, clean_cells
from .columns import FIELD_ALIASES, header_key
from .reading import show

__all__ = [
    "ACTION_ALIASES",
    "AMBIGUOUS_ACTIONS",
    "DEFAULT_MESSAGE",
    "StrArray",
    "Validated",
    "action_key",
    "action_of",
    "action_word",
    "default_message",
    "one_letter_case",
    "validate",
]

StrArray = npt.NDArray[np.object_]

#: Accepted action spellings (after NFKC, trimming, removing blanks and upper-casing) ->
#: the action sent: the codes, and the words Chinese ITSM sheets use for them.
ACTION_ALIASES: Final[dict[str, Action]] = {
    **{a.value: a for a in Action},
    "挂起": Action.SUSPEND,
    "暂停": Action.SUSPEND,
    "解挂": Action.UNSUSPEND,
    "恢复": Action.UNSUSPEND,
    "取消挂起": Action.UNSUSPEND,
    "撤回": Action.WITHDRAW,
    "撤单": Action.WITHDRAW,
    "撤销": Action.WITHDRAW,
    "终止": Action.TERMINATE,
}
#: Words that name more than one action: refused with the choices, never guessed (a
#: wrong guess lands on a real ticket; TERMINATE cannot be taken back).
AMBIGUOUS_ACTIONS: Final[dict[str, tuple[Action, ...]]] = {
    "关单": (Action.WITHDRAW, Action.TERMINATE),
    "关闭": (Action.WITHDRAW, Action.TERMINATE),
    "结单": (Action.WITHDRAW, Action.TERMINATE),
    "停止": (Action.SUSPEND, Action.TERMINATE),
    "取消": (Action.UNSUSPEND, Action.WITHDRAW),
}
_ACTION_NAMES: Final[dict[str, str]] = {k: v.value for k, v in ACTION_ALIASES.items()}


def action_key(text: str) -> str:
    """An action cell as it is matched: full-width letters and blanks made plain (NFKC:
    ``ＳＵＳＰＥＮＤ`` is ``SUSPEND``), invisible characters and blanks removed, upper case."""
    plain = unicodedata.normalize("NFKC", text)
    # Anywhere, not only at the ends: "SUSPEND\u200b \u200b" is SUSPEND.
    return "".join(c for c in plain if c not in INVISIBLE and not c.isspace()).upper()


def action_of(text: str) -> Action | None:
    """The action a cell (or an option) names, or None (blank, unknown or ambiguous)."""
    return ACTION_ALIASES.get(action_key(text))


def _chinese_words(action: Action) -> str:
    return "/".join(k for k, v in ACTION_ALIASES.items() if v is action and not k.isascii())


def _accepted_actions() -> str:
    aliases = _(", ").join(_chinese_words(a) for a in Action)
    return _("use SUSPEND, UNSUSPEND, WITHDRAW or TERMINATE (or {aliases})").format(aliases=aliases)


#: Actions for which the server rejects a blank ``action_message``, and the ones for which
#: batchops sends a default instead (the server rejects a missing message for every action).
_NEEDS_MESSAGE: Final = (Action.SUSPEND, Action.TERMINATE)
_DEFAULTED: Final = (Action.UNSUSPEND, Action.WITHDRAW)

# Excel's number rendering of a long numeric sn: 1.23457E+17, or 12345.0 after a float trip.
_MANGLED_SN: Final = r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+|\d+\.0+"
_SCIENTIFIC_SN: Final = r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+"


#: What a blank message of an UNSUSPEND/WITHDRAW row becomes (``{action}``: the action,
#: in the language in use). Short: it lands in the ticket's history, read by its users.
DEFAULT_MESSAGE: Final = N_("batchops: {action}")


def action_word(action: Action) -> str:
    """The action as the ticket's readers call it, in the language in use (the code in
    English: ``WITHDRAW``; ``撤回`` in Chinese)."""
    return _(_ACTION_WORDS[action])


_ACTION_WORDS: Final = {
    Action.SUSPEND: N_("SUSPEND"),
    Action.UNSUSPEND: N_("UNSUSPEND"),
    Action.WITHDRAW: N_("WITHDRAW"),
    Action.TERMINATE: N_("TERMINATE"),
}


def default_message(action: Action, template: str | None = None) -> str:
    """The message sent for UNSUSPEND/WITHDRAW rows whose message cell is blank: a
    profile's ``default_message`` template, else :data:`DEFAULT_MESSAGE` in the language
    in use, with ``{action}`` filled."""
    return (template or _(DEFAULT_MESSAGE)).replace("{action}", action_word(action))


@dataclass(frozen=True, slots=True)
class Validated:
    """One value per data row and field, and why a row cannot be sent ('' when it can)."""

    sn: StrArray
    operator: StrArray
    #: The canonical action ('' when the cell is blank or not recognised).
    action: StrArray
    #: The ``action_message`` to send (a default for a blank UNSUSPEND/WITHDRAW one).
    message: StrArray
    invalid: StrArray
    #: Rows whose sn, operator or message was trimmed of invisible characters, and how.
    notes: dict[int, str]
    #: Rows whose blank message was filled with the default (in the user's language).
    defaulted: npt.NDArray[np.bool_]


class _Reasons:
    """Each row's first reason not to send it; '' while none is found."""

    def __init__(self, n: int, left_out: npt.NDArray[np.bool_] | None = None) -> None:
        self.invalid: StrArray = np.full(n, "", dtype=object)
        # Rows with no reason yet; a row left out is never given one.
        self.open = np.ones(n, dtype=bool) if left_out is None else ~left_out

    def flag(self, mask: npt.NDArray[np.bool_], reason: str | StrArray) -> None:
        """Give ``reason`` to the rows of ``mask`` that have none yet (first problem wins).

        ``reason`` is one text for all of them, or one text per True entry of ``mask``.
        """
        hit = mask & self.open
        if not hit.any():
            return
        self.invalid[hit] = reason if isinstance(reason, str) else reason[self.open[mask]]
        self.open[hit] = False

    def flag_each(self, by_row: dict[int, str]) -> None:
        """Give each row of ``by_row`` its own reason (unless it has one already)."""
        if not by_row:
            return
        rows = sorted(by_row)
        mask = np.zeros(len(self.open), dtype=bool)
        mask[rows] = True
        self.flag(mask, np.array([by_row[i] for i in rows], dtype=object))


def validate(
    frame: pd.DataFrame,
    columns: dict[str, str],
    lines: npt.NDArray[np.int64],
    applied: npt.NDArray[np.bool_] | None = None,
    left_out: npt.NDArray[np.bool_] | None = None,
    message_template: str | None = None,
) -> Validated:
    """Stripped sn/operator, canonical action, message to send, the invalid reasons and
    the notes of rows whose cells were trimmed; ``lines`` are the rows' numbers in the
    sheet. ``applied`` marks the rows an earlier report fed back says were done (success,
    skipped, unknown): their sn's spelling is the one other rows must match. ``left_out``
    marks the rows hidden in the sheet that are not sent: they get no reason.
    ``message_template`` is a profile's ``default_message`` (see :func:`default_message`).

    The values of every row (left out or not) are the same whatever ``left_out`` says:
    the checkpoint knows rows by them."""
    n = len(frame)
    sn_s = frame[columns["sn"]].str.strip()
    operator_raw = frame[columns["operator"]]
    action_raw = frame[columns["action_type"]].str.strip()
    action_s = _canonical_actions(action_raw)
    if "action_message" in columns:
        message_raw = frame[columns["action_message"]]
    else:
        message_raw = pd.Series(np.full(n, "", dtype=object), dtype=object)

    sn = sn_s.to_numpy(dtype=object)
    operator = operator_raw.str.strip().to_numpy(dtype=object).copy()  # trimmed in place
    action = action_s.to_numpy(dtype=object)
    message_s = message_raw.str.strip()
    message = message_s.to_numpy(dtype=object).copy()  # defaults are written in below
    lengths = np.array(message_s.str.len(), dtype=np.int64)

    reasons = _Reasons(n, left_out)
    sn_s, notes = _check_sn(frame[columns["sn"]], sn_s, sn, columns, reasons)
    _check_operator(operator_raw, operator, columns, reasons, notes)
    _check_action(action_raw, action, columns, reasons)
    _check_message(message_raw, message, lengths, action, columns, reasons, notes)
    _check_excel_sn(sn_s, reasons)
    done = np.zeros(n, dtype=bool) if applied is None else applied
    _flag_case_variants(sn, reasons, lines, done)
    _flag_repeats(sn, action, reasons.open, reasons.invalid, lines, done)

    defaulted = np.zeros(n, dtype=bool)
    for act in _DEFAULTED:
        blank = (action == act.value) & (lengths == 0)
        message[blank] = default_message(act, message_template)
        defaulted |= blank
    if left_out is not None and notes:
        notes = {i: note for i, note in notes.items() if not left_out[i]}
    return Validated(sn, operator, action, message, reasons.invalid, notes, defaulted)


def _canonical_actions(action_raw: pd.Series) -> pd.Series:
    """Each stripped action cell as the action it names ('' for a blank or unknown one)."""
    action_s = action_raw.map(_ACTION_NAMES)
    unmatched = action_s.isna() & (action_raw != "")
    if unmatched.any():  # only other spellings pay for normalising
        action_s[unmatched] = action_raw[unmatched].map(action_key).map(_ACTION_NAMES)
    return action_s.fillna("")


def _named(columns: dict[str, str], field: str) -> str:
    """The field as a reason names it: with its column's header when that is an alias."""
    header = columns[field]
    if header_key(header) == field:
        return field
    return _("{field} (column '{header}')").format(field=field, header=show(header))


def _check_sn(
    raw: pd.Series, sn_s: pd.Series, sn: StrArray, columns: dict[str, str], reasons: _Reasons
) -> tuple[pd.Series, dict[int, str]]:
    """Flag blank sns and sns with a hidden character inside; trim the others in ``sn``.

    Returns the stripped sns as a Series (trimmed where a note says so) and the notes.
    """
    sn_reasons, notes = clean_cells(raw, sn, SN)
    if notes:
        sn_s = pd.Series(sn, index=sn_s.index, dtype=object)
    reasons.flag(
        sn == "",
        _("{field} is blank; fill in the ticket number").format(field=_named(columns, "sn")),
    )
    reasons.flag_each(sn_reasons)
    return sn_s, notes


def _check_operator(
    raw: pd.Series,
    operator: StrArray,
    columns: dict[str, str],
    reasons: _Reasons,
    notes: dict[int, str],
) -> None:
    """Flag blank operators and operators with a hidden or control character inside; trim
    the others' invisible ends in ``operator`` (noted in ``notes``)."""
    unfit, trimmed = clean_cells(raw, operator, OPERATOR)
    _add_notes(notes, trimmed)
    reasons.flag(
        operator == "",
        _("{field} is blank; fill in who performs the action").format(
            field=_named(columns, "operator")
        ),
    )
    reasons.flag_each(unfit)


def _add_notes(notes: dict[int, str], more: dict[int, str]) -> None:
    for index, note in more.items():
        notes[index] = f"{notes[index]}; {note}" if index in notes else note


def _check_action(
    action_raw: pd.Series, action: StrArray, columns: dict[str, str], reasons: _Reasons
) -> None:
    """Flag blank, ambiguous and unrecognised actions."""
    raw = action_raw.to_numpy(dtype=object)
    reasons.flag(
        raw == "",
        _("{field} is blank; {accepted}").format(
            field=_named(columns, "action_type"), accepted=_accepted_actions()
        ),
    )
    unknown = np.flatnonzero((action == "") & (raw != ""))
    by_row: dict[int, str] = {}
    accepted = _accepted_actions()
    for index in unknown.tolist():
        cell = str(raw[index])
        choices = AMBIGUOUS_ACTIONS.get(action_key(cell))
        if choices:
            named = _("{code} ({word})")
            shown = _(" or ").join(
                named.format(code=a.value, word=_chinese_words(a).split("/")[0]) for a in choices
            )
            by_row[index] = _(
                "action_type '{cell}' could mean {choices}; write the one you mean"
            ).format(cell=show(cell), choices=shown)
        else:
            by_row[index] = _("action_type '{cell}' is not recognised; {accepted}").format(
                cell=show(cell), accepted=accepted
            )
    reasons.flag_each(by_row)


def _check_message(
    raw: pd.Series,
    message: StrArray,
    lengths: npt.NDArray[np.int64],
    action: StrArray,
    columns: dict[str, str],
    reasons: _Reasons,
    notes: dict[int, str],
) -> None:
    """Flag blank messages where the server requires one, messages with a control
    character inside, and messages that are too long; trim the others' invisible ends in
    ``message`` (and ``lengths``; noted in ``notes``)."""
    unfit, trimmed = clean_cells(raw, message, MESSAGE)
    _add_notes(notes, trimmed)
    for index in trimmed:
        lengths[index] = len(message[index])
    blank_message = lengths == 0
    for act in _NEEDS_MESSAGE:
        if "action_message" in columns:
            reason = _("{field} is blank; the server requires a reason for {action}").format(
                field=_named(columns, "action_message"), action=act.value
            )
        else:
            reason = _(
                "there is no action_message column; the server requires a reason for "
                "{action} (add a column {headers})"
            ).format(action=act.value, headers=", ".join(FIELD_ALIASES["action_message"]))
        reasons.flag((action == act.value) & blank_message, reason)
    reasons.flag_each(unfit)

    too_long = lengths > MAX_MESSAGE_LENGTH
    if too_long.any():
        text = _("action_message is {count} characters; shorten it to at most {limit}")
        texts = [
            text.format(count=count, limit=MAX_MESSAGE_LENGTH)
            for count in lengths[too_long].tolist()
        ]
        reasons.flag(too_long, np.array(texts, dtype=object))


def _check_excel_sn(sn_s: pd.Series, reasons: _Reasons) -> None:
    """Flag sns that Excel turned into numbers (scientific notation, a trailing .0)."""
    mangled = sn_s.str.fullmatch(_MANGLED_SN).to_numpy(dtype=bool)
    if not mangled.any():
        return
    hits = sn_s[mangled]
    scientific = hits.str.fullmatch(_SCIENTIFIC_SN).to_numpy(dtype=bool)
    as_number = _(
        "sn '{sn}' was turned into a number by Excel (scientific notation); format the sn "
        "column as Text and re-export the file"
    )
    with_zero = _(
        "sn '{sn}' has a trailing .0 added by Excel; format the sn column as Text and "
        "re-export the file"
    )
    texts = [
        (as_number if sci else with_zero).format(sn=show(sn))
        for sn, sci in zip(hits.tolist(), scientific.tolist(), strict=True)
    ]
    reasons.flag(mangled, np.array(texts, dtype=object))


def one_letter_case(sns: list[str]) -> bool:
    """Whether no two of ``sns`` can differ by letter case alone, told cheaply: ASCII sns
    all in one case (nearly every file) cost one join, never a case-fold per sn."""
    joined = "".join(sns)
    return joined.isascii() and (joined.upper() == joined or joined.lower() == joined)


def _flag_case_variants(
    sn: StrArray,
    reasons: _Reasons,
    lines: npt.NDArray[np.int64],
    done: npt.NDArray[np.bool_],
) -> None:
    """Flag rows whose sn is an earlier row's in other letter case ("req1" after "REQ1").

    batchops keeps a ticket's rows in file order by sn. ITSM's ticket lookup may ignore
    case (docs/itsm.md §3), and then two spellings are one ticket whose rows would go out
    in no set order, side by side: a SUSPEND could follow a SUSPEND. The first spelling
    in the file is kept, or in a report fed back the first one already ``done`` (a done
    row is never flagged: it keeps its result); the others are refused with the row to
    match.
    """
    rows = np.flatnonzero(reasons.open | done)
    if rows.size < 2:
        return
    if one_letter_case(sn[rows].tolist()):
        return
    codes, spellings = pd.factorize(sn[rows], sort=False)
    folded, _unused = pd.factorize(np.array([s.casefold() for s in spellings], dtype=object))
    if folded.max() + 1 == len(spellings):
        return
    # Spellings come in order of first appearance, so each group's lowest is its first;
    # a spelling already applied comes before any other (the order is by that, then by
    # first appearance).
    was_done = np.zeros(len(spellings), dtype=bool)
    was_done[codes[done[rows]]] = True
    order = np.lexsort((np.arange(len(spellings)), ~was_done, folded))
    leaders = order[np.r_[True, folded[order][1:] != folded[order][:-1]]]
    kept = np.empty(folded.max() + 1, dtype=np.int64)
    kept[folded[leaders]] = leaders
    kept = kept[folded]  # per spelling: the one its group keeps
    variant = (kept != np.arange(len(spellings)))[codes] & ~done[rows]
    _unused, first_position = np.unique(codes, return_index=True)
    kept_of_rows = kept[codes[variant]]
    first_line = lines[rows[first_position[kept_of_rows]]]
    text = _(
        "sn '{sn}' is row {row}'s sn '{first}' in other letter case; ITSM may take both for "
        "one ticket, and then their rows would not go in file order: write the sn the same "
        "way in every row"
    )
    texts = [
        text.format(sn=show(str(spellings[own])), row=line, first=show(str(spellings[first])))
        for own, first, line in zip(
            codes[variant].tolist(), kept_of_rows.tolist(), first_line.tolist(), strict=True
        )
    ]
    mask = np.zeros(len(sn), dtype=bool)
    mask[rows[variant]] = True
    reasons.flag(mask, np.array(texts, dtype=object))


def _flag_repeats(
    sn: StrArray,
    action: StrArray,
    open_: npt.NDArray[np.bool_],
    invalid: StrArray,
    lines: npt.NDArray[np.int64],
    done: npt.NDArray[np.bool_],
) -> None:
    """Flag rows whose action equals the previous otherwise-valid row's for the same sn.

    The reason names the row of the run that stands for it: the first one, which is sent,
    or in a report fed back the first row that was already ``done``. A done row is
    never flagged (it keeps its result), so the others of its run are, wherever they
    stand: sending one of them would repeat what the done row did.
    """
    rows = np.flatnonzero(open_ | done)
    if rows.size < 2:
        return
    # Sort the candidate rows by sn, keeping file order within one sn; a repeat is then a
    # neighbour with the same sn and the same action.
    codes, _unused = pd.factorize(pd.Series(sn[rows], dtype=object), sort=False)
    order = np.argsort(codes, kind="stable")
    group = codes[order]
    acts = action[rows][order]
    repeat = np.zeros(rows.size, dtype=bool)
    repeat[1:] = (group[1:] == group[:-1]) & (acts[1:] == acts[:-1])
    if not repeat.any():
        return
    # Runs of one action for one sn, numbered in sorted order; each run's leader is its
    # first done row if it has one, else its first row.
    run = np.cumsum(~repeat) - 1
    positions = np.arange(rows.size)
    leader = positions[~repeat]  # each run's first position (a group starts a run)
    was_done = done[rows][order]
    done_at = np.flatnonzero(was_done)
    runs_with_done, first_done = np.unique(run[done_at], return_index=True)
    leader[runs_with_done] = done_at[first_done]
    flagged = (positions != leader[run]) & ~was_done
    if not flagged.any():
        return
    hit = rows[order[flagged]]
    first_row = lines[rows[order[leader[run[flagged]]]]].astype(str).astype(object)
    repeated = acts[flagged]
    plain = _("repeats {action} of row {row} for the same sn; remove the duplicate row")
    stuck = _(
        "repeats {action} of row {row} for the same sn (a second SUSPEND of a suspended "
        "ticket leaves it stuck in SUSPENDED); remove the duplicate row"
    )
    invalid[hit] = [
        (stuck if act == Action.SUSPEND.value else plain).format(action=act, row=row)
        for act, row in zip(repeated.tolist(), first_row.tolist(), strict=True)
    ]
    open_[hit] = False
