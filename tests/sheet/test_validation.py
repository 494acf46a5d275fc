"""Tests of batchops.sheet.validation: every row checked, one reason per invalid row (the first
problem wins), action aliases, hidden characters in an sn, default messages."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from batchops.i18n import using
from batchops.model import MAX_MESSAGE_LENGTH, Action
from batchops.sheet.loading import load_batch
from batchops.sheet.validation import ACTION_ALIASES, AMBIGUOUS_ACTIONS

from ..helpers import PROPERTY, Cells, load_one, write_csv


def test_default_message_for_unsuspend_and_withdraw(tmp_path: Path) -> None:
    """A blank message is replaced by a non-blank default for UNSUSPEND and WITHDRAW only."""
    batch = load_one(
        tmp_path,
        [
            ["A", "u", "UNSUSPEND", ""],
            ["B", "u", "WITHDRAW", "   "],
            ["C", "u", "WITHDRAW", "mine"],
        ],
    )
    assert batch.invalid_count() == 0
    assert batch.message.tolist() == ["batchops: UNSUSPEND", "batchops: WITHDRAW", "mine"]
    assert batch.frame["action_message"].tolist() == ["", "   ", "mine"]


def test_default_message_without_message_column(tmp_path: Path) -> None:
    """With no message column UNSUSPEND/WITHDRAW get defaults and SUSPEND is invalid."""
    batch = load_one(
        tmp_path,
        [["A", "u", "UNSUSPEND"], ["B", "u", "WITHDRAW"], ["C", "u", "SUSPEND"]],
        header=["sn", "operator", "action_type"],
    )
    assert "action_message" not in batch.columns
    assert batch.message.tolist()[:2] == ["batchops: UNSUSPEND", "batchops: WITHDRAW"]
    assert batch.invalid[2].startswith("there is no action_message column")
    assert "SUSPEND" in batch.invalid[2]


def reasons(tmp_path: Path, rows: Cells) -> list[str]:
    return [str(r) for r in load_one(tmp_path, rows).invalid]


def test_blank_sn(tmp_path: Path) -> None:
    """A blank sn makes the row invalid."""
    assert reasons(tmp_path, [["  ", "u", "SUSPEND", "x"]])[0].startswith("sn is blank")


def test_blank_operator(tmp_path: Path) -> None:
    """A blank operator makes the row invalid."""
    assert reasons(tmp_path, [["A", " ", "SUSPEND", "x"]])[0].startswith("operator is blank")


def test_blank_action(tmp_path: Path) -> None:
    """A blank action is invalid and the reason lists the accepted actions."""
    reason = reasons(tmp_path, [["A", "u", "", "x"]])[0]
    assert reason.startswith("action_type is blank")
    assert "SUSPEND, UNSUSPEND, WITHDRAW or TERMINATE" in reason


def test_unknown_action(tmp_path: Path) -> None:
    """An unrecognised action is invalid; the reason quotes it and lists the accepted ones."""
    batch = load_one(tmp_path, [["A", "u", " Close\nnow ", "x"]])
    assert batch.action[0] == ""
    reason = str(batch.invalid[0])
    assert reason.startswith("action_type 'Close now' is not recognised")
    assert "TERMINATE" in reason and "挂起" in reason and "\n" not in reason


@pytest.mark.parametrize("action", ["SUSPEND", "TERMINATE", "挂起", "终止"])
def test_blank_message_for_actions_that_need_one(tmp_path: Path, action: str) -> None:
    """SUSPEND and TERMINATE with a blank message are invalid (the server requires one)."""
    reason = reasons(tmp_path, [["A", "u", action, "  "]])[0]
    assert reason.startswith("action_message is blank")
    assert ACTION_ALIASES[action].value in reason


def test_blank_message_reason_names_aliased_column(tmp_path: Path) -> None:
    """When the message column has an alias header, the reason names that header."""
    batch = load_one(
        tmp_path, [["A", "u", "SUSPEND", ""]], header=["sn", "operator", "action_type", "备注"]
    )
    assert batch.invalid[0].startswith("action_message (column '备注') is blank")


def test_message_length_limit(tmp_path: Path) -> None:
    """255 characters (after stripping) pass; 256 are invalid and the length is stated."""
    ok = "x" * MAX_MESSAGE_LENGTH
    result = reasons(
        tmp_path,
        [
            ["A", "u", "SUSPEND", ok],
            ["B", "u", "SUSPEND", f"  {ok}  "],
            ["C", "u", "SUSPEND", ok + "y"],
        ],
    )
    assert result[:2] == ["", ""]
    assert result[2].startswith("action_message is 256 characters")
    assert str(MAX_MESSAGE_LENGTH) in result[2]


@pytest.mark.parametrize("sn", ["1.23457E+17", "1.2345678901234568e+17", "4E+15", "-1.5e-3"])
def test_scientific_sn_is_flagged(tmp_path: Path, sn: str) -> None:
    """An sn in scientific notation was mangled by Excel; the reason says how to fix it."""
    reason = reasons(tmp_path, [[sn, "u", "SUSPEND", "x"]])[0]
    assert reason.startswith(f"sn '{sn}' was turned into a number by Excel")
    assert "format the sn column as Text and re-export" in reason


@pytest.mark.parametrize("sn", ["12345.0", "12345.00"])
def test_trailing_dot_zero_sn_is_flagged(tmp_path: Path, sn: str) -> None:
    """A numeric sn with a trailing .0 was mangled by Excel."""
    reason = reasons(tmp_path, [[sn, "u", "SUSPEND", "x"]])[0]
    assert reason.startswith(f"sn '{sn}' has a trailing .0")
    assert "format the sn column as Text" in reason


@pytest.mark.parametrize("sn", ["NO2024.0A", "E12", "12345", "1.5", "REQ-1E5X"])
def test_ordinary_sns_are_not_flagged(tmp_path: Path, sn: str) -> None:
    """Only whole-cell scientific notation or N.0 counts as mangled."""
    assert reasons(tmp_path, [[sn, "u", "SUSPEND", "x"]]) == [""]


def test_repeated_action_for_same_sn(tmp_path: Path) -> None:
    """A second identical action for one sn is invalid and names the row it repeats."""
    result = reasons(
        tmp_path,
        [
            ["A", "u", "SUSPEND", "x"],  # row 2
            ["B", "u", "SUSPEND", "x"],  # row 3: other sn
            ["A", "v", "挂起", "y"],  # row 4: repeats row 2
            ["A", "u", "UNSUSPEND", ""],  # row 5
            ["A", "u", "SUSPEND", "x"],  # row 6: fine again
            ["B", "u", "UNSUSPEND", ""],  # row 7
            ["B", "u", "UNSUSPEND", ""],  # row 8: repeats row 7
        ],
    )
    assert result[0] == result[1] == result[3] == result[4] == result[5] == ""
    assert result[2].startswith("repeats SUSPEND of row 2 for the same sn")
    assert "stuck in SUSPENDED" in result[2]
    assert result[6].startswith("repeats UNSUSPEND of row 7 for the same sn")
    assert "stuck" not in result[6]


def test_repeat_run_names_the_row_that_is_sent(tmp_path: Path) -> None:
    """In a run of three identical actions both repeats name the first row of the run."""
    result = reasons(tmp_path, [["A", "u", "WITHDRAW", ""]] * 3)
    assert result == [
        "",
        "repeats WITHDRAW of row 2 for the same sn; remove the duplicate row",
        "repeats WITHDRAW of row 2 for the same sn; remove the duplicate row",
    ]


def test_repeat_ignores_rows_invalid_for_other_reasons(tmp_path: Path) -> None:
    """Rows that are invalid anyway neither repeat nor break a repeat."""
    result = reasons(
        tmp_path,
        [
            ["A", "u", "SUSPEND", "x"],
            ["A", "", "SUSPEND", "x"],  # invalid: operator
            ["A", "u", "SUSPEND", "x"],  # repeats row 2 across the invalid row
            ["C", "u", "SUSPEND", "x"],
            ["C", "u", "UNSUSPEND", "x" * 300],  # invalid: too long
            ["C", "u", "SUSPEND", "x"],  # repeats row 5
        ],
    )
    assert result[1].startswith("operator is blank")
    assert result[2].startswith("repeats SUSPEND of row 2")
    assert result[4].startswith("action_message is 300 characters")
    assert result[5].startswith("repeats SUSPEND of row 5")


def test_one_sn_in_two_letter_cases_keeps_the_first_spelling(tmp_path: Path) -> None:
    """An sn written again in other letter case is refused, naming the row to match: ITSM
    may look both up as one ticket, and batchops would keep them apart."""
    result = reasons(
        tmp_path,
        [
            ["REQ1", "u", "SUSPEND", "x"],  # row 2: the first spelling, kept
            ["req1", "u", "UNSUSPEND", ""],  # row 3
            ["B", "u", "SUSPEND", "x"],  # row 4: another ticket
            ["Req1", "u", "SUSPEND", "x"],  # row 5
            ["REQ1", "u", "UNSUSPEND", ""],  # row 6: the first spelling again
            ["b", "u", "WITHDRAW", ""],  # row 7
        ],
    )
    assert result[0] == result[2] == result[4] == ""
    assert result[1] == (
        "sn 'req1' is row 2's sn 'REQ1' in other letter case; ITSM may take both for one "
        "ticket, and then their rows would not go in file order: write the sn the same way "
        "in every row"
    )
    assert result[3].startswith("sn 'Req1' is row 2's sn 'REQ1' in other letter case")
    assert result[5].startswith("sn 'b' is row 4's sn 'B' in other letter case")


def test_letter_case_counts_only_rows_that_are_sent(tmp_path: Path) -> None:
    """A spelling on a row invalid anyway is not the one to match; sns in one case pass."""
    result = reasons(
        tmp_path,
        [
            ["REQ1", "", "SUSPEND", "x"],  # invalid: operator
            ["req1", "u", "SUSPEND", "x"],  # the first spelling that would be sent
            ["req2", "u", "SUSPEND", "x"],
            ["abc-9", "u", "SUSPEND", "x"],
        ],
    )
    assert result[0].startswith("operator is blank")
    assert result[1:] == ["", "", ""]


@PROPERTY
@given(
    sns=st.lists(
        st.sampled_from(["ab", "AB", "Ab", "aB", "c1", "C1", "ẞ", "ß", "ss"]),
        min_size=1,
        max_size=8,
    )
)
def test_no_two_sent_rows_differ_in_letter_case_alone(tmp_path: Path, sns: list[str]) -> None:
    """Property: among the rows that may be sent, equal case-folded sns are equal sns, and
    a refused row's sn case-folds to a sent row's."""
    batch = load_one(tmp_path, [[sn, "u", "WITHDRAW", ""] for sn in sns])
    sent = [sn for sn, why in zip(sns, batch.invalid.tolist(), strict=True) if not why]
    by_fold: dict[str, set[str]] = {}
    for sn in sent:
        by_fold.setdefault(sn.casefold(), set()).add(sn)
    assert all(len(spellings) == 1 for spellings in by_fold.values())
    for sn, why in zip(sns, batch.invalid.tolist(), strict=True):
        if "letter case" in why:
            assert sn.casefold() in by_fold and sn not in sent


def test_first_problem_wins(tmp_path: Path) -> None:
    """When a row has several problems the reason is the first in the documented order."""
    result = reasons(
        tmp_path,
        [
            ["", "", "", ""],  # all-blank: dropped
            ["", "", "bogus", "x"],
            ["A", "", "bogus", ""],
            ["B", "u", "bogus", "x" * 300],
            ["1E+5", "u", "SUSPEND", ""],
            ["1E+6", "u", "SUSPEND", "x" * 300],
            ["C", "u", "SUSPEND", "x"],
            ["C", "u", "SUSPEND", "x" * 300],
        ],
    )
    assert result[0].startswith("sn is blank")
    assert result[1].startswith("operator is blank")
    assert result[2].startswith("action_type 'bogus'")
    assert result[3].startswith("action_message is blank")
    assert result[4].startswith("action_message is 300 characters")
    assert result[5] == ""
    assert result[6].startswith("action_message is 300 characters")


def test_action_mangled_sn_and_repeat_order(tmp_path: Path) -> None:
    """A mangled sn is reported before a repeat, and a mangled row is not a repeat source."""
    result = reasons(
        tmp_path,
        [["5.0", "u", "SUSPEND", "x"], ["5.0", "u", "SUSPEND", "x"], ["D", "u", "WITHDRAW", ""]],
    )
    assert result[0].startswith("sn '5.0' has a trailing .0")
    assert result[1].startswith("sn '5.0' has a trailing .0")
    assert result[2] == ""


@pytest.mark.parametrize(("spelling", "action"), [(k, v) for k, v in ACTION_ALIASES.items()])
def test_every_action_alias(tmp_path: Path, spelling: str, action: Action) -> None:
    """Each accepted spelling (also in lower case and padded) means its action."""
    batch = load_one(
        tmp_path,
        [["A", "u", spelling, "m"], ["B", "u", f"  {spelling.lower()}\t", "m"]],
    )
    assert batch.action.tolist() == [action.value, action.value]
    assert batch.invalid_count() == 0


@PROPERTY
@given(
    spelling=st.sampled_from(sorted(ACTION_ALIASES)),
    flips=st.lists(st.booleans(), min_size=9, max_size=9),
    left=st.text(alphabet=" \t\u3000", max_size=3),
    right=st.text(alphabet=" \t\u3000", max_size=3),
)
def test_action_aliases_any_case_and_padding(
    tmp_path: Path, spelling: str, flips: list[bool], left: str, right: str
) -> None:
    """Property: any casing and blank padding of an accepted action maps to that action."""
    cased = "".join(c.lower() if f else c for c, f in zip(spelling, flips, strict=False))
    batch = load_one(tmp_path, [["A", "u", left + cased + right, "m"]])
    assert batch.action[0] == ACTION_ALIASES[spelling].value
    assert batch.invalid[0] == ""


@PROPERTY
@given(
    sn=st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
        min_size=1,
        max_size=30,
    )
)
def test_any_sn_round_trips(tmp_path: Path, sn: str) -> None:
    """Property: any sn text is echoed unchanged in the frame; it is sent trimmed of blanks
    and invisible characters at its ends, or not at all when one is left inside."""
    assume(not sn.startswith("\ufeff"))
    batch = load_one(tmp_path, [[sn, "op", "UNSUSPEND", "m"]])
    assert batch.frame["sn"].tolist() == [sn]
    core = sn
    while core != core.strip().strip(INVISIBLE):
        core = core.strip().strip(INVISIBLE)
    if not core:
        assert "blank" in batch.invalid[0]
    elif any(_unfit(c) for c in core):
        assert "holds" in batch.invalid[0]
    else:
        assert batch.sn.tolist() == [core]


#: What a copy from a web page or a chat leaves around (and inside) an sn.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00a0\u202f\u2007\u3000\u180e"
UNFIT_INSIDE = "\t\n\r\x00\x0b\x1f\x7f \u200b\u00a0\u2028\ufeff\u3000\u200e"


def _unfit(char: str) -> bool:
    import unicodedata

    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp", "Co")


# An sn the way a ticket system writes one: not a number Excel wrote in scientific
# notation (0E0, 1E5), which is refused for a reason of its own.
SN_CORE = st.text(
    alphabet=string.ascii_uppercase + string.digits + "-_", min_size=2, max_size=16
).filter(lambda sn: not re.fullmatch(r"\d+(?:\.\d+)?E\d+", sn))


@PROPERTY
@given(core=SN_CORE, bad=st.sampled_from(UNFIT_INSIDE), where=st.integers(min_value=1))
def test_sn_with_a_hidden_character_inside_is_invalid(
    tmp_path: Path, core: str, bad: str, where: int
) -> None:
    """Property: a control character, line break, tab, NUL, blank or zero-width/no-break
    space inside an sn makes the row invalid (never sent), saying which character."""
    at = 1 + where % (len(core) - 1)
    sn = core[:at] + bad + core[at:]
    batch = load_one(tmp_path, [[sn, "op", "SUSPEND", "m"], ["OK1", "op", "SUSPEND", "m"]])
    reason = str(batch.invalid[0])
    assert reason.startswith("sn ") and "holds" in reason
    assert f"U+{ord(bad):04X}" in reason or bad in "\t\n\r\x00 "
    assert batch.invalid[1] == ""
    assert batch.valid_indices().tolist() == [1]


@PROPERTY
@given(
    core=SN_CORE,
    left=st.text(alphabet=INVISIBLE + " ", max_size=3),
    right=st.text(alphabet=INVISIBLE + " ", max_size=3),
)
def test_sn_padded_with_invisible_characters_is_trimmed_and_noted(
    tmp_path: Path, core: str, left: str, right: str
) -> None:
    """Property: zero-width and no-break spaces at the ends are trimmed; the row is sent
    with the bare sn, and the row carries a note naming what was removed."""
    batch = load_one(tmp_path, [[left + core + right, "op", "SUSPEND", "m"]])
    assert batch.invalid[0] == ""
    assert batch.sn.tolist() == [core]
    hidden = {c for c in left + right if c in INVISIBLE}
    if hidden:
        assert all(f"U+{ord(c):04X}" in batch.notes[0] for c in hidden)
    else:
        assert batch.notes == {}


# --------------------------------------------------------------------------- the words people use


def _full_width(text: str, flips: list[bool]) -> str:
    """``text`` with the ASCII letters chosen by ``flips`` typed in full width, as a
    Chinese input method does (``S`` → ``Ｓ``)."""
    return "".join(
        chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() and flip else c
        for c, flip in zip(text, [*flips, *[False] * len(text)], strict=False)
    )


@pytest.mark.parametrize(
    ("word", "action"),
    [
        ("解挂", Action.UNSUSPEND),
        ("撤回", Action.WITHDRAW),
        ("暂停", Action.SUSPEND),
        ("ＳＵＳＰＥＮＤ", Action.SUSPEND),
        ("ｕｎｓｕｓｐｅｎｄ", Action.UNSUSPEND),
        ("\u3000撤回\u3000", Action.WITHDRAW),
        ("取消\u3000挂起", Action.UNSUSPEND),
    ],
)
def test_the_words_people_write(tmp_path: Path, word: str, action: Action) -> None:
    """解挂, 撤回, 暂停 and full-width letters and blanks mean their action."""
    batch = load_one(tmp_path, [["A", "u", word, "m"]])
    assert batch.action.tolist() == [action.value]
    assert batch.invalid[0] == ""


@PROPERTY
@given(
    spelling=st.sampled_from(sorted(ACTION_ALIASES)),
    flips=st.lists(st.booleans(), min_size=9, max_size=9),
    lower=st.booleans(),
    left=st.text(alphabet=" \t\u3000\u200b", max_size=3),
    right=st.text(alphabet=" \t\u3000\u200b", max_size=3),
)
# Found by CI: zero-width spaces on both sides of a blank.
@example(spelling="SUSPEND", flips=[False] * 9, lower=False, left="", right="\u200b \u200b")
def test_full_width_spellings_mean_their_action(
    tmp_path: Path, spelling: str, flips: list[bool], lower: bool, left: str, right: str
) -> None:
    """Property: an accepted spelling typed in any mix of full- and half-width letters, in
    either case, padded with blanks, ideographic spaces or zero-width spaces, is its action
    (NFKC before matching)."""
    typed = _full_width(spelling.lower() if lower else spelling, flips)
    batch = load_one(tmp_path, [["A", "u", left + typed + right, "m"]])
    assert batch.action[0] == ACTION_ALIASES[spelling].value
    assert batch.invalid[0] == ""


@PROPERTY
@given(
    word=st.sampled_from(sorted(AMBIGUOUS_ACTIONS)),
    left=st.text(alphabet=" \u3000", max_size=2),
    right=st.text(alphabet=" \u3000", max_size=2),
)
def test_an_ambiguous_word_is_never_guessed(
    tmp_path: Path, word: str, left: str, right: str
) -> None:
    """Property: a word that names more than one action (关单: WITHDRAW or TERMINATE) is
    refused, its reason naming every choice, and no action is taken for it."""
    batch = load_one(tmp_path, [["A", "u", left + word + right, "m"]])
    assert batch.action[0] == ""
    reason = str(batch.invalid[0])
    assert reason.startswith(f"action_type '{word}' could mean ")
    for choice in AMBIGUOUS_ACTIONS[word]:
        assert choice.value in reason


def test_no_word_is_both_accepted_and_ambiguous() -> None:
    """One home per word: an accepted spelling is never also an ambiguous one."""
    assert not set(ACTION_ALIASES) & set(AMBIGUOUS_ACTIONS)
    assert all(len(choices) > 1 for choices in AMBIGUOUS_ACTIONS.values())


def test_blank_messages_in_chinese_and_from_a_template(tmp_path: Path) -> None:
    """Under zh a blank UNSUSPEND/WITHDRAW message is short Chinese; a profile's template
    wins in either language, its {action} in the language in use; reasons are Chinese."""
    rows: Cells = [["A", "u", "UNSUSPEND", ""], ["B", "u", "撤回", ""], ["C", "u", "关单", "x"]]
    path = write_csv(tmp_path / "t.csv", rows)
    with using("zh"):
        batch = load_batch(path)
        templated = load_batch(path, default_message="运维：{action}")
    assert batch.message.tolist()[:2] == ["批量操作：解挂", "批量操作：撤回"]
    assert templated.message.tolist()[:2] == ["运维：解挂", "运维：撤回"]
    assert batch.invalid[2].startswith("操作“关单”有歧义")
    with using("en"):
        english = load_batch(path, default_message="ops: {action}")
    assert english.message.tolist()[:2] == ["ops: UNSUSPEND", "ops: WITHDRAW"]
