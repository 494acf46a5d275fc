"""``select`` reads every page ITSM says there is, whatever page size it answers with,
and stops at once at a signal: against a stand-in that pages by 100 over loopback."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchops.commands.pages import Page
from batchops.sandbox import SandboxConfig, SandboxState, SandboxThread

from ..children import _child_env, _spawn, _wait_until
from ..helpers import APP_CODE, SECRET, creds_env, read_report, run_cli, tickets


@pytest.fixture
def by_100() -> Iterator[SandboxThread]:
    """A stand-in whose get_tickets puts at most 100 items on a page, with 350 tickets."""
    config = SandboxConfig(app_code=APP_CODE, app_secret=SECRET, max_page_size=100)
    state = SandboxState(config)
    state.seed_tickets(tickets("PG", 350))
    with SandboxThread(state) as server:
        yield server


def _pages_asked(server: SandboxThread) -> int:
    return server.state.stats.requests.get("get_tickets", 0)


def test_every_page_is_read_when_itsm_pages_by_100(by_100: SandboxThread, tmp_path: Path) -> None:
    """select asks for 10,000 a page; ITSM answers 100 a page, 4 pages: all 350 listed."""
    out = tmp_path / "s.csv"
    result = run_cli(["select", "--status", "RUNNING", "-o", str(out)], creds_env(by_100.url))
    assert result.exit_code == 0, result.stdout + result.stderr
    sns = [row["sn"] for row in read_report(out)]
    assert len(sns) == len(set(sns)) == 350
    assert set(sns) == {f"PG{i}" for i in range(350)}
    assert "350 tickets selected" in result.stdout
    assert _pages_asked(by_100) == 4
    assert "moved" not in result.stderr


def test_a_count_that_moved_while_paging_is_said_on_stderr(
    by_100: SandboxThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 tickets created between pages 1 and 2 push 30 listed ones onto page 2: each
    ticket of the first count is written once, and stderr says the count moved."""
    state = by_100.state
    count_request = state._count_request

    def create_while_paging(api: str) -> None:
        count_request(api)
        if api == "get_tickets" and _pages_asked(by_100) == 2:
            state.seed_tickets(tickets("NEW", 30))

    monkeypatch.setattr(state, "_count_request", create_while_paging)
    out = tmp_path / "s.csv"
    result = run_cli(["select", "--status", "RUNNING", "-o", str(out)], creds_env(by_100.url))
    assert result.exit_code == 0, result.stdout + result.stderr
    sns = [row["sn"] for row in read_report(out)]
    assert len(sns) == len(set(sns))
    assert {f"PG{i}" for i in range(350)} <= set(sns)
    assert "moved from 350 to 380" in result.stderr
    assert "30 tickets came twice" in result.stdout


def test_sigterm_ends_a_select_at_once_and_writes_nothing(
    by_100: SandboxThread, tmp_path: Path, no_child_left_behind: None
) -> None:
    """Under --rate 0.05 page 2 waits 20 s for its turn: SIGTERM ends the wait, exit 130
    within 5 s, no further page asked, no sheet written."""
    out = tmp_path / "s.csv"
    args = ["select", "--status", "RUNNING", "-o", str(out), "--rate", "0.05"]
    proc = _spawn(args, _child_env(tmp_path, by_100.url), tmp_path)
    _wait_until("page 1 was asked", lambda: _pages_asked(by_100) >= 1, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    try:
        out_text, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("select still running 5 s after SIGTERM")
    assert proc.returncode == 130, out_text + err
    assert "interrupted by SIGTERM" in err and "nothing was written" in err
    assert _pages_asked(by_100) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("total_page", "count", "page", "listed", "more"),
    [
        (4, 350, 1, 100, True),
        (4, 350, 4, 350, False),
        # total_page, when given, is never read past (a page out of range may be an error)
        (4, 380, 4, 350, False),
        # without total_page, the count says
        (None, 350, 1, 100, True),
        (None, 350, 4, 350, False),
    ],
)
def test_a_page_says_whether_there_is_more(
    total_page: int | None, count: int, page: int, listed: int, more: bool
) -> None:
    assert Page([{"sn": "X"}], count, total_page).more(page, listed) is more


def test_an_empty_page_ends_the_listing() -> None:
    assert Page([], 350, 4).more(1, 0) is False
