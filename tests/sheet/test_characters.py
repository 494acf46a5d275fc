"""Tests of batchops.sheet.characters through loading: invisible characters trimmed at the
ends of sn, operator and message, hidden and control characters refused inside, each
field by its own rule, and the reason naming the character and its position."""

from __future__ import annotations

import string
import unicodedata
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from batchops.model import MAX_MESSAGE_LENGTH
from batchops.sheet.characters import MESSAGE, OPERATOR, SN, clean_cells

from ..helpers import PROPERTY, load_one

INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00a0\u202f\u2007\u3000\u180e"
#: Never inside an operator: controls, zero-width and format characters, separators.
UNFIT_IN_OPERATOR = "\x00\x1b\x07\x7f\x9b\t\n\r\u200b\u200d\u2060\ufeff\u202e\u00a0\u3000\u2028"
#: Never inside a message: control characters other than tab and line breaks.
UNFIT_IN_MESSAGE = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\x9b"
NAME = st.text(alphabet=string.ascii_lowercase + string.digits + "._", min_size=2, max_size=12)
TEXT = st.text(alphabet=string.ascii_letters + " 挂起维护", min_size=2, max_size=40).filter(
    lambda t: t.strip() == t and len(t) >= 2
)


@PROPERTY
@given(core=NAME, bad=st.sampled_from(UNFIT_IN_OPERATOR), where=st.integers(min_value=1))
def test_an_operator_with_a_hidden_or_control_character_inside_is_invalid(
    tmp_path: Path, core: str, bad: str, where: int
) -> None:
    """Property: a control, zero-width, format or separator character inside an operator
    makes the row invalid; the reason names the character and its position."""
    at = 1 + where % (len(core) - 1)
    batch = load_one(
        tmp_path,
        [["R1", core[:at] + bad + core[at:], "SUSPEND", "m"], ["R2", core, "SUSPEND", "m"]],
    )
    reason = str(batch.invalid[0])
    assert reason.startswith("operator ") and f"at position {at + 1}" in reason
    assert f"U+{ord(bad):04X}" in reason or bad in "\t\n\r\x00"
    assert "type it again" in reason
    assert batch.valid_indices().tolist() == [1]


def test_an_operator_keeps_plain_spaces_and_letters_of_any_script(tmp_path: Path) -> None:
    """Spaces and letters of any script are no hidden characters: only the zero-width
    space among these names is refused."""
    batch = load_one(
        tmp_path,
        [
            ["R1", "zhang san", "SUSPEND", "m"],
            ["R2", "张三", "SUSPEND", "m"],
            ["R3", "zhang\u200bsan", "SUSPEND", "m"],
        ],
    )
    assert batch.invalid[:2].tolist() == ["", ""]
    assert batch.operator[:2].tolist() == ["zhang san", "张三"]
    assert "zero width space (U+200B) at position 6" in batch.invalid[2]


@PROPERTY
@given(
    core=NAME,
    left=st.text(alphabet=INVISIBLE + " ", max_size=3),
    right=st.text(alphabet=INVISIBLE + " ", max_size=3),
)
def test_an_operator_padded_with_invisible_characters_is_trimmed_and_noted(
    tmp_path: Path, core: str, left: str, right: str
) -> None:
    """Property: as for an sn, the ends are trimmed and the row notes what was removed."""
    batch = load_one(tmp_path, [["R1", left + core + right, "SUSPEND", "m"]])
    assert batch.invalid[0] == ""
    assert batch.operator.tolist() == [core]
    hidden = {c for c in left + right if c in INVISIBLE}
    if hidden:
        assert batch.notes[0].startswith("operator trimmed of invisible characters")
        assert all(f"U+{ord(c):04X}" in batch.notes[0] for c in hidden)
    else:
        assert batch.notes == {}


@PROPERTY
@given(core=TEXT, bad=st.sampled_from(UNFIT_IN_MESSAGE), where=st.integers(min_value=1))
def test_a_message_with_a_control_character_inside_is_invalid(
    tmp_path: Path, core: str, bad: str, where: int
) -> None:
    """Property: NUL, ESC, BEL, DEL, C1 controls … inside a message make the row invalid
    (the message is kept in the ticket's history as sent); the reason names the
    character and its position, and does not quote the message."""
    at = 1 + where % (len(core) - 1)
    batch = load_one(tmp_path, [["R1", "admin", "SUSPEND", core[:at] + bad + core[at:]]])
    reason = str(batch.invalid[0])
    assert reason.startswith("action_message holds ")
    assert f"at position {at + 1}" in reason
    assert f"U+{ord(bad):04X}" in reason or bad == "\x00"
    assert bad not in reason


