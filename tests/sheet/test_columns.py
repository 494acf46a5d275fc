"""Tests of batchops.sheet.columns: headers and their aliases, blank rows and unnamed columns,
an earlier report used as input (and known by its header alone), and missing or doubled
columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchops.i18n import using
from batchops.model import RESULT_COLUMNS, Action, Row
from batchops.sheet.columns import FIELD_ALIASES, is_report
from batchops.sheet.loading import load_batch

from ..helpers import HEADER, input_error, load_one, write_csv


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


# --------------------------------------------------------------------------- is_report


def _report(path: Path, columns: dict[str, list[str]]) -> Path:
    """A report as a run writes it, of an input with these columns."""
    from batchops.report.writing import write_report

    from ..report_sheets import make_frame, make_outcomes, ok

    frame = make_frame(columns)
    outcomes = make_outcomes([ok()] * len(frame))
    return Path(write_report(frame, outcomes, path, sheet_name="Tickets"))


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_report_is_known_by_its_header_alone(tmp_path: Path, suffix: str) -> None:
    """A run's report (CSV with its BOM, or a workbook) ends in the result columns, also
    when an input column already had a result column's name; the input it came from does
    not."""
    plain = {name: ["A1"] for name in HEADER}
    assert is_report(_report(tmp_path / f"done{suffix}", plain))
    clashing = {**plain, "status": ["RUNNING"]}  # the report calls its own "result_status"
    assert is_report(_report(tmp_path / f"clash{suffix}", clashing))
    assert not is_report(write_csv(tmp_path / "input.csv", [["A1", "admin", "SUSPEND", "x"]]))


def test_the_header_is_read_past_blank_lines_and_in_gb18030(tmp_path: Path) -> None:
    """Blank lines above the header are skipped, as loading does; GB18030 text is read."""
    header = ",".join(["单号", "处理人", "操作", "原因", *RESULT_COLUMNS])
    path = tmp_path / "gbk.csv"
    path.write_bytes(
        b"\r\n\r\n" + (header + "\r\nA1,张三,SUSPEND,冻结," + "," * 7).encode("gb18030")
    )
    assert is_report(path)


def test_a_large_report_is_known_from_its_first_bytes(tmp_path: Path) -> None:
    """Only the header is read: a report far larger than the sample is still known."""
    path = tmp_path / "big.csv"
    row = ",".join(["A1", "admin", "SUSPEND", "x" * 200, "success", "0", "ok", "1"]) + ",,,,\n"
    path.write_text(",".join([*HEADER, *RESULT_COLUMNS]) + "\n" + row * 2000, encoding="utf-8")
    assert path.stat().st_size > 1 << 16
    assert is_report(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.csv", b""),
        ("blank.csv", b"\n\n,,,\n"),
        ("only_results.csv", ",".join(RESULT_COLUMNS).encode()),  # no input column
        ("zip.csv", b"PK\x03\x04 not really a zip"),
        ("broken.xlsx", b"not a workbook"),
        ("report.txt", ",".join([*HEADER, *RESULT_COLUMNS]).encode()),
    ],
)
def test_anything_else_is_no_report(tmp_path: Path, name: str, content: bytes) -> None:
    """Files that are no sheet, or no report's sheet, are not reports (and never raise)."""
    path = tmp_path / name
    path.write_bytes(content)
    assert not is_report(path)
    assert not is_report(tmp_path / "missing.csv")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_report_written_in_either_language_is_known_in_either(
    tmp_path: Path, suffix: str
) -> None:
    """A report written under zh (its result headers 状态, 返回码 …, 结果_状态 on a clash)
    is a report under en, and the reverse; read back, its result columns are the
    program's names whatever language wrote them."""
    plain = {name: ["A1"] for name in ["工单号", "处理人", "操作类型", "原因"]}
    clashing = {**plain, "状态": ["处理中"]}  # the report calls its own "结果_状态"
    for written, read in (("zh", "en"), ("en", "zh")):
        with using(written):
            done = _report(tmp_path / f"{written}{suffix}", plain)
            clash = _report(tmp_path / f"{written}-clash{suffix}", clashing)
        with using(read):
            assert is_report(done) and is_report(clash)
            batch = load_batch(clash, include_hidden=True)
        assert batch.previous_results is not None
        assert list(batch.previous_results.columns) == list(RESULT_COLUMNS)
        assert batch.previous_results["status"].tolist() == ["success"]
        assert "状态" in batch.frame.columns  # the input's own column stays


def test_result_headers_mixing_languages_and_prefixes_are_known(tmp_path: Path) -> None:
    """Each result header may be in either language, with either prefix, full width or
    padded: a person who renamed one column by hand still has a report."""
    mixed = ["状态", "code", " 结果说明 ", "attempts", "ＨＴＴＰ状态码", "result_请求ID"]
    mixed += ["耗时（毫秒）", "结果_result_finished_at"]
    path = write_csv(
        tmp_path / "mixed.csv",
        [["A1", "admin", "SUSPEND", "x", "failed", *[""] * 7]],
        header=[*HEADER, *mixed],
    )
    assert is_report(path)
    assert load_batch(path).previous_results is not None


def test_full_width_headers_are_plain_ones(tmp_path: Path) -> None:
    """A header typed with a Chinese input method (ｓｎ, full-width space) is found."""
    batch = load_one(
        tmp_path,
        [["A1", "u", "SUSPEND", "m"]],
        header=["ｓｎ", "\u3000处理人", "ＡＣＴＩＯＮ", "原因"],
    )
    assert batch.sn.tolist() == ["A1"] and batch.action.tolist() == ["SUSPEND"]
