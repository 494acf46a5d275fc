"""End to end: ``select --status`` takes ITSM's own status names, and refuses what it
does not know before any request (issue 22, part 6)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchops.sandbox import SandboxThread, Ticket

from ..helpers import creds_env, read_report, run_cli, ticket, total_requests

STATUSES = ("NEW", "RUNNING", "SUSPENDED", "FINISHED", "TERMINATED", "REVOKED")


@pytest.fixture
def server(stand_in: Callable[..., SandboxThread]) -> SandboxThread:
    """Two tickets in each status."""
    seeded: list[Ticket] = [ticket(f"{s[:3]}{i}", s) for s in STATUSES for i in range(2)]
    return stand_in(seeded)


def select(server: SandboxThread, out: Path, *args: str) -> tuple[int, str]:
    result = run_cli(["select", *args, "-o", str(out)], creds_env(server.url))
    return result.exit_code, result.stdout + result.stderr


def test_itsm_names_select_what_the_code_selects(server: SandboxThread, tmp_path: Path) -> None:
    """``处理中`` writes the same sheet as ``RUNNING`` and ``running``."""
    sheets = []
    for word in ("RUNNING", "running", "处理中", "ＲＵＮＮＩＮＧ"):
        out = tmp_path / f"{len(sheets)}.csv"
        code, said = select(server, out, "--status", word)
        assert code == 0, said
        sheets.append(read_report(out))
    assert [row["sn"] for row in sheets[0]] == ["RUN1", "RUN0"]
    assert all(sheet == sheets[0] for sheet in sheets)


@pytest.mark.parametrize(
    ("words", "codes"),
    [
        ("已结束", {"FINISHED"}),
        ("已完成", {"FINISHED"}),
        ("被终止,已终止", {"TERMINATED"}),
        ("已撤单，已撤销", {"REVOKED"}),
        ("新, 挂起", {"NEW", "SUSPENDED"}),
    ],
)
def test_every_name_itsm_and_blueking_show_is_understood(
    server: SandboxThread, tmp_path: Path, words: str, codes: set[str]
) -> None:
    out = tmp_path / "s.csv"
    code, said = select(server, out, "--status", words)
    assert code == 0, said
    assert {row["current_status"] for row in read_report(out)} == codes


@pytest.mark.parametrize(
    ("word", "closest"), [("RUNNNING", "did you mean RUNNING?"), ("DONE", "fix it")]
)
def test_an_unknown_status_is_refused_before_any_request(
    server: SandboxThread, tmp_path: Path, word: str, closest: str
) -> None:
    """A typo is exit 2 naming the valid values (and the one meant), nothing written and
    nothing asked of ITSM: never an empty sheet that looks like an answer."""
    out = tmp_path / "s.csv"
    before = total_requests(server)
    result = run_cli(
        ["select", "--status", f"RUNNING,{word}", "-o", str(out)], creds_env(server.url)
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--status takes NEW, RUNNING, RESOLVED, CONFIRMED, SUSPENDED" in lines[0]
    assert "处理中" in lines[0]
    assert f"not '{word}'" in lines[0]
    assert closest in lines[0]
    assert result.stdout == ""
    assert not out.exists()
    assert total_requests(server) == before


def test_the_refusal_speaks_chinese_under_zh(server: SandboxThread, tmp_path: Path) -> None:
    """Under zh the sentence is Chinese; the codes and the option stay as they are."""
    out = tmp_path / "s.csv"
    result = run_cli(
        ["select", "--lang", "zh", "--status", "RUNNNING", "-o", str(out)],
        creds_env(server.url),
    )
    assert result.exit_code == 2
    assert "--status 只接受" in result.stderr
    assert "RUNNING" in result.stderr
    assert not out.exists()