def test_a_message_keeps_tabs_line_breaks_and_joiners(tmp_path: Path) -> None:
    """Tabs, line breaks and the zero width joiner of an emoji are text, sent as they are;
    among them only the message with a vertical tab is refused."""
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    messages = ["first line\nsecond\tline", "windows\r\nline", f"家人 {family} ok", "a\u200bb"]
    rows = [[f"R{i}", "admin", "SUSPEND", m] for i, m in enumerate([*messages, "a\x0bb"])]
    batch = load_one(tmp_path, rows)
    assert batch.invalid[:4].tolist() == [""] * 4
    assert batch.message[:4].tolist() == messages
    assert "U+000B" in batch.invalid[4]


@PROPERTY
@given(
    core=TEXT,
    left=st.text(alphabet=INVISIBLE + " ", min_size=1, max_size=3),
    right=st.text(alphabet=INVISIBLE + " ", max_size=3),
)
def test_a_message_padded_with_invisible_characters_is_trimmed_and_noted(
    tmp_path: Path, core: str, left: str, right: str
) -> None:
    """Property: a message's invisible ends are trimmed (and noted), so it is sent as seen."""
    batch = load_one(tmp_path, [["R1", "admin", "SUSPEND", left + core + right]])
    assert batch.invalid[0] == ""
    assert batch.message.tolist() == [core]
    if any(c in INVISIBLE for c in left + right):
        assert batch.notes[0].startswith("action_message trimmed of invisible characters")


def test_a_message_of_invisible_characters_only_is_blank(tmp_path: Path) -> None:
    """Nothing visible is a blank message: refused for SUSPEND, the default for UNSUSPEND;
    the length limit counts what is sent."""
    batch = load_one(
        tmp_path,
        [
            ["R1", "admin", "SUSPEND", "\u200b\ufeff"],
            ["R2", "admin", "UNSUSPEND", "\u200b"],
            ["R3", "admin", "SUSPEND", "\u200b" + "x" * MAX_MESSAGE_LENGTH + "\u200b"],
        ],
    )
    assert "is blank" in batch.invalid[0]
    assert batch.invalid[1] == "" and batch.message[1] == "batchops: UNSUSPEND"
    assert batch.invalid[2] == ""


def test_an_sn_of_invisible_characters_only_is_blank(tmp_path: Path) -> None:
    """An sn of nothing but a zero-width space is blank (it was sent as it was)."""
    batch = load_one(tmp_path, [["\u200b", "admin", "SUSPEND", "m"]])
    assert "sn is blank" in batch.invalid[0]


def test_a_reason_names_each_kind_once_and_stays_one_line(tmp_path: Path) -> None:
    """Many control characters: each kind once (its first position), a few at most."""
    message = "a\x00b\x00c\x1bd\x07e\x01f\x02g"
    batch = load_one(tmp_path, [["R1", "admin", "SUSPEND", message]])
    reason = str(batch.invalid[0])
    assert reason.count("NUL") == 1 and "at position 2" in reason
    assert "more" in reason and "\n" not in reason
    assert all(unicodedata.category(c) != "Cc" for c in reason)


def test_one_cell_by_each_rule() -> None:
    """The same cell by each field's rule: an inner tab is text in a message, a fault in an
    operator or an sn; every cell is trimmed of its invisible ends in place."""
    raw = pd.Series(["\u200ba\tb", "plain"], dtype=object)
    verdicts = {}
    for rule in (SN, OPERATOR, MESSAGE):
        values = raw.str.strip().to_numpy(dtype=object).copy()
        reasons, notes = clean_cells(raw, values, rule)
        verdicts[rule.name] = (sorted(reasons), notes, values.tolist())
    assert verdicts["sn"][0] == [0] and verdicts["operator"][0] == [0]
    assert verdicts["action_message"] == (
        [],
        {0: "action_message trimmed of invisible characters at its ends (U+200B)"},
        ["a\tb", "plain"],
    )
