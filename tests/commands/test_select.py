"""End to end: ``batchops select`` against the stand-in ITSM server over loopback.

One stand-in holds 30,050 tickets whose fields vary independently, so every filter
selects more than 10,000 of them and a select reads several pages of get_tickets.
Each test compares the sheet with the tickets a plain Python filter over the seeded
tickets picks.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pexpect
import pytest

from batchops.commands.select import CONTEXT_COLUMNS, INPUT_COLUMNS, TicketQuery, select_tickets
from batchops.sandbox import SandboxConfig, SandboxState, SandboxThread, Ticket

from ..helpers import APP_CODE, SECRET, creds_env, host_env, read_report, run_cli, running, seed

TICKETS = 30_000
STATUSES = (
    "RUNNING",
    "FINISHED",
    "RUNNING",
    "TERMINATED",
    "SUSPENDED",
    "REVOKED",
    "RUNNING",
    "FINISHED",
    "NEW",
    "FINISHED",
)
FINAL = {"FINISHED", "TERMINATED", "REVOKED"}
START = datetime(2024, 1, 1)
FORMAT = "%Y-%m-%d %H:%M:%S"


def _ticket(i: int) -> Ticket:
    created = START + timedelta(minutes=15 * i)
    status = STATUSES[i % len(STATUSES)]
    return Ticket(
        sn=f"SEL{i:06d}",
        status=status,
        creator=("zhangsan", "lisi")[i % 2],
        processors=["admin"],
        title=f"磁盘告警 {i}",
        service_id=(12, 12, 13, 14, 12)[i % 5],
        bk_biz_id=(2, 3, 2)[i % 3],
        create_at=created.strftime(FORMAT),
        end_at=(created + timedelta(days=1)).strftime(FORMAT) if status in FINAL else None,
        tag="freeze" if i % 4 else "",
        project_key=("ops", "ops", "dev")[i % 3],
    )


def _hidden(i: int) -> Ticket:
    """A draft or deleted ticket that every filter would match if it were listed."""
    ticket = _ticket(i)
    ticket.sn = f"HID{i:06d}"
    ticket.is_draft = i % 2 == 0
    ticket.is_deleted = i % 2 == 1
    return ticket


SEEDED = [_ticket(i) for i in range(TICKETS)]


@pytest.fixture(scope="module")
def big() -> Iterator[SandboxThread]:
    """A stand-in with 30,000 listed tickets and 50 drafts or deleted ones."""
    state = SandboxState(SandboxConfig(app_code=APP_CODE, app_secret=SECRET))
    state.seed_tickets(_ticket(i) for i in range(TICKETS))
    state.seed_tickets(_hidden(i) for i in range(50))
    with SandboxThread(state) as server:
        yield server


def sheet_of(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".csv":
        return read_report(path)
    book = openpyxl.load_workbook(path, read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    header = [str(h) for h in rows[0]]
    return [
        {h: "" if v is None else str(v) for h, v in zip(header, r, strict=True)} for r in rows[1:]
    ]


def expected(keep: Callable[[Ticket], bool]) -> set[str]:
    return {t.sn for t in SEEDED if keep(t)}


def select(server: SandboxThread, out: Path, *args: str) -> tuple[int, str, list[dict[str, str]]]:
    result = run_cli(["select", *args, "-o", str(out), "--limit", "50000"], creds_env(server.url))
    rows = sheet_of(out) if out.exists() else []
    return result.exit_code, result.stdout + result.stderr, rows


def requests_to(server: SandboxThread) -> int:
    return server.state.stats.requests.get("get_tickets", 0)


CASES: list[tuple[list[str], Callable[[Ticket], bool]]] = [
    (["--status", "RUNNING,suspended"], lambda t: t.status in {"RUNNING", "SUSPENDED"}),
    (["--service-id", "12,13"], lambda t: t.service_id in {12, 13}),
    (["--biz-id", "2"], lambda t: t.bk_biz_id == 2),
    (["--creator", "zhangsan"], lambda t: t.creator == "zhangsan"),
    (["--created-after", "2024-03-01"], lambda t: t.create_at >= "2024-03-01 00:00:00"),
    (["--created-before", "2024-09-30"], lambda t: t.create_at <= "2024-09-30 23:59:59"),
    (
        ["--created-after", "2024-02-01 12:00:00", "--created-before", "2024-09-30 08:30:00"],
        lambda t: "2024-02-01 12:00:00" <= t.create_at <= "2024-09-30 08:30:00",
    ),
    (["--ended-after", "2024-02-01"], lambda t: (t.end_at or "") >= "2024-02-01 00:00:00"),
    (["--ended-before", "2024-10-01"], lambda t: "" < (t.end_at or "") <= "2024-10-01 23:59:59"),
    (["--tag", "freeze"], lambda t: t.tag == "freeze"),
    (["--project", "ops"], lambda t: t.project_key == "ops"),
]


@pytest.mark.parametrize(("args", "keep"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_each_filter_selects_exactly_its_tickets_over_several_pages(
    big: SandboxThread, tmp_path: Path, args: list[str], keep: Callable[[Ticket], bool]
) -> None:
    """Every filter selects exactly the tickets it names (more than one page of 10,000),
    each once, never a draft or a deleted ticket."""
    want = expected(keep)
    assert len(want) > 10_000
    before = requests_to(big)
    code, output, rows = select(big, tmp_path / "s.csv", *args)
    assert code == 0, output
    sns = [r["sn"] for r in rows]
    assert len(sns) == len(set(sns))
    assert set(sns) == want
    assert requests_to(big) - before == -(-len(want) // 10_000)
    assert f"{len(want)} tickets selected" in output


def test_filters_combine_and_the_sheet_is_newest_first(big: SandboxThread, tmp_path: Path) -> None:
    """Several filters must all hold; rows come newest first with their context columns."""
    code, output, rows = select(
        big,
        tmp_path / "s.xlsx",
        "--status",
        "RUNNING",
        "--service-id",
        "12",
        "--creator",
        "zhangsan",
        "--created-after",
        "2024-02-01",
    )
    assert code == 0, output
    want = expected(
        lambda t: (
            t.status == "RUNNING"
            and t.service_id == 12
            and t.creator == "zhangsan"
            and t.create_at >= "2024-02-01 00:00:00"
        )
    )
    assert [r["sn"] for r in rows] == sorted(want, reverse=True)
    first = rows[0]
    ticket = next(t for t in SEEDED if t.sn == first["sn"])
    assert list(first) == [*INPUT_COLUMNS, *CONTEXT_COLUMNS]
    assert (first["title"], first["service_id"], first["current_status"]) == (
        ticket.title,
        "12",
        "RUNNING",
    )
    assert (first["creator"], first["create_at"]) == ("zhangsan", ticket.create_at)
    assert first["ticket_url"].startswith(big.url + "/")


def test_sn_file_selects_those_tickets_in_chunks_of_10000(
    big: SandboxThread, tmp_path: Path
) -> None:
    """--sn-file: 12,000 known sns and some unknown ones, sent as two chunks of sns; the
    other filters still apply."""
    chosen = [t.sn for t in SEEDED[:24_000:2]]
    sn_file = tmp_path / "sns.csv"
    sn_file.write_text("单号,note\n" + "".join(f"{sn},x\n" for sn in chosen) + "NOPE1,\n\nNOPE2,\n")
    before = requests_to(big)
    code, output, rows = select(big, tmp_path / "s.csv", "--sn-file", str(sn_file))
    assert code == 0, output
    assert sorted(r["sn"] for r in rows) == sorted(chosen)
    assert requests_to(big) - before == 2

    code, output, rows = select(
        big, tmp_path / "t.csv", "--sn-file", str(sn_file), "--status", "FINISHED"
    )
    assert code == 0, output
    assert {r["sn"] for r in rows} == set(chosen) & expected(lambda t: t.status == "FINISHED")


def test_an_sn_file_without_sns_is_refused(big: SandboxThread, tmp_path: Path) -> None:
    """An empty sns would mean every ticket: a file without any sn stops the select."""
    sn_file = tmp_path / "sns.txt"
    sn_file.write_text("sn\n\n  \n")
    before = requests_to(big)
    code, output, _ = select(big, tmp_path / "s.csv", "--sn-file", str(sn_file))
    assert code == 2
    assert "holds no sn" in output
    assert requests_to(big) == before


def test_a_select_without_a_filter_is_refused(big: SandboxThread, tmp_path: Path) -> None:
    """No filter at all: refused with exit 2 before any request, and nothing written."""
    before = requests_to(big)
    code, output, _ = select(big, tmp_path / "s.csv")
    assert code == 2
    assert "--all" in output
    assert requests_to(big) == before
    assert not (tmp_path / "s.csv").exists()

    code, output, rows = select(big, tmp_path / "all.csv", "--all")
    assert code == 0, output
    assert len(rows) == TICKETS


def test_more_than_limit_is_refused_without_a_terminal(big: SandboxThread, tmp_path: Path) -> None:
    """Over --limit without a terminal: exit 2 after the first page, nothing written; a
    raised --limit writes them."""
    out = tmp_path / "s.csv"
    before = requests_to(big)
    result = run_cli(["select", "--project", "ops", "-o", str(out)], creds_env(big.url))
    assert result.exit_code == 2
    want = len(expected(lambda t: t.project_key == "ops"))
    assert f"{want} tickets match, more than --limit 10000" in result.stderr
    assert f"--limit to {want}" in result.stderr
    assert requests_to(big) - before == 1
    assert not out.exists()
    raised = run_cli(
        ["select", "--project", "ops", "-o", str(out), "--limit", str(want)], creds_env(big.url)
    )
    assert raised.exit_code == 0, raised.stderr
    assert len(sheet_of(out)) == want


def test_more_than_limit_asks_and_a_no_writes_nothing(big: SandboxThread, tmp_path: Path) -> None:
    """With someone to ask, the count is shown and the answer decides."""
    asked: list[tuple[int, int]] = []

    def answer(value: bool) -> Callable[[int, int], bool]:
        def confirm(count: int, limit: int) -> bool:
            asked.append((count, limit))
            return value

        return confirm

    query = TicketQuery(creator="lisi")
    env = creds_env(big.url)
    no = select_tickets(query, output=tmp_path / "no.csv", confirm=answer(False), env=env)
    assert no.declined and no.exit_code == 1 and not (tmp_path / "no.csv").exists()
    yes = select_tickets(query, output=tmp_path / "yes.csv", confirm=answer(True), env=env)
    assert yes.exit_code == 0 and yes.written == TICKETS // 2
    assert asked == [(TICKETS // 2, 10_000)] * 2
    assert len(sheet_of(tmp_path / "yes.csv")) == TICKETS // 2


def test_terminal_select_shows_the_count_and_asks(big: SandboxThread, tmp_path: Path) -> None:
    """On a pseudo-terminal, a select over --limit asks; no writes nothing (exit 1)."""
    env = host_env()
    env.update(creds_env(big.url))
    child = pexpect.spawn(
        sys.executable,
        ["-m", "batchops", "select", "--tag", "freeze", "-o", "s.csv", "--limit", "100"],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=30,
    )
    want = len(expected(lambda t: t.tag == "freeze"))
    child.expect(f"{want} tickets match, more than --limit 100. Write all {want} rows")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert not (tmp_path / "s.csv").exists()


def test_tickets_created_while_paging_are_kept_once(
    itsm: SandboxThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New tickets push items onto the next page, which repeats them: each ticket is
    written once, and every ticket that matched from the start is there."""
    itsm.call(lambda: itsm.state.generate_tickets("OLD", 25_000))
    state = itsm.state
    count_request = state._count_request
    pages = []

    def create_while_paging(api: str) -> None:
        count_request(api)
        if api == "get_tickets":
            pages.append(api)
            if len(pages) == 2:  # between the first and the second page
                state.generate_tickets("NEW", 700)

    monkeypatch.setattr(state, "_count_request", create_while_paging)
    code, output, rows = select(itsm, tmp_path / "s.csv", "--status", "RUNNING")
    assert code == 0, output
    sns = [r["sn"] for r in rows]
    assert len(sns) == len(set(sns)) == 25_000
    assert {f"OLD{i:07d}" for i in range(1, 25_001)} == set(sns)
    assert "700 tickets came twice" in output


