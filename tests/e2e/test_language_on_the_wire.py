"""End to end: the language reaches ITSM and comes back in batchops' own words.

Every request batchops sends (operations, the pre-check's and the read-backs' reads,
``select``'s pages) carries ``Blueking-Language`` for the language in use, as BlueKing's
own clients do; what batchops says about the answers (the code table's explanations,
checkpoint refusals, row messages) is in that language too, while ITSM's own words and
the machine words (statuses, codes, option names) stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchops.sandbox import SandboxConfig, SandboxState, SandboxThread, Ticket

from ..helpers import (
    APP_CODE,
    FAST,
    SECRET,
    by_result_name,
    creds_env,
    report_of,
    run_cli,
    running,
    seed,
    write_csv,
)

HEADER = {"zh": "zh-cn", "en": "en"}


def languages_seen(server: SandboxThread) -> dict[str, dict[str, int]]:
    return {api: dict(seen) for api, seen in server.state.stats.languages.items()}


def only(header: str, seen: dict[str, dict[str, int]]) -> bool:
    """Every request of every API carried ``header`` (and at least one was sent)."""
    return bool(seen) and all(set(counts) == {header} for counts in seen.values())


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_request_of_a_run_carries_the_language(
    itsm: SandboxThread, tmp_path: Path, lang: str
) -> None:
    """A run under --lang zh|en: the pre-check's get_tickets, each operate_ticket and the
    UNSUSPEND's read-back get_ticket_status all carry Blueking-Language zh-cn|en."""
    seed(itsm, running("L1"), running("L2", status="SUSPENDED"), running("L3", status="SUSPENDED"))
    src = write_csv(
        tmp_path / "t.csv",
        [
            ["L1", "admin", "SUSPEND", "freeze"],
            ["L2", "admin", "UNSUSPEND", "thaw"],
            ["L3", "admin", "SUSPEND", "freeze"],
        ],
    )
    out = run_cli(["run", str(src), *FAST, "--lang", lang], creds_env(itsm.url))
    assert out.exit_code == 0, out.stderr
    seen = languages_seen(itsm)
    assert {"get_tickets", "operate_ticket", "get_ticket_status"} <= seen.keys(), seen
    assert only(HEADER[lang], seen), seen
    # Machine words stay: the status column, whatever the message's language.
    rows = {r["sn"]: by_result_name(r, lang) for r in report_of(src)}
    assert [rows[sn]["status"] for sn in ("L1", "L2", "L3")] == ["success", "success", "skipped"]
    skipped = rows["L3"]["message"]
    if lang == "zh":
        assert skipped.startswith("跳过：单据已是 SUSPENDED"), skipped
        assert rows["L2"]["message"] == "成功（单据现为 RUNNING）"
    else:
        assert skipped.startswith("skipped: ticket is already SUSPENDED"), skipped
        assert rows["L2"]["message"] == "success (ticket now RUNNING)"


@pytest.fixture
def paged() -> Iterator[SandboxThread]:
    """A stand-in that lists at most 3 tickets a page, holding 7."""
    config = SandboxConfig(app_code=APP_CODE, app_secret=SECRET, max_page_size=3)
    state = SandboxState(config)
    state.seed_tickets(
        Ticket(sn=f"P{i}", status="RUNNING", creator="admin", processors=["admin"])
        for i in range(7)
    )
    with SandboxThread(state) as server:
        yield server


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_of_a_select_carries_the_language(
    paged: SandboxThread, tmp_path: Path, lang: str
) -> None:
    out_path = tmp_path / "s.csv"
    out = run_cli(
        ["select", "--status", "RUNNING", "-o", str(out_path), "--lang", lang],
        creds_env(paged.url),
    )
    assert out.exit_code == 0, out.stderr
    seen = languages_seen(paged)
    assert seen.get("get_tickets", {}).get(HEADER[lang], 0) >= 3, seen  # 7 tickets, 3 a page
    assert only(HEADER[lang], seen), seen


def test_an_edited_done_row_is_refused_in_chinese(itsm: SandboxThread, tmp_path: Path) -> None:
    seed(itsm, running("C1"), running("C2"))
    src = write_csv(tmp_path / "t.csv", [["C1", "admin", "SUSPEND", "x"]])
    first = run_cli(["run", str(src), *FAST, "--lang", "zh"], creds_env(itsm.url))
    assert first.exit_code == 0, first.stderr
    # The done row edited (another action): the run that applied it is refused in Chinese.
    write_csv(src, [["C1", "admin", "TERMINATE", "x"], ["C2", "admin", "SUSPEND", "x"]])
    again = run_cli(["run", str(src), *FAST, "--lang", "zh"], creds_env(itsm.url))
    assert again.exit_code == 2, again.stderr
    assert "第 2 行（单号 'C1'，SUSPEND，success）：操作现在是 TERMINATE" in again.stderr, (
        again.stderr
    )
    assert "--fresh" in again.stderr and "t.checkpoint.db" in again.stderr
    assert "the input changed" not in again.stderr
    assert itsm.state.stats.requests.get("operate_ticket") == 1  # the second run sent nothing


def test_a_code_is_explained_in_chinese_and_itsm_words_pass_through(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A wrong secret under zh: the code table's explanation of 1306000 in Chinese,
    ITSM's own message as it sent it, the row's status and code as ever."""
    seed(itsm, running("W1"))
    src = write_csv(tmp_path / "t.csv", [["W1", "admin", "SUSPEND", "x"]])
    out = run_cli(
        ["run", str(src), *FAST, "--no-precheck", "--lang", "zh"],
        creds_env(itsm.url, secret="wrong-secret"),
    )
    assert out.exit_code == 3, out.stderr
    assert "ESB：应用或用户认证失败：APP认证失败" in out.stderr, out.stderr
    assert "authentication failed" not in out.stderr
    (row,) = [by_result_name(r, "zh") for r in report_of(src)]
    assert row["status"] == "pending" and row["code"] == "1306000"
    assert row["message"].startswith("未完成，本次运行已停止：ESB：应用或用户认证失败"), row
