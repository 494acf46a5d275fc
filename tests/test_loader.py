"""Tests of batchops.loader: real CSV and XLSX files in, validated rows and one-line errors out."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import string
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import xlsxwriter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from batchops.errors import InputError
from batchops.inputfile import cell_text as _cell_text
from batchops.loader import ACTION_ALIASES, FIELD_ALIASES, Batch, load_batch
from batchops.model import MAX_MESSAGE_LENGTH, RESULT_COLUMNS, Action, Row

HEADER = ["sn", "operator", "action_type", "action_message"]
Cells = Sequence[Sequence[object]]

# Hypothesis examples reuse one file in the test's tmp_path; each example overwrites it.
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def write_csv(
    path: Path, rows: Cells, *, encoding: str = "utf-8", header: Sequence[str] = HEADER
) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(
    path: Path,
    rows: Cells,
    *,
    header: Sequence[str] = HEADER,
    sheet: str = "Sheet1",
    extra_sheets: Sequence[str] = (),
) -> Path:
    book = xlsxwriter.Workbook(str(path))
    sheet_obj = book.add_worksheet(sheet)
    sheet_obj.write_row(0, 0, list(header))
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            if isinstance(value, dt.datetime):
                sheet_obj.write_datetime(i, j, value, book.add_format({"num_format": "yyyy-mm-dd"}))
            elif value is not None:
                sheet_obj.write(i, j, value)
    for name in extra_sheets:
        book.add_worksheet(name).write(0, 0, "other")
    book.close()
    return path


def load_one(tmp_path: Path, rows: Cells, *, header: Sequence[str] = HEADER) -> Batch:
    return load_batch(write_csv(tmp_path / "in.csv", rows, header=header))


def input_error(call: Callable[[], object], *fragments: str) -> str:
    """Run ``call``, expect InputError with one line containing every fragment."""
    with pytest.raises(InputError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    return text


# --------------------------------------------------------------------------- valid rows


def test_valid_rows_are_stripped_and_become_rows(tmp_path: Path) -> None:
    """Cells are stripped for sending, echoed untouched in the frame, and Row objects come out."""
    batch = load_one(
        tmp_path,
        [[" NO1 ", " alice ", " SUSPEND ", " why "], ["NO2", "bob", "TERMINATE", "done"]],
    )
    assert len(batch) == 2
    assert batch.fmt == "csv" and batch.sheet is None and batch.encoding == "utf-8"
    assert list(batch.frame.columns) == HEADER
    assert batch.frame.iloc[0].tolist() == [" NO1 ", " alice ", " SUSPEND ", " why "]
    assert batch.columns == {f: f for f in HEADER}
    assert batch.row(0) == Row(0, "NO1", "alice", Action.SUSPEND, "why")
    assert batch.row(1) == Row(1, "NO2", "bob", Action.TERMINATE, "done")
    assert batch.invalid_count() == 0
    assert batch.valid_indices().tolist() == [0, 1]
    assert batch.valid_indices().dtype == np.int64
    assert batch.previous_status is None
    for array in (batch.sn, batch.operator, batch.action, batch.message, batch.invalid):
        assert array.dtype == object and len(array) == 2


def test_row_raises_for_invalid_row(tmp_path: Path) -> None:
    """Batch.row refuses an invalid row, naming its spreadsheet row and the reason."""
    batch = load_one(tmp_path, [["NO1", "", "SUSPEND", "x"], ["NO2", "a", "SUSPEND", "x"]])
    with pytest.raises(ValueError, match=r"row 2 is invalid: operator is blank"):
        batch.row(0)
    assert batch.valid_indices().tolist() == [1]
    assert batch.invalid_count() == 1


def test_leading_zeros_and_numeric_text_are_kept(tmp_path: Path) -> None:
    """Numbers stay text in CSV: leading zeros survive, nothing becomes float or NaN."""
    batch = load_one(
        tmp_path,
        [["000123", "007", "UNSUSPEND", "NaN"], ["0001", "NULL", "UNSUSPEND", "N/A"]],
    )
    assert batch.sn.tolist() == ["000123", "0001"]
    assert batch.operator.tolist() == ["007", "NULL"]
    assert batch.message.tolist() == ["NaN", "N/A"]
    assert batch.frame["sn"].tolist() == ["000123", "0001"]


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


def test_blank_rows_are_dropped(tmp_path: Path) -> None:
    """Rows whose cells are all blank (including whitespace) are not rows at all."""
    batch = load_one(
        tmp_path,
        [
            ["A", "u", "UNSUSPEND", ""],
            ["", "", "", ""],
            [" ", "\t", "", ""],
            ["B", "u", "WITHDRAW"],
        ],
    )
    assert batch.sn.tolist() == ["A", "B"]
    assert len(batch.frame) == 2


def test_unnamed_columns_and_duplicates(tmp_path: Path) -> None:
    """An unnamed empty column goes; an unnamed column with data and a repeated header stay."""
    batch = load_one(
        tmp_path,
        [["A", "u", "UNSUSPEND", "", "x", "n1", "n2", ""]],
        header=[*HEADER, "", "note", "note", ""],
    )
    assert list(batch.frame.columns) == [*HEADER, "Unnamed: 4", "note", "note.1"]
    assert batch.frame.iloc[0].tolist()[4:] == ["x", "n1", "n2"]


# --------------------------------------------------------------------------- invalid rows


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


# --------------------------------------------------------------------------- aliases


@pytest.mark.parametrize(
    ("field", "alias"), [(f, a) for f, aliases in FIELD_ALIASES.items() for a in aliases]
)
def test_every_header_alias(tmp_path: Path, field: str, alias: str) -> None:
    """Each accepted header is found for its field, and the frame keeps the header as written."""
    header = [alias if h == field else h for h in HEADER]
    batch = load_one(tmp_path, [["S1", "op", "SUSPEND", "why"]], header=header)
    assert batch.columns[field] == alias
    assert list(batch.frame.columns) == header
    assert batch.row(0) == Row(0, "S1", "op", Action.SUSPEND, "why")


@pytest.mark.parametrize(
    "header",
    [
        [" SN ", "Operator", "ACTION_TYPE", "Action_Message"],
        ["Ticket SN", "操作人", "Action Type", "MESSAGE"],
        ["ticket-sn", "OPERATOR", "action-type", "原因"],
    ],
)
def test_headers_are_case_and_blank_insensitive(tmp_path: Path, header: list[str]) -> None:
    """Header matching ignores case, surrounding blanks, and inner blanks or hyphens."""
    batch = load_one(tmp_path, [["S1", "op", "SUSPEND", "why"]], header=header)
    assert batch.columns == dict(zip(HEADER, header, strict=True))
    assert batch.row(0) == Row(0, "S1", "op", Action.SUSPEND, "why")


def test_canonical_header_wins_over_alias(tmp_path: Path) -> None:
    """With both `sn` and `ticket`, `sn` is used and `ticket` is kept as an ordinary column."""
    batch = load_one(
        tmp_path,
        [["T9", "S1", "op", "SUSPEND", "why", "memo"]],
        header=["ticket", "sn", "operator", "action_type", "action_message", "备注"],
    )
    assert batch.columns["sn"] == "sn" and batch.columns["action_message"] == "action_message"
    assert batch.sn.tolist() == ["S1"] and batch.message.tolist() == ["why"]
    assert batch.frame["ticket"].tolist() == ["T9"]


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


# --------------------------------------------------------------------------- encodings


CHINESE_ROWS = [["单号001", "张三", "挂起", "客户要求暂停"], ["单号002", "李四", "撤单", ""]]
CHINESE_HEADER = ["单号", "处理人", "操作类型", "备注"]


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("gbk", "gb18030")],
)
def test_encodings_are_detected(tmp_path: Path, encoding: str, reported: str) -> None:
    """UTF-8, UTF-8 with BOM, GB18030 and GBK files read the same; the BOM is not in a header."""
    path = write_csv(tmp_path / "zh.csv", CHINESE_ROWS, encoding=encoding, header=CHINESE_HEADER)
    batch = load_batch(path)
    assert batch.encoding == reported
    assert list(batch.frame.columns) == CHINESE_HEADER
    assert batch.frame.values.tolist() == CHINESE_ROWS
    assert batch.action.tolist() == ["SUSPEND", "WITHDRAW"]


def test_late_gb18030_bytes_fall_back_to_full_reread(tmp_path: Path) -> None:
    """A file that is ASCII for its first 64 KiB and GB18030 later is still read correctly."""
    rows = [[f"NO{i:06d}", "op", "UNSUSPEND", ""] for i in range(4000)]
    rows.append(["NO999999", "张三", "挂起", "原因"])
    path = write_csv(tmp_path / "late.csv", rows, encoding="gb18030")
    assert path.read_bytes()[:65536].isascii()
    batch = load_batch(path)
    assert batch.encoding == "gb18030"
    assert batch.operator[-1] == "张三" and batch.action[-1] == "SUSPEND"


def test_latin1_file_is_refused_with_advice_to_pass_encoding(tmp_path: Path) -> None:
    """A Latin-1 file that GB18030 happens to decode (every accented letter followed by a
    letter) is not quietly read as garbled Chinese: one line asking for --encoding; with
    --encoding cp1252 it reads right."""
    rows = [
        ["NO1", "Müller", "SUSPEND", "réunion reportée demain"],
        ["NO2", "Françoise", "TERMINATE", "déménagement"],
        ["NO3", "Zoëlle", "WITHDRAW", "dossier clôturée"],
    ]
    path = write_csv(tmp_path / "latin.csv", rows, encoding="cp1252")
    assert path.read_bytes().decode("gb18030")  # the trap: it decodes
    input_error(lambda: load_batch(path), "unlikely text", "--encoding cp1252")
    batch = load_batch(path, encoding="cp1252")
    assert batch.operator.tolist() == ["Müller", "Françoise", "Zoëlle"]
    assert batch.message.tolist()[0] == "réunion reportée demain"


def test_chinese_gbk_file_with_a_rare_name_is_still_read(tmp_path: Path) -> None:
    """Real GBK text (mostly common characters, a rare one in a name) is not refused."""
    rows = [
        ["NO1", "王喆", "挂起", "系统维护，暂停处理"],
        ["NO2", "张三", "终止", "重复提交的单据"],
    ]
    path = write_csv(tmp_path / "gbk.csv", rows, header=CHINESE_HEADER, encoding="gbk")
    batch = load_batch(path)
    assert batch.encoding == "gb18030"
    assert batch.operator.tolist() == ["王喆", "张三"]


def test_utf8_character_cut_by_the_sample_is_still_utf8(tmp_path: Path) -> None:
    """A long UTF-8 file whose 64 KiB sample ends inside a character is still UTF-8."""
    for pad in range(3):  # shift the text until byte 65536 falls inside a character
        rows = [["x" * pad, "u", "UNSUSPEND", ""]]
        rows += [[f"单号{i:05d}", "张三", "挂起", "原因"] for i in range(3000)]
        path = write_csv(tmp_path / "long.csv", rows)
        data = path.read_bytes()
        try:
            data[:65536].decode("utf-8")
        except UnicodeDecodeError:
            break
    else:
        pytest.fail("could not place a character across the sample boundary")
    batch = load_batch(path)
    assert batch.encoding == "utf-8" and batch.sn[-1] == "单号02999"


def test_bom_file_with_invalid_utf8_later_is_refused(tmp_path: Path) -> None:
    """A BOM promises UTF-8; a file that breaks that promise is refused, not garbled."""
    path = tmp_path / "mixed.csv"
    body = "sn,operator,action_type\n" + "A,b,SUSPEND\n" * 7000
    path.write_bytes(b"\xef\xbb\xbf" + body.encode() + "张三,b,SUSPEND\n".encode("gbk"))
    input_error(lambda: load_batch(path), "is not UTF-8 or GB18030 text")


def test_encoding_override(tmp_path: Path) -> None:
    """encoding= overrides detection and is reported as given."""
    path = write_csv(tmp_path / "l1.csv", [["NO1", "josé", "SUSPEND", "café"]], encoding="latin-1")
    batch = load_batch(path, encoding="latin-1")
    assert batch.encoding == "latin-1"
    assert batch.operator.tolist() == ["josé"] and batch.message.tolist() == ["café"]


def test_encoding_override_strips_bom(tmp_path: Path) -> None:
    """Reading a BOM file with encoding='utf-8' still leaves no BOM in the first header."""
    path = write_csv(tmp_path / "bom.csv", [["NO1", "u", "SUSPEND", "m"]], encoding="utf-8-sig")
    batch = load_batch(path, encoding="utf-8")
    assert batch.columns["sn"] == "sn"


TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00\ufeff", max_codepoint=0x2FFFF),
    max_size=12,
)


@PROPERTY
@given(
    cells=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=5),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
)
def test_any_text_reads_back_identically_in_each_encoding(
    tmp_path: Path, cells: list[tuple[str, str]], encoding: str
) -> None:
    """Property: any cell text written in a supported encoding reads back unchanged."""
    rows = [["NO1", "op", "UNSUSPEND", a, b] for a, b in cells]
    path = write_csv(tmp_path / "p.csv", rows, encoding=encoding, header=[*HEADER, "x"])
    data = path.read_bytes()
    if encoding == "gb18030":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:  # those bytes are also UTF-8, which is preferred: the file is ambiguous
            assume(all(c.isascii() for row in rows for c in row))
        # Guessed, random characters are "unlikely Chinese" and may be refused; named,
        # the encoding is taken as given.
        batch = load_batch(path, encoding="gb18030")
    else:
        batch = load_batch(path)
    assert batch.frame.values.tolist() == rows


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


SN_CORE = st.text(alphabet=string.ascii_uppercase + string.digits + "-_", min_size=2, max_size=16)


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


# --------------------------------------------------------------------------- xlsx


def test_xlsx_typed_cells_become_text(tmp_path: Path) -> None:
    """Numbers, dates and booleans in a workbook become the text a person sees."""
    path = write_xlsx(
        tmp_path / "t.xlsx",
        [
            ["000123", "alice", "SUSPEND", "why", 12345, 1.5, True],
            [4567, 7, "WITHDRAW", None, 12345.0, dt.datetime(2024, 1, 2), False],
            [123456789012345678, "bob", "SUSPEND", "x", 1e15, None, None],
        ],
        header=[*HEADER, "n", "m", "flag"],
    )
    batch = load_batch(path)
    assert batch.fmt == "xlsx" and batch.sheet == "Sheet1" and batch.encoding is None
    # Excel (and xlsxwriter) keep about 15 significant digits of the 18-digit number.
    big = str(batch.frame["sn"][2])
    assert big.startswith("1.23456789012345") and big.endswith("e+17")
    assert batch.frame.values.tolist() == [
        ["000123", "alice", "SUSPEND", "why", "12345", "1.5", "TRUE"],
        ["4567", "7", "WITHDRAW", "", "12345", "2024-01-02", "FALSE"],
        [big, "bob", "SUSPEND", "x", "1000000000000000.0", "", ""],
    ]
    assert batch.invalid[0] == batch.invalid[1] == ""
    assert batch.invalid[2].startswith(f"sn '{big}' was turned into a number")
    assert batch.message[1] == "batchops: WITHDRAW"


def test_xlsx_trailing_formatted_rows_are_dropped(tmp_path: Path) -> None:
    """Formatted but empty rows and cells after the data are not rows."""
    path = tmp_path / "f.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    bold = book.add_format({"bold": True})
    sheet.write_row(0, 0, HEADER)
    sheet.write_row(1, 0, ["A", "u", "SUSPEND", "m"])
    sheet.write_blank(30, 0, None, bold)
    sheet.write(40, 6, "  ")
    book.close()
    batch = load_batch(path)
    assert len(batch) == 1
    assert list(batch.frame.columns) == HEADER


def test_xlsx_sheet_selection(tmp_path: Path) -> None:
    """The first sheet is read by default; sheet= picks another."""
    path = tmp_path / "two.xlsx"
    book = xlsxwriter.Workbook(str(path))
    for name, sn in (("First", "S1"), ("Second", "S2")):
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, HEADER)
        sheet.write_row(1, 0, [sn, "u", "SUSPEND", "m"])
    book.close()
    assert load_batch(path).sn.tolist() == ["S1"]
    second = load_batch(path, sheet="Second")
    assert second.sn.tolist() == ["S2"] and second.sheet == "Second"


def test_xlsx_hidden_first_sheet_is_skipped(tmp_path: Path) -> None:
    """A hidden first sheet is not taken for the data: the first visible one is."""
    path = tmp_path / "hidden.xlsx"
    book = openpyxl.Workbook()
    hidden = book.active
    hidden.title = "config"
    hidden.append(["nothing"])
    hidden.sheet_state = "hidden"
    data = book.create_sheet("Data")
    data.append(HEADER)
    data.append(["S1", "u", "UNSUSPEND", None])
    book.active = 1
    book.save(path)
    batch = load_batch(path)
    assert batch.sheet == "Data" and batch.sn.tolist() == ["S1"]


def test_xlsm_extension_is_read(tmp_path: Path) -> None:
    """A macro-enabled workbook (.xlsm) is read like .xlsx."""
    xlsx = write_xlsx(tmp_path / "a.xlsx", [["S1", "u", "SUSPEND", "m"]])
    xlsm = tmp_path / "a.XLSM"
    shutil.copy(xlsx, xlsm)
    batch = load_batch(xlsm)
    assert batch.fmt == "xlsx" and batch.sn.tolist() == ["S1"]


@PROPERTY
@given(
    sn=st.text(
        alphabet=string.ascii_letters + string.digits + " -_/#中文单号", min_size=1, max_size=20
    )
)
def test_xlsx_text_sn_round_trips(tmp_path: Path, sn: str) -> None:
    """Property: an sn written as a text cell comes back unchanged from the workbook."""
    assume(sn.strip())
    batch = load_batch(write_xlsx(tmp_path / "p.xlsx", [[sn, "op", "UNSUSPEND", "m"]]))
    assert batch.frame["sn"].tolist() == [sn]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("00123", "00123"),
        (True, "TRUE"),
        (False, "FALSE"),
        (42, "42"),
        (42.0, "42"),
        (-3.0, "-3"),
        (0.25, "0.25"),
        (999999999999999.0, "999999999999999"),
        (1e15, "1000000000000000.0"),
        (1.2345678901234568e17, "1.2345678901234568e+17"),
        (float("nan"), "nan"),
        (dt.datetime(2024, 5, 6, 0, 0), "2024-05-06"),
        (dt.datetime(2024, 5, 6, 7, 8, 9), "2024-05-06T07:08:09"),
        (dt.date(2024, 5, 6), "2024-05-06"),
        (dt.time(7, 8, 9), "07:08:09"),
        (dt.timedelta(hours=30), "1 day, 6:00:00"),
    ],
)
def test_cell_text(value: object, text: str) -> None:
    """Each workbook cell type is converted to the documented text."""
    assert _cell_text(value) == text


# --------------------------------------------------------------------------- report as input


def test_report_as_input_strips_result_columns(tmp_path: Path) -> None:
    """A report's trailing result columns are removed and its statuses kept."""
    rows = [["A", "u", "SUSPEND", "m"], ["B", "u", "UNSUSPEND", ""]]
    original = load_batch(write_csv(tmp_path / "in.csv", rows))
    results = [
        ["success", "0", "ok", "1", "200", "r1", "12.5", "t"],
        ["failed", "3900004", "不在挂起中", "1", "200", "r2", "3.0", "t"],
    ]
    report = write_csv(
        tmp_path / "report.csv",
        [r + s for r, s in zip(rows, results, strict=True)],
        header=[*HEADER, *RESULT_COLUMNS],
    )
    batch = load_batch(report)
    assert list(batch.frame.columns) == HEADER
    assert batch.previous_status is not None
    assert batch.previous_status.tolist() == ["success", "failed"]
    assert batch.message.tolist() == ["m", "batchops: UNSUSPEND"]
    assert batch.fingerprint == original.fingerprint


