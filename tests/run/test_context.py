"""The run as one record (:mod:`batchops.run.context`): the caller's hooks wired for the
steps, and the :class:`Run` every step takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from batchops.checkpoint import Checkpoint, Work
from batchops.itsm import Tracer
from batchops.model import OutcomeTable, Status
from batchops.report import Outputs
from batchops.run.context import Hooks, Loaded, Run, RunHooks
from batchops.run.progress import NullProgress
from batchops.run.recorder import no_events
from batchops.settings import Files, RunChoices, RunOptions, resolve_options, run_config

from ..helpers import load_one

COMMAND = ("batchops", "run", "t.csv", "--sandbox")


def _run(tmp_path: Path, store: Checkpoint | None = None) -> Run:
    """A run of a one-row sheet against the embedded stand-in, not connected yet."""
    batch = load_one(tmp_path, [["S1", "admin", "SUSPEND", "x"]])
    options = RunOptions(sandbox=True)
    config = run_config(
        batch.source,
        options,
        resolve_options(options, {}),
        files=Files(),
        choices=RunChoices(command=COMMAND),
        say=print,
        env={},
    )
    outcomes = OutcomeTable(len(batch))
    loaded = Loaded(batch, outcomes, Outputs(tmp_path / "r.csv"), batch.valid_indices(), None)
    work = Work(batch.valid_indices(), [])
    return Run(config, RunHooks.wired(Hooks()), loaded, work, store, started=0.0)


def test_a_step_that_needs_the_session_before_connect_is_an_error(tmp_path: Path) -> None:
    """Run.connected before connect() raises at once, rather than handing out None."""
    run = _run(tmp_path)
    with pytest.raises(RuntimeError, match="not connected yet"):
        run.connected  # noqa: B018


def test_hooks_left_out_are_wired_to_harmless_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No hooks: events go nowhere, notices nowhere, progress is a NullProgress, nothing
    is asked, signals are left alone and no tracer is made."""
    hooks = RunHooks.wired(Hooks())
    assert hooks.emit is no_events
    assert isinstance(hooks.progress, NullProgress)
    assert (hooks.confirm, hooks.confirm_canary, hooks.tracer) == (None, None, None)
    assert hooks.handle_signals is False
    hooks.say("an outage")
    assert capsys.readouterr() == ("", "")


def test_hooks_given_are_wired_through() -> None:
    """A notice goes to ``notice`` and is an event; --verbose makes a tracer; the
    caller's questions and signal handling are kept."""
    events: list[tuple[str, Mapping[str, object]]] = []
    said: list[str] = []

    def confirm(_: object) -> bool:
        return False

    hooks = RunHooks.wired(
        Hooks(
            confirm=confirm,
            events=lambda n, f: events.append((n, f)),
            notice=said.append,
            handle_signals=True,
            verbose=1,
        )
    )
    hooks.say("ITSM is back")
    assert said == ["ITSM is back"] and events == [("notice", {"message": "ITSM is back"})]
    assert isinstance(hooks.tracer, Tracer) and hooks.tracer.level == 1
    assert hooks.confirm is confirm and hooks.handle_signals is True


def test_the_advice_continues_with_the_checkpoint_or_the_report(tmp_path: Path) -> None:
    """A run with a checkpoint advises its own command line; one without, the report."""
    counts = {s.value: 0 for s in Status} | {"pending": 1}
    without = _run(tmp_path).advice().next_step(counts, None, [])
    assert "--only pending" in without
    store = Checkpoint.open(tmp_path / "t.db")
    try:
        kept = _run(tmp_path, store).advice().next_step(counts, None, [])
    finally:
        store.close()
    assert kept == "to continue (1 rows not done), run: batchops run t.csv --sandbox"
