"""Tests of batchops.sheet.reading: real CSV and XLSX files read as text (encodings, workbook
cells, sheets) and one-line errors for files that cannot be read."""

from __future__ import annotations

import datetime as dt
import shutil
import string
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from hypothesis import assume, given
from hypothesis import strategies as st

from batchops.errors import InputError
from batchops.sheet.loading import load_batch
from batchops.sheet.reading import cell_text

from ..helpers import HEADER, PROPERTY, input_error, load_one, write_csv, write_xlsx


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


# --------------------------------------------------------------------------- workbooks


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
    assert cell_text(value) == text


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


def test_a_merged_cell_is_the_value_of_every_row_it_covers(tmp_path: Path) -> None:
    """A reason merged over rows 2–4 is theirs; a title merged across the header's row
    and a range's other columns are not filled."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["sn", "operator", "action_type", "原因", "note"])
    for i in range(4):
        sheet.append([f"S{i}", "admin", "SUSPEND", "节前冻结" if i == 0 else None, None])
    sheet.merge_cells("D2:E4")
    sheet.merge_cells("A1:A2")  # begins in the header row: no row's value (S0 is erased)
    path = tmp_path / "m.xlsx"
    book.save(path)
    batch = load_batch(path)
    assert batch.message.tolist() == ["节前冻结", "节前冻结", "节前冻结", ""]
    assert batch.frame["note"].tolist() == ["", "", "", ""]
    assert batch.sn.tolist() == ["", "S1", "S2", "S3"]  # not "sn"
    assert batch.invalid.tolist()[1:3] == ["", ""]


@pytest.mark.parametrize("word", ["合计", "总计", "Total", "小计：", "TOTALS"])
def test_a_total_row_under_the_tickets_is_left_out_not_invalid(tmp_path: Path, word: str) -> None:
    path = write_xlsx(
        tmp_path / "t.xlsx",
        [["S1", "admin", "SUSPEND", "x"], ["S2", "admin", "SUSPEND", "x"], [word, "", "", "2"]],
    )
    batch = load_batch(path)
    assert batch.invalid.tolist() == ["", "", ""]
    assert batch.valid_indices().tolist() == [0, 1]
    assert batch.footer is not None and batch.footer.tolist() == [False, False, True]
    assert batch.left_out_count() == 0  # no row is hidden


def test_a_word_total_in_a_row_with_an_action_is_a_ticket(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "t.xlsx", [["S1", "admin", "SUSPEND", "Total"]])
    batch = load_batch(path)
    assert batch.footer is None and batch.valid_indices().tolist() == [0]