def test_selected_sheet_runs_unchanged(itsm: SandboxThread, tmp_path: Path) -> None:
    """The sheet select writes is ordinary input: run sends it as it is, and its context
    columns come back in the report."""
    seed(itsm, running("A1"), running("A2"), running("A3", status="SUSPENDED"))
    seed(itsm, Ticket("B1", "RUNNING", "lisi", ["lisi"]))
    for suffix in (".csv", ".xlsx"):
        sheet = tmp_path / f"freeze{suffix}"
        out = run_cli(
            [
                "select",
                "--creator",
                "admin",
                "--status",
                "RUNNING",
                "--action",
                "挂起",
                "--operator",
                "admin",
                "--message",
                "holiday freeze",
                "-o",
                str(sheet),
            ],
            creds_env(itsm.url),
        )
        assert out.exit_code == 0, out.stderr
        rows = sheet_of(sheet)
        assert [(r["sn"], r["operator"], r["action_type"], r["action_message"]) for r in rows] == [
            ("A2", "admin", "SUSPEND", "holiday freeze"),
            ("A1", "admin", "SUSPEND", "holiday freeze"),
        ]
    done = run_cli(["run", str(tmp_path / "freeze.csv")], creds_env(itsm.url))
    assert done.exit_code == 0, done.stdout + done.stderr
    report = read_report(tmp_path / "freeze.report.csv")
    assert [(r["sn"], r["status"], r["current_status"]) for r in report] == [
        ("A2", "success", "RUNNING"),
        ("A1", "success", "RUNNING"),
    ]
    assert {sn: itsm.state.tickets[sn].status for sn in ("A1", "A2", "A3", "B1")} == {
        "A1": "SUSPENDED",
        "A2": "SUSPENDED",
        "A3": "SUSPENDED",
        "B1": "RUNNING",
    }


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--created-after", "01/02/2024"], "--created-after takes a date"),
        (["--service-id", "12;13"], "--service-id takes ids"),
        (["--creator", "x", "--action", "EXPLODE"], "--action takes SUSPEND, UNSUSPEND, WITHDRAW"),
        (
            ["--creator", "x", "--action", "关单"],
            "--action takes SUSPEND, UNSUSPEND",
        ),  # not guessed
        (["--creator", "x", "--action", "TERMINATE"], "needs --message"),
        (["--creator", "x", "--message", "m" * 256], "at most 255"),
        (
            ["--created-after", "2024-05-01", "--created-before", "2024-04-01"],
            "no ticket can match",
        ),
    ],
)
def test_bad_options_are_refused_before_any_request(
    big: SandboxThread, tmp_path: Path, args: list[str], needle: str
) -> None:
    """Options that cannot make a usable sheet stop with exit 2 and say why."""
    before = requests_to(big)
    code, output, _ = select(big, tmp_path / "s.csv", *args)
    assert code == 2
    assert needle in output
    assert requests_to(big) == before