def test_report_as_input_with_prefixed_result_columns(tmp_path: Path) -> None:
    """Result columns written as result_<name> (name clash) are recognised, case-insensitively;
    the input's own `message` column stays the action_message."""
    header = ["sn", "operator", "action", "message", "Status"]
    result_header = [
        "RESULT_STATUS",
        "code",
        "result_message",
        "attempts",
        "http_status",
        "request_id",
        "elapsed_ms",
        "Finished_At",
    ]
    rows = [
        [
            "A",
            "u",
            "SUSPEND",
            "mine",
            "vip",
            "failed",
            "3900004",
            "closed",
            "1",
            "200",
            "r",
            "1",
            "t",
        ]
    ]
    batch = load_batch(write_csv(tmp_path / "r.csv", rows, header=header + result_header))
    assert list(batch.frame.columns) == header
    assert batch.columns["action_message"] == "message"
    assert batch.message.tolist() == ["mine"]
    assert batch.previous_status is not None and batch.previous_status.tolist() == ["failed"]


def test_report_result_message_is_never_the_action_message(tmp_path: Path) -> None:
    """Without an input message column the report's `message` is not taken for one."""
    header = ["sn", "operator", "action_type", *RESULT_COLUMNS]
    rows = [["A", "u", "SUSPEND", "failed", "3900004", "server said no", "1", "", "", "", ""]]
    batch = load_batch(write_csv(tmp_path / "r.csv", rows, header=header))
    assert "action_message" not in batch.columns
    assert batch.invalid[0].startswith("there is no action_message column")


