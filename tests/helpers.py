"""Helpers shared by the tests: data, the CLI in-process, a loopback HTTP server.

Fixtures are in ``conftest.py``; test modules import these by name.
"""

from __future__ import annotations

import asyncio
import csv
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from click.testing import CliRunner, Result

from batchops.checkpoint.machine import LOCK_DIR_ENV
from batchops.checkpoint.store import Binding, Checkpoint, row_key
from batchops.cli.main import main
from batchops.sandbox import SandboxThread, Ticket

APP_CODE = "batchops-sandbox"
#: A secret distinctive enough that finding it anywhere proves a leak.
SECRET = "s3cr3t-Value-that-must-never-leak-7f1c"
HEADER = ["sn", "operator", "action_type", "action_message"]


def creds_env(url: str, *, secret: str = SECRET, **extra: str) -> dict[str, str]:
    """The environment a real user would set for a run against ``url``."""
    env = {
        "BATCHOPS_BASE_URL": url,
        "BK_APP_CODE": APP_CODE,
        "BK_APP_SECRET": secret,
        "BK_USERNAME": "admin",
    }
    env.update(extra)
    return env


def host_env() -> dict[str, str]:
    """This process's environment for a child batchops: none of the developer's
    credentials or settings (``BK_*``, ``BATCHOPS_*``), but the test's own machine-wide
    lock folder (set by conftest's ``clean_env``), so a child never meets the locks and
    in-flight records of the machine or of another test."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BK_", "BATCHOPS_")) or k == LOCK_DIR_ENV
    }


def queued_checkpoint(
    path: Path, rows: int, *, base_url: str = "http://itsm", input_path: str = "/t.csv"
) -> Checkpoint:
    """An open checkpoint of ``rows`` queued SUSPEND rows (``SN0`` …, by admin) bound to
    ``input_path`` and ``base_url``, with a run begun (its note "first run")."""
    store = Checkpoint.open(path)
    store.initialise(
        Binding("f" * 64, rows, "esb", base_url, input_path),
        (
            (
                i,
                row_key(f"SN{i}", "SUSPEND", "admin", "m"),
                f"SN{i}",
                "SUSPEND",
                "queued",
                "pending",
                "",
            )
            for i in range(rows)
        ),
    )
    store.begin_run("first run")
    return store


def write_csv(
    path: Path,
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = HEADER,
    encoding: str = "utf-8",
) -> Path:
    """Write a CSV input file."""
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    """A CSV report as dicts (UTF-8 with BOM, as batchops writes it)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def seed(server: SandboxThread, *tickets: Ticket) -> None:
    """Create tickets on the running stand-in."""
    server.call(lambda: server.state.seed_tickets(tickets))


def running(sn: str, processor: str = "admin", status: str = "RUNNING") -> Ticket:
    """A ticket created and processed by ``processor``."""
    return Ticket(sn=sn, status=status, creator=processor, processors=[processor])


@dataclass
class CliRun:
    """What one CLI invocation did."""

    exit_code: int
    stdout: str
    stderr: str
    result: Result


def run_cli(
    args: Sequence[str], env: dict[str, str] | None = None, input_text: str | None = None
) -> CliRun:
    """Invoke the real CLI entry point in-process (stdin is not a terminal)."""
    runner = CliRunner()
    result = runner.invoke(main, list(args), env=env, input=input_text, catch_exceptions=False)
    return CliRun(result.exit_code, result.stdout, result.stderr, result)


# Small timings everywhere: no read-back delay, short hangs.
FAST = ["--readback-delay", "0", "--yes"]


def ticket(sn: str, status: str = "RUNNING", previous: str | None = None) -> Ticket:
    """A ticket created and processed by admin."""
    return Ticket(
        sn=sn, status=status, creator="admin", processors=["admin"], previous_status=previous
    )


def tickets(prefix: str, count: int, status: str = "RUNNING") -> list[Ticket]:
    """``count`` tickets ``prefix0`` … processed by admin."""
    return [ticket(f"{prefix}{i}", status) for i in range(count)]


def rows_for(sns: Sequence[str], action: str = "SUSPEND") -> list[list[str]]:
    """One row per sn, all with the same action."""
    return [[sn, "admin", action, "batch"] for sn in sns]


def cli(server: SandboxThread, src: Path, *args: str, **env: str) -> CliRun:
    """The real CLI against ``server``."""
    return run_cli(["run", str(src), *FAST, *args], creds_env(server.url, **env))


