"""The exit-code table: stable numbers, a meaning for each, and every site and text reading it."""

from __future__ import annotations

import pytest

from batchops.commands.select import SelectSummary
from batchops.commands.undo import UndoSummary
from batchops.errors import (
    BatchopsError,
    CheckpointError,
    ConfigError,
    FatalAnswerError,
    InputError,
    RunInProgressError,
)
from batchops.exits import Exit, help_text, meaning_of
from batchops.model import RunSummary, Status
from batchops.run import exit_code_of
from batchops.run.notify import error_message, summary_message
from batchops.stops import Stop, StopKind

from ..helpers import run_cli


def test_the_codes_are_the_stable_ones_schedulers_rely_on() -> None:
    """A scheduler acts on these numbers: none may move, none may be added unnoticed."""
    assert {code.name: code.value for code in Exit} == {
        "OK": 0,
        "ROWS_FAILED": 1,
        "NOTHING_SENT": 2,
        "STOPPED": 3,
        "REPORT_UNWRITTEN": 4,
        "INTERRUPTED": 130,
    }


@pytest.mark.parametrize("code", list(Exit))
def test_every_code_has_a_one_line_meaning_and_a_long_one(code: Exit) -> None:
    """The short meaning fits a help line and a notification (and ``;`` separates codes in
    the help); the long one is the README's."""
    assert code.meaning and "\n" not in code.meaning and ";" not in code.meaning
    assert code.detail and "\n" not in code.detail
    assert meaning_of(int(code)) == code.meaning


def test_a_code_not_in_the_table_points_to_the_help() -> None:
    assert meaning_of(99) == "see batchops --help"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError("x"), Exit.NOTHING_SENT),
        (ConfigError("x"), Exit.NOTHING_SENT),
        (CheckpointError("x"), Exit.NOTHING_SENT),
        (RunInProgressError("x"), Exit.NOTHING_SENT),
        (BatchopsError("x"), Exit.NOTHING_SENT),
        (FatalAnswerError("x"), Exit.STOPPED),
    ],
)
def test_each_error_class_names_its_code_from_the_table(error: BatchopsError, code: Exit) -> None:
    assert error.exit_code is code


@pytest.mark.parametrize("kind", list(StopKind))
def test_a_stop_exits_by_its_kind(kind: StopKind) -> None:
    """Interrupted is 130; every other stop is 3 (resumable), whatever its message."""
    expected = Exit.INTERRUPTED if kind is StopKind.INTERRUPTED else Exit.STOPPED
    assert kind.exit_code is expected
    assert exit_code_of({Status.SUCCESS.value: 5}, Stop(kind, "any words")) is expected


@pytest.mark.parametrize(
    ("counts", "code"),
    [
        ({Status.SUCCESS.value: 3, Status.SKIPPED.value: 1}, Exit.OK),
        ({Status.SUCCESS.value: 3, Status.FAILED.value: 1}, Exit.ROWS_FAILED),
        ({Status.INVALID.value: 1}, Exit.ROWS_FAILED),
        ({Status.UNKNOWN.value: 1}, Exit.ROWS_FAILED),
        ({Status.SUCCESS.value: 3, Status.PENDING.value: 1}, Exit.STOPPED),
    ],
)
def test_a_run_without_a_stop_exits_by_what_is_left(counts: dict[str, int], code: Exit) -> None:
    assert exit_code_of(counts, None) is code


def test_select_and_undo_summaries_exit_by_the_table() -> None:
    """Not confirmed (select) and nothing to undo (undo) are 1; done is 0."""
    selected = dict(matched=1, written=1, path="x.csv", requests=1, pages=1, repeated=0)
    assert SelectSummary(**selected, elapsed_s=0.1).exit_code is Exit.OK
    assert SelectSummary(**selected, elapsed_s=0.1, declined=True).exit_code is Exit.ROWS_FAILED
    for rows, code in [(2, Exit.OK), (0, Exit.ROWS_FAILED)]:
        undo = UndoSummary(rows, 0, "u.csv", "i.csv", {})
        assert undo.exit_code is code


@pytest.mark.parametrize("command", ["run", "plan"])
def test_the_help_lists_every_code_with_its_meaning_from_the_table(command: str) -> None:
    shown = " ".join(run_cli([command, "--help"]).stdout.split())
    assert help_text() in shown
    for code in Exit:
        assert f"{code.value} {code.meaning}" in help_text()


@pytest.mark.parametrize("code", list(Exit))
def test_a_notification_says_what_the_code_means_from_the_table(code: Exit) -> None:
    summary = RunSummary({}, 0, 0, 0.1, None, code)
    _title, body = summary_message(summary, "in.csv")
    assert f"\nexit code: {code.value} ({code.meaning})\n" in body


def test_a_notification_of_an_error_says_its_code_and_meaning() -> None:
    title, body = error_message(FatalAnswerError("app authentication failed"), "in.csv")
    assert "(exit 3)" in title
    assert f"\nexit code: 3 ({Exit.STOPPED.meaning})\n" in body