def test_select_honours_the_wrong_secret_and_writes_nothing(
    big: SandboxThread, tmp_path: Path
) -> None:
    """A refused credential stops the select (exit 3) without a sheet and without the secret
    in what is shown."""
    env = creds_env(big.url, secret="wrong-secret-value")
    result = run_cli(["select", "--creator", "lisi", "-o", str(tmp_path / "s.csv")], env)
    assert result.exit_code == 3
    assert "get_tickets failed" in result.stderr
    assert "wrong-secret-value" not in result.stdout + result.stderr
    assert not (tmp_path / "s.csv").exists()


def test_csv_sheet_is_excel_safe(itsm: SandboxThread, tmp_path: Path) -> None:
    """A title that looks like a formula is quoted in CSV and stays text in XLSX."""
    seed(itsm, Ticket("F1", "RUNNING", "admin", ["admin"], title="=HYPERLINK(1)"))
    run_cli(["select", "--creator", "admin", "-o", str(tmp_path / "s.csv")], creds_env(itsm.url))
    with (tmp_path / "s.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["title"] == "'=HYPERLINK(1)"
    run_cli(["select", "--creator", "admin", "-o", str(tmp_path / "s.xlsx")], creds_env(itsm.url))
    book = openpyxl.load_workbook(tmp_path / "s.xlsx")
    cell = book.worksheets[0]["E2"]
    assert (cell.value, cell.data_type) == ("=HYPERLINK(1)", "s")