def report_of(src: Path) -> list[dict[str, str]]:
    """The CSV report written beside ``src``."""
    return read_report(src.with_name(src.stem + ".report.csv"))


def total_requests(server: SandboxThread) -> int:
    """Every request the stand-in answered, reads and operations alike."""
    return sum(server.state.stats.requests.values())


def applied_suspends(server: SandboxThread) -> Counter[str]:
    """How many SUSPENDs the server applied, per sn."""
    return Counter(
        op.sn for op in server.state.stats.operations if op.action == "SUSPEND" and op.applied
    )


class LoopbackServer:
    """A hand-written HTTP server on 127.0.0.1 in a thread, for answers no stand-in gives.

    ``handler`` receives every request; ``requests`` records (method, path, headers,
    body) of each, so a test can prove what reached this host and what did not.
    """

    def __init__(self, handler: Callable[[web.Request, bytes], Any]) -> None:
        self._handler = handler
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, dict(request.headers), body))
        answer = self._handler(request, body)
        if asyncio.iscoroutine(answer):
            answer = await answer
        assert isinstance(answer, web.StreamResponse)
        return answer

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def envelope(
    code: int = 0, message: str = "success", data: Any = None, **extra: Any
) -> web.Response:
    """An ITSM JSON answer."""
    payload = {"result": code == 0, "code": code, "message": message, "data": data, **extra}
    return web.json_response(payload)


# --------------------------------------------------------------------------- input files
# For the tests of loading (loader, inputfile, columns, validation). Their imports are
# local so that this block stays one addition at the end of the file.

#: A row of input cells (a workbook's may be numbers, dates, booleans or None).
Cells = Sequence[Sequence[object]]


def _property_settings() -> Any:
    from hypothesis import HealthCheck, settings

    # Hypothesis examples reuse one file in the test's tmp_path; each example overwrites it.
    return settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


#: Settings for property tests that write their input file in ``tmp_path``.
PROPERTY = _property_settings()


def write_xlsx(
    path: Path,
    rows: Cells,
    *,
    header: Sequence[str] = HEADER,
    sheet: str = "Sheet1",
    extra_sheets: Sequence[str] = (),
) -> Path:
    """Write a workbook input file; dates get a date format, None leaves a cell empty."""
    import datetime as dt

    import xlsxwriter

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


def load_one(tmp_path: Path, rows: Cells, *, header: Sequence[str] = HEADER) -> Any:
    """The :class:`batchops.sheet.loading.Batch` of a CSV input of these rows."""
    from batchops.sheet.loading import load_batch

    return load_batch(write_csv(tmp_path / "in.csv", rows, header=header))


def input_error(call: Callable[[], object], *fragments: str) -> str:
    """Run ``call``, expect InputError with one line containing every fragment."""
    import pytest

    from batchops.errors import InputError

    with pytest.raises(InputError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    return text


def xlsx_with_hidden_rows(
    path: Path,
    rows: Cells,
    *,
    hidden: Sequence[int] = (),
    keep_only: tuple[int, Sequence[str]] | None = None,
    header: Sequence[str] = HEADER,
    sheet: str = "Tickets",
) -> Path:
    """A workbook saved by openpyxl with rows hidden as Excel stores them.

    ``hidden`` are data rows (0-based) hidden by hand. ``keep_only=(column, values)`` puts
    an autofilter on the table that keeps the rows whose cell in ``column`` (0-based) is
    one of ``values``: the others are filtered out, which Excel saves as hidden rows.
    """
    import openpyxl

    book = openpyxl.Workbook()
    table = book.active
    assert table is not None
    table.title = sheet
    table.append(list(header))
    for row in rows:
        table.append(list(row))
    for index in hidden:
        table.row_dimensions[index + 2].hidden = True
    if keep_only is not None:
        column, values = keep_only
        table.auto_filter.ref = f"A1:{chr(ord('A') + len(header) - 1)}{len(rows) + 1}"
        table.auto_filter.add_filter_column(column, list(values))
        for index, row in enumerate(rows):
            if str(row[column]) not in values:
                table.row_dimensions[index + 2].hidden = True
    book.save(path)
    return path


def by_result_name(row: dict[str, str], lang: str) -> dict[str, str]:
    """A report row with its result columns under their canonical names (``status``,
    ``code`` …): a report names them in its language for people (状态 under zh); the
    values are machine words either way."""
    from batchops.model import RESULT_COLUMNS, RESULT_HEADERS

    names = dict(zip(RESULT_HEADERS[lang], RESULT_COLUMNS, strict=True))
    return {names.get(key, key): value for key, value in row.items()}
