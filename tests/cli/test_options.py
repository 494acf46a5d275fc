"""The CLI's hand-over to the API: options become the API's frozen records by name,
each value checked against its field's type, and every option fills exactly one field."""

from __future__ import annotations

import dataclasses

import pytest

from batchops import sandbox as stand_in
from batchops.cli.console import Terminal
from batchops.cli.main import main
from batchops.cli.options import param, pick
from batchops.cli.stand_in import _Seeds
from batchops.commands.select import SelectChoices, TicketFilters
from batchops.settings.records import Files, RunChoices, RunOptions


def _fields(*records: type) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for record in records:
        for item in dataclasses.fields(record):
            owners.setdefault(item.name, []).append(record.__name__)
    return owners


def _options(command: str) -> set[str]:
    return {p.name for p in main.commands[command].params if p.name}


@pytest.mark.parametrize(
    ("command", "records", "apart"),
    [
        ("run", (RunOptions, Files, RunChoices, Terminal), {"input_path"}),
        ("plan", (RunOptions, Files, Terminal), {"input_path", "precheck"}),
        ("select", (RunOptions, TicketFilters, SelectChoices), {"output"}),
        (
            "sandbox",
            (stand_in.SandboxConfig, stand_in.Faults, _Seeds),
            {"host", "port", "not_whitelisted", "no_log", "fault_seed"},
        ),
    ],
)
def test_every_option_fills_exactly_one_field(
    command: str, records: tuple[type, ...], apart: set[str]
) -> None:
    """Each option of a command is one field of one of the records it builds (or one of
    the few it reads apart): the list of a command's settings is written once."""
    owners = _fields(*records)
    for name in sorted(_options(command) - apart):
        assert len(owners.get(name, [])) == 1, (command, name, owners.get(name))


def test_run_options_parse_to_the_records_fields() -> None:
    """--no-checkpoint is use_checkpoint=False and --only a tuple of statuses, so the
    parsed options need no renaming on their way to the API."""
    command = main.commands["run"]
    ctx = command.make_context(
        "run", ["t.csv", "--no-checkpoint", "--only", "failed,,unknown", "-c", "3", "--sandbox"]
    )
    assert pick(Files, ctx.params) == Files(use_checkpoint=False)
    choices = pick(RunChoices, ctx.params, command=("batchops", "run"))
    assert choices.only == ("failed", "unknown") and choices.command == ("batchops", "run")
    # --notify given no time is (), which resolves as None does: not given.
    assert pick(RunOptions, ctx.params) == RunOptions(concurrency=3, sandbox=True, notify=())
    plain = command.make_context("run", ["t.csv"]).params
    assert pick(Files, plain).use_checkpoint is True
    assert pick(RunChoices, plain).only is None
    assert param(plain, "input_path", str) == "t.csv"


def test_pick_refuses_a_value_of_the_wrong_type() -> None:
    """A value that does not fit its field, or a field the record does not have, is a
    TypeError at once, never a surprise further down the run."""
    assert pick(RunOptions, {"timeout": 3, "gateway": "apigw"}) == RunOptions(
        timeout=3, gateway="apigw"
    )
    for params in ({"gateway": "ftp"}, {"concurrency": "5"}, {"concurrency": True}):
        with pytest.raises(TypeError, match="RunOptions"):
            pick(RunOptions, params)
    with pytest.raises(TypeError, match="no field nope"):
        pick(Files, {}, nope=1)
    with pytest.raises(TypeError, match="input_path"):
        param({"input_path": 3}, "input_path", str)
