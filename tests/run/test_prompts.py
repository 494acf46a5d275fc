"""What a person is shown and asked (:mod:`batchops.run.prompts`): the advice after a run
with the exact command that finishes the work, the fix for a refused credential, the
plan before sending, the canary's outcome, and a question Ctrl-C answers "no".
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

import pytest

from batchops.itsm import Answer, Verdict
from batchops.model import Outcome, Status
from batchops.run.prompts import Advice, CanaryReport, CanaryRow, ask, fatal_fix, plan_overview
from batchops.send import Precheck
from batchops.settings import Credentials, resolve
from batchops.stops import Stop, StopKind

from ..helpers import load_one

COMMAND = ["batchops", "run", "t.csv", "--fresh", "-c", "5"]
ENV = {"BK_APP_CODE": "ops-app", "BK_APP_SECRET": "s3cret", "BK_USERNAME": "admin"}
FAILURES = [
    ("no permission", 4, "S1"),
    ("not found", 2, "S7"),
    ("bad state", 1, "S9"),
    ("x", 1, ""),
]


def _advice(
    command: list[str] | None = COMMAND, *, checkpointed: bool = True, **paths: Path
) -> Advice:
    return Advice(command, resolve({}, env=ENV), ENV, checkpointed=checkpointed, **paths)


def _counts(**counts: int) -> dict[str, int]:
    return {s.value: counts.get(s.value, 0) for s in Status}


def test_nothing_left_to_do_when_every_row_is_done() -> None:
    """No pending, failed or unknown row and no stop: nothing to advise."""
    assert _advice().next_step(_counts(success=5, skipped=2), None, []) == "nothing left to do"


@pytest.mark.parametrize("kind", list(StopKind), ids=[k.value for k in StopKind])
def test_after_any_stop_the_fix_comes_first_then_the_same_command_without_fresh(
    kind: StopKind,
) -> None:
    """Whatever stopped the run: its fix first, then the command that continues, which is
    the command given less --fresh (that would start over)."""
    stop = Stop(kind, "why", fix="do this")
    lines = _advice().next_step(_counts(success=1, pending=3), stop, []).splitlines()
    assert lines == [
        "fix this first: do this",
        "to continue (3 rows not done), run: batchops run t.csv -c 5",
    ]


def test_a_stop_without_a_fix_says_only_how_to_continue() -> None:
    """A stop with nothing to fix (Ctrl-C) adds no "fix this first" line."""
    stop = Stop(StopKind.INTERRUPTED, "interrupted by SIGINT")
    assert _advice().next_step(_counts(pending=2), stop, []) == (
        "to continue (2 rows not done), run: batchops run t.csv -c 5"
    )


def test_without_a_checkpoint_the_report_is_the_way_back() -> None:
    """No checkpoint: the same command would start over, so the advice feeds the report
    back with --only: the run's command with the report in place of the input (and no
    -o, which would name the report as its own output)."""
    command = ["batchops", "run", "t.csv", "-c", "5", "-o", "out.csv", "--only", "failed"]
    advice = _advice(command, checkpointed=False, input_path=Path("t.csv"), report=Path("out.csv"))
    text = advice.next_step(_counts(pending=2, failed=1), None, FAILURES)
    assert "2 rows not done and no checkpoint was kept" in text
    assert "send just those with: batchops run out.csv -c 5 --only pending\n" in text
    assert text.endswith("resend them with: batchops run out.csv -c 5 --only failed,unknown")
    assert " t.csv" not in text and "REPORT" not in text


def test_failed_rows_get_their_top_three_reasons_and_the_retry_command() -> None:
    """Failed and unknown rows: counts, the three commonest reasons, a warning to check
    unknown tickets first, and the command with --retry-failed."""
    text = _advice().next_step(_counts(failed=7, unknown=1), None, FAILURES)
    assert text.splitlines() == [
        "7 failed, 1 unknown (top reasons: 4 × no permission; 2 × not found; 1 × bad state)",
        "check the unknown rows' tickets in ITSM before sending them again",
        "once their cause is fixed, resend them with: batchops run t.csv -c 5 --retry-failed",
    ]


def test_without_the_command_line_the_advice_names_the_same_command() -> None:
    """Called from Python (no command line): "the same command", with what to add."""
    advice = _advice(None)
    assert advice.resume() == "the same command"
    assert advice.retry_failed() == "the same command with --retry-failed"


def test_a_secret_no_variable_holds_is_left_out_of_the_command_with_one_line_each() -> None:
    """--notify (a webhook key) and --proxy with a password, in both spellings: neither
    shown nor masked (a masked value is refused or fails), but left out, each with the
    line that says so; a proxy without a password stays as it is."""
    command = ["batchops", "run", "t.csv", "--notify", "wxwork://KEY", "-c", "5"]
    command += ["--proxy=http://u:pw@p:3128", "--notify=json://h/KEY2"]
    text = _advice(command).next_step(_counts(pending=2, failed=1), None, FAILURES)
    assert "KEY" not in text and "pw" not in text and "…" not in text and "***" not in text
    lines = text.splitlines()
    assert lines[0] == "to continue (2 rows not done), run: batchops run t.csv -c 5"
    assert lines[2] == (
        "once their cause is fixed, resend them with: batchops run t.csv -c 5 --retry-failed"
    )
    assert lines[3:] == [
        "(--notify is not repeated above: its URL holds a key. Add it again, or set notify "
        "in a profile of batchops.toml)",
        "(--proxy is not repeated above: its URL holds a password. Add it again, or set proxy "
        "in a profile of batchops.toml)",
    ]
    plain = ["batchops", "run", "t.csv", "--proxy", "http://u@p:3128", "--base-url=http://i"]
    assert _advice(plain).resume() == shlex.join(plain)


def test_a_secret_a_variable_holds_is_named_by_it_and_the_shell_expands_it_again() -> None:
    """The shell put $HOOK's value on the command line: the advice says "$HOOK" there
    (quoted, so it stays one word), and no line says anything was left out."""
    env = {**ENV, "HOOK": "json://h/KEY", "_": "json://h/KEY", "CORP_PROXY": "http://u:pw@p:1"}
    command = ["batchops", "run", "my t.csv", "--notify", "json://h/KEY"]
    command += ["--proxy=http://u:pw@p:1", "--base-url", "https://a:b@itsm"]
    advice = Advice(command, resolve({}, env=env), env, checkpointed=True)
    text = advice.next_step(_counts(pending=1), None, [])
    assert text.splitlines() == [
        "to continue (1 rows not done), run: batchops run 'my t.csv' --notify \"$HOOK\" "
        '--proxy "$CORP_PROXY"',
        "(--base-url is not repeated above: its URL holds a password. Add it again, or set "
        "base_url in a profile of batchops.toml)",
    ]


def test_a_refused_credential_is_fixed_by_naming_where_each_came_from() -> None:
    """A credential code or HTTP 401/403: which app code, secret variable and user were
    used and from where, never the secret; other answers and the sandbox need no fix."""
    refused = Answer(Verdict.FATAL, 1306401, "app not allowed")
    fix = fatal_fix(refused, _advice(), sandbox=False)
    assert fix.startswith("the credentials or the app's permissions; used: ")
    assert "app code 'ops-app' (from env BK_APP_CODE)" in fix
    assert "the environment variable BK_APP_SECRET" in fix and "s3cret" not in fix
    forbidden = Answer(Verdict.FATAL, None, "Forbidden", http_status=403)
    assert fatal_fix(forbidden, _advice(), sandbox=False) == fix
    assert fatal_fix(refused, _advice(), sandbox=True) == ""
    assert fatal_fix(Answer(Verdict.FATAL, 404, "API not found"), _advice(), sandbox=False) == ""
    assert fatal_fix(None, _advice(), sandbox=False) == ""


def test_the_plan_overview_counts_what_would_really_be_sent(tmp_path: Path) -> None:
    """Rows the pre-check shows need nothing are counted skipped and not to send; invalid
    rows are counted; operators are listed once each."""
    batch = load_one(
        tmp_path,
        [
            ["A1", "zhang", "SUSPEND", "x"],
            ["A2", "admin", "SUSPEND", "x"],  # already SUSPENDED: skipped
            ["A3", "admin", "WITHDRAW", "x"],
            ["", "admin", "SUSPEND", "x"],  # invalid
        ],
    )
    checked = Precheck({"A1": "RUNNING", "A2": "SUSPENDED", "A3": "RUNNING"}, "get_tickets")
    overview = plan_overview(
        batch, batch.valid_indices(), checked, "http://itsm", "esb", Credentials("ops-app", "s")
    )
    assert (overview.total_rows, overview.to_send, overview.invalid) == (4, 2, 1)
    assert overview.by_action == {"SUSPEND": 2, "WITHDRAW": 1}
    assert {s: n for s, n in overview.by_status.items() if n} == {"invalid": 1, "skipped": 1}
    assert overview.operators == ["admin", "zhang"]
    assert overview.precheck_note == "3 tickets read with get_tickets"
    assert "About to send 2 of 4 rows to http://itsm (esb, app ops-app)." in overview.describe()
    unchecked = plan_overview(
        batch, batch.valid_indices(), None, "http://itsm", "esb", Credentials("ops-app", "s")
    )
    assert unchecked.to_send == 3 and unchecked.precheck_note == "skipped (--no-precheck)"


def test_the_canary_passes_only_when_every_row_succeeded_or_needed_nothing() -> None:
    """A failed or unknown canary row is bad and its message shown; skipped rows are good."""
    rows = [
        CanaryRow(2, "A1", "SUSPEND", Outcome(Status.SUCCESS)),
        CanaryRow(3, "A2", "SUSPEND", Outcome(Status.SKIPPED, None, "already SUSPENDED")),
    ]
    assert CanaryReport(rows, remaining=10).all_good
    failed = CanaryRow(4, "A3", "SUSPEND", Outcome(Status.FAILED, 3900004, "refused"))
    report = CanaryReport([*rows, failed], remaining=10)
    assert not report.all_good and report.bad == 1
    text = report.describe()
    assert "row 4: A3 SUSPEND → failed (refused)" in text and text.endswith("10 rows remain.")


def test_ctrl_c_during_a_question_means_no_and_the_handler_comes_back() -> None:
    """A SIGINT while the question waits answers False, and the handler before the
    question is in place afterwards."""

    def question(_: object) -> bool:
        signal.raise_signal(signal.SIGINT)
        return True

    before = signal.getsignal(signal.SIGINT)
    assert ask(question, None) is False
    assert signal.getsignal(signal.SIGINT) is before
    assert ask(lambda about: about == "go", "go") is True
