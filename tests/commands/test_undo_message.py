"""End to end: the reason undo writes into tickets is short text in the user's language,
or the profile's ``undo_message`` (issue 22, part 3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from batchops.sandbox import SandboxThread

from ..helpers import cli, creds_env, read_report, rows_for, run_cli, tickets, write_csv

ZH_MESSAGE = "batchops 撤销 t.report.csv 第 2 行的操作"


def suspended_report(server: SandboxThread, tmp_path: Path) -> Path:
    """A finished run that suspended UM0 and UM1; its report."""
    src = write_csv(tmp_path / "t.csv", rows_for(["UM0", "UM1"]))
    done = cli(server, src)
    assert done.exit_code == 0, done.stdout + done.stderr
    return tmp_path / "t.report.csv"


def undo_messages(tmp_path: Path) -> list[str]:
    return [r["action_message"] for r in read_report(tmp_path / "t.report.undo.csv")]


def test_under_zh_the_undo_reason_is_chinese_and_reaches_the_ticket(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """``undo --lang zh`` writes Chinese reasons; run sends them as they are (the
    request's body, shown by -vv, carries them) and the tickets are resumed."""
    server = stand_in(tickets("UM", 2))
    report = suspended_report(server, tmp_path)
    out = run_cli(["undo", str(report), "--lang", "zh"])
    assert out.exit_code == 0, out.stderr
    assert undo_messages(tmp_path) == [ZH_MESSAGE, "batchops 撤销 t.report.csv 第 3 行的操作"]
    sheet = tmp_path / "t.report.undo.csv"
    done = run_cli(["run", str(sheet), "--yes", "-vv"], creds_env(server.url))
    assert done.exit_code == 0, done.stdout + done.stderr
    assert f'"action_message": "{ZH_MESSAGE}"' in done.stderr
    assert '"action_type": "UNSUSPEND"' in done.stderr  # the machine word stays
    assert {t.status for t in server.state.tickets.values()} == {"RUNNING"}


def test_under_en_the_undo_reason_is_english(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    server = stand_in(tickets("UM", 2))
    report = suspended_report(server, tmp_path)
    env = {"LANG": "zh_CN.UTF-8"}
    assert run_cli(["undo", str(report), "--lang", "en"], env).exit_code == 0
    assert undo_messages(tmp_path)[0] == "batchops undo of row 2 of t.report.csv"
    assert run_cli(["undo", str(report), "--force"], env).exit_code == 0
    assert undo_messages(tmp_path)[0] == ZH_MESSAGE


def test_a_profile_sets_the_undo_reason(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    server = stand_in(tickets("UM", 2))
    report = suspended_report(server, tmp_path)
    config = tmp_path / "ops.toml"
    config.write_text(
        'default_profile = "ops"\n[profiles.ops]\n'
        'undo_message = "变更回退（{file} 第 {row} 行），{{ops}}"\n',
        encoding="utf-8",
    )
    out = run_cli(["undo", str(report), "--lang", "en"], {"BATCHOPS_CONFIG": str(config)})
    assert out.exit_code == 0, out.stderr
    assert undo_messages(tmp_path)[1] == "变更回退（t.report.csv 第 3 行），{ops}"


def test_a_template_with_an_unknown_field_is_refused_before_anything_is_written(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    server = stand_in(tickets("UM", 2))
    report = suspended_report(server, tmp_path)
    config = tmp_path / "ops.toml"
    config.write_text('[profiles.ops]\nundo_message = "undo {sn}"\n', encoding="utf-8")
    out = run_cli(["undo", str(report), "--config", str(config), "--profile", "ops"])
    assert out.exit_code == 2
    assert "undo_message" in out.stderr and "{file}, {row}" in out.stderr
    assert not (tmp_path / "t.report.undo.csv").exists()