def test_incomplete_result_columns_are_ordinary_columns(tmp_path: Path) -> None:
    """Result columns not all present, or not last, are left as ordinary columns."""
    header = [*HEADER, *RESULT_COLUMNS[:-1]]
    rows = [["A", "u", "SUSPEND", "m", "ok", "0", "x", "1", "", "", ""]]
    batch = load_batch(write_csv(tmp_path / "r.csv", rows, header=header))
    assert batch.previous_status is None
    assert list(batch.frame.columns) == header

    moved = ["sn", *RESULT_COLUMNS, "operator", "action_type", "action_message"]
    rows = [["A", "ok", "0", "x", "1", "", "", "", "", "u", "SUSPEND", "m"]]
    batch = load_batch(write_csv(tmp_path / "m.csv", rows, header=moved))
    assert batch.previous_status is None and "status" in batch.frame.columns


def test_report_blank_input_rows_align_with_statuses(tmp_path: Path) -> None:
    """Rows dropped as blank take their previous status with them."""
    rows = [
        ["A", "u", "SUSPEND", "m", "success", "0", "", "1", "", "", "", ""],
        ["", "", "", "", "pending", "", "", "", "", "", "", ""],
        ["B", "u", "SUSPEND", "m", "failed", "1", "", "1", "", "", "", ""],
    ]
    batch = load_batch(write_csv(tmp_path / "r.csv", rows, header=[*HEADER, *RESULT_COLUMNS]))
    assert batch.sn.tolist() == ["A", "B"]
    assert batch.previous_status is not None
    assert batch.previous_status.tolist() == ["success", "failed"]


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_across_loads_and_formats(tmp_path: Path) -> None:
    """The same content gives the same fingerprint, whatever the encoding or file format."""
    rows = [["S1", "张三", "SUSPEND", "m"], ["007", "u", "UNSUSPEND", ""]]
    utf8 = load_batch(write_csv(tmp_path / "a.csv", rows))
    again = load_batch(tmp_path / "a.csv")
    gb = load_batch(write_csv(tmp_path / "b.csv", rows, encoding="gb18030"))
    xlsx = load_batch(write_xlsx(tmp_path / "c.xlsx", rows))
    assert len(utf8.fingerprint) == 64 and int(utf8.fingerprint, 16) >= 0
    assert utf8.fingerprint == again.fingerprint == gb.fingerprint == xlsx.fingerprint


@pytest.mark.parametrize(
    ("header", "rows"),
    [
        (HEADER, [["S1", "u", "SUSPEND", "m!"], ["S2", "u", "UNSUSPEND", ""]]),  # one cell
        (HEADER, [["S2", "u", "UNSUSPEND", ""], ["S1", "u", "SUSPEND", "m"]]),  # order
        (
            ["sn", "operator", "action_type", "备注"],
            [["S1", "u", "SUSPEND", "m"], ["S2", "u", "UNSUSPEND", ""]],
        ),
        (HEADER, [["S1", "u", "SUSPEND", "m"], ["S2", "u", "UNSUSPEND", " "]]),  # blank
        (HEADER, [["S1", "uS", "USPEND", "m"], ["S2", "u", "UNSUSPEND", ""]]),  # boundary
        (HEADER, [["S1", "u", "SUSPEND", "m"]]),  # a row fewer
    ],
)
def test_fingerprint_is_sensitive(tmp_path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Any change of header, cell, cell boundary or row order changes the fingerprint."""
    base = load_one(tmp_path, [["S1", "u", "SUSPEND", "m"], ["S2", "u", "UNSUSPEND", ""]])
    other = load_batch(write_csv(tmp_path / "other.csv", rows, header=header))
    assert other.fingerprint != base.fingerprint


# --------------------------------------------------------------------------- file errors


def test_missing_file(tmp_path: Path) -> None:
    """A path that does not exist is an InputError naming it."""
    input_error(lambda: load_batch(tmp_path / "nope.csv"), "nope.csv", "does not exist")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    """A directory named like a CSV file is refused."""
    (tmp_path / "dir.csv").mkdir()
    input_error(lambda: load_batch(tmp_path / "dir.csv"), "is not a file")


@pytest.mark.parametrize("name", ["data.txt", "data.json", "data"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    """Only .csv and Excel extensions are accepted; the message lists them."""
    path = tmp_path / name
    path.write_text("sn,operator,action_type\n")
    input_error(lambda: load_batch(path), ".csv", ".xlsx")


@pytest.mark.parametrize("kind", ["text", "truncated", "foreign-zip", "xls-text"])
def test_corrupt_workbook(tmp_path: Path, kind: str) -> None:
    """A text file renamed .xlsx, a truncated workbook or a non-Excel zip is refused cleanly."""
    if kind == "text":
        path = tmp_path / "bad.xlsx"
        path.write_text("sn,operator\nA,b\n")
    elif kind == "truncated":
        good = write_xlsx(tmp_path / "good.xlsx", [["S1", "u", "SUSPEND", "m"]])
        path = tmp_path / "cut.xlsx"
        path.write_bytes(good.read_bytes()[:400])
    elif kind == "foreign-zip":
        path = tmp_path / "zip.xlsx"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "not a workbook")
    else:
        path = tmp_path / "old.xls"
        path.write_text("just text")
    input_error(
        lambda: load_batch(path), str(path), "is not a readable Excel workbook", "save it again"
    )


def test_workbook_renamed_csv(tmp_path: Path) -> None:
    """An Excel workbook with a .csv name is recognised and the fix is suggested."""
    good = write_xlsx(tmp_path / "good.xlsx", [["S1", "u", "SUSPEND", "m"]])
    path = tmp_path / "really.csv"
    shutil.copy(good, path)
    input_error(lambda: load_batch(path), "Excel workbook", "rename it to .xlsx")


def test_undecodable_text(tmp_path: Path) -> None:
    """Text in neither UTF-8 nor GB18030 (here UTF-16) is refused with the fix."""
    path = tmp_path / "u16.csv"
    path.write_text("sn,operator,action_type\nA,b,SUSPEND\n", encoding="utf-16")
    input_error(
        lambda: load_batch(path),
        "is not UTF-8 or GB18030 text; re-save it as 'CSV UTF-8' or pass --encoding",
    )


def test_override_that_does_not_decode(tmp_path: Path) -> None:
    """An explicit encoding that fails to decode the file is an InputError naming it."""
    path = write_csv(tmp_path / "gb.csv", CHINESE_ROWS, encoding="gbk", header=CHINESE_HEADER)
    input_error(lambda: load_batch(path, encoding="utf-8"), "cannot be decoded as utf-8")


def test_unknown_encoding_name(tmp_path: Path) -> None:
    """An encoding name Python does not know is refused."""
    path = write_csv(tmp_path / "a.csv", [["S1", "u", "SUSPEND", "m"]])
    input_error(lambda: load_batch(path, encoding="klingon"), "unknown encoding 'klingon'")


def test_options_that_do_not_apply(tmp_path: Path) -> None:
    """A sheet for a CSV file or an encoding for a workbook is refused, not ignored."""
    csv_path = write_csv(tmp_path / "a.csv", [["S1", "u", "SUSPEND", "m"]])
    xlsx_path = write_xlsx(tmp_path / "a.xlsx", [["S1", "u", "SUSPEND", "m"]])
    input_error(lambda: load_batch(csv_path, sheet="Sheet1"), "has no sheets")
    input_error(lambda: load_batch(xlsx_path, encoding="utf-8"), "has no text encoding")


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        (
            ["ticket", "who", "action_type"],
            ["operator (accepted headers: operator, 处理人, 操作人)"],
        ),
        (
            ["sn", "user", "verb", "reason"],
            [
                "operator (accepted headers: operator, 处理人, 操作人)",
                "action_type (accepted headers: action_type, action, 操作类型, 操作)",
            ],
        ),
    ],
)
def test_missing_required_column(tmp_path: Path, header: list[str], missing: list[str]) -> None:
    """A missing column is named with its aliases, and the columns found are listed."""
    path = write_csv(tmp_path / "a.csv", [["x"] * len(header)], header=header)
    found = "columns found: " + ", ".join(f"'{h}'" for h in header)
    input_error(lambda: load_batch(path), *missing, found)


def test_missing_columns_hint_for_other_separator(tmp_path: Path) -> None:
    """A semicolon-separated file gets a hint about the separator."""
    path = tmp_path / "semi.csv"
    path.write_text("sn;operator;action_type\nA;b;SUSPEND\n", encoding="utf-8")
    input_error(lambda: load_batch(path), "columns found: 'sn;operator;action_type'", "separator")


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        (
            ["ticket", "单号", "operator", "action_type"],
            "'ticket' (column A) and '单号' (column B)",
        ),
        (["sn", "SN", "operator", "action_type"], "'sn' (column A) and 'SN' (column B)"),
        (
            ["sn", "operator", "action_type", "备注", "原因"],
            "'备注' (column D) and '原因' (column E)",
        ),
    ],
)
def test_two_columns_for_one_field(tmp_path: Path, header: list[str], shown: str) -> None:
    """Two columns mapping to the same field (no canonical one to prefer) are refused."""
    path = write_csv(tmp_path / "a.csv", [["x"] * len(header)], header=header)
    input_error(lambda: load_batch(path), shown, "rename or delete one")


@pytest.mark.parametrize(
    "content", ["", "\n\n", "sn,operator,action_type\n", "sn,operator,action_type\n,,\n , ,\n"]
)
def test_no_data_rows_csv(tmp_path: Path, content: str) -> None:
    """An empty file or a header without data rows is refused."""
    path = tmp_path / "empty.csv"
    path.write_text(content, encoding="utf-8")
    text = input_error(lambda: load_batch(path), str(path))
    assert "is empty" in text or "no data rows" in text


def test_no_data_rows_xlsx(tmp_path: Path) -> None:
    """A workbook with only a header, or an empty sheet, is refused."""
    header_only = write_xlsx(tmp_path / "h.xlsx", [])
    input_error(lambda: load_batch(header_only), "has a header but no data rows")
    empty = tmp_path / "e.xlsx"
    book = xlsxwriter.Workbook(str(empty))
    book.add_worksheet("Blank")
    book.close()
    input_error(lambda: load_batch(empty), "(sheet 'Blank') is empty")


def test_unknown_sheet(tmp_path: Path) -> None:
    """An unknown sheet name is refused with the list of sheets there are."""
    path = write_xlsx(tmp_path / "s.xlsx", [["S1", "u", "SUSPEND", "m"]], extra_sheets=["Notes"])
    input_error(
        lambda: load_batch(path, sheet="Data"), "no sheet named 'Data'", "'Sheet1', 'Notes'"
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (
            "sn,operator,action_type\nA,b,SUSPEND,extra\n",
            "line 2 has 4 fields but the first line has 3",
        ),
        ('sn,operator,action_type\nA,"b,SUSPEND\n', "ends inside a quoted value"),
    ],
)
def test_malformed_csv(tmp_path: Path, content: str, fragment: str) -> None:
    """Malformed CSV gives a one-line error that says where."""
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    input_error(lambda: load_batch(path), fragment)


def test_input_error_has_no_chained_traceback(tmp_path: Path) -> None:
    """Errors from the parsing libraries are not chained onto the InputError."""
    path = tmp_path / "bad.xlsx"
    path.write_text("nope")
    with pytest.raises(InputError) as info:
        load_batch(path)
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --------------------------------------------------------------------------- size


def test_two_hundred_thousand_rows(tmp_path: Path) -> None:
    """A 200k-row CSV loads, validates and flags a repeat deep inside it."""
    n = 200_000
    lines = ["sn,operator,action_type,action_message,extra"]
    lines += [f"NO{i:08d},user{i % 97},SUSPEND,reason {i},x" for i in range(n - 1)]
    lines.append(f"NO{n - 2:08d},user,SUSPEND,again,x")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batch = load_batch(path)
    assert len(batch) == n
    assert batch.sn[0] == "NO00000000" and batch.sn[-1] == f"NO{n - 2:08d}"
    assert batch.invalid_count() == 1
    assert batch.invalid[-1].startswith(f"repeats SUSPEND of row {n} for the same sn")
    assert batch.valid_indices().size == n - 1


# --------------------------------------------------------------------------- row numbers


def test_row_numbers_count_blank_lines_like_a_spreadsheet(tmp_path: Path) -> None:
    """Blank lines before the header and between rows are dropped from the batch but
    counted in row numbers, so 'row 7' in a message is row 7 in Excel."""
    path = tmp_path / "blank.csv"
    path.write_text(
        "\n"  # row 1
        "sn,operator,action_type,action_message\n"  # row 2: the header
        "A1,op,SUSPEND,x\n"  # row 3
        "\n"  # row 4
        "\n"  # row 5
        'B1,op,SUSPEND,"two\nlines"\n'  # row 6 (one row, two lines)
        ",,,\n"  # row 7: blank cells
        "A1,op,SUSPEND,again\n",  # row 8: repeats row 3
        encoding="utf-8",
    )
    batch = load_batch(path)
    assert batch.sn.tolist() == ["A1", "B1", "A1"]
    assert [batch.row_number(i) for i in range(len(batch))] == [3, 6, 8]
    assert "repeats SUSPEND of row 3" in batch.invalid[2]
    with pytest.raises(ValueError, match="row 8 is invalid"):
        batch.row(2)


def test_row_numbers_in_a_workbook_count_empty_rows_above_and_between(tmp_path: Path) -> None:
    """A table that starts on row 3 of its sheet, with an empty row inside: the rows are
    numbered as Excel numbers them."""
    path = tmp_path / "offset.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Sheet1")
    sheet.write_row(2, 1, HEADER)  # B3
    sheet.write_row(3, 1, ["A1", "op", "SUSPEND", "x"])  # row 4
    sheet.write_row(5, 1, ["A1", "op", "SUSPEND", "y"])  # row 6, after an empty row 5
    book.close()
    batch = load_batch(path)
    assert [batch.row_number(i) for i in range(len(batch))] == [4, 6]
    assert "repeats SUSPEND of row 4" in batch.invalid[1]
