"""The command line: parse options, call :mod:`batchops.api`, turn its errors into exit codes.

Nothing here knows HTTP, files or SQLite. Every :class:`batchops.errors.BatchopsError`
becomes one ``Error: …`` line on stderr and its class's exit code, never a traceback.
Settings left unset on the command line are ``None`` here, so that the API can apply
one precedence everywhere: flag > environment > profile > default. A command takes
click's parsed options as one mapping (``**params``) and builds the API's frozen records
from it by name (:func:`batchops.cli.options.pick`, which checks each value against its
field's type), so no command lists the run's settings a second time.

The exit codes are stable, for cron: :class:`batchops.exits.Exit` is their table, and
each command's ``--help`` lists them from it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from batchops.errors import BatchopsError
from batchops.exits import Exit
from batchops.i18n import N_, _, ngettext
from batchops.process import (
    ignore_file_size_signal,
    leave_without_teardown,
    speak_click_in,
    start_native_threads_masked,
)
from batchops.settings import ENV_PROFILE, RANGES
from batchops.version import __version__

from .console import (
    JsonLog,
    RunTerminal,
    Terminal,
    ask,
    echo,
    guarded_output,
    json_text,
    show_summary,
    tell,
    warn,
    warn_insecure,
)
from .options import (
    connection_options,
    fail,
    input_options,
    param,
    pick,
    plan_input_options,
    rate_option,
    retries_option,
    run_options,
    target_options,
)
from .stand_in import sandbox
from .words import (
    EXIT_CODES,
    PathType,
    TranslatedGroup,
    choose_language,
    flag_language,
    option,
    profile_lang,
)


class _Commands(TranslatedGroup):
    """The command group; it chooses the language before anything is parsed, keeps the
    words it was given, for advice that repeats them, and escapes whatever reaches stdout
    or stderr while a command runs (console.py)."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        # click reads sys.argv itself when args is None (and expands globs on Windows).
        words = list(sys.argv[1:] if args is None else args)
        choose_language(words, profile_lang(words))
        speak_click_in(_, ngettext)
        with guarded_output():
            return super().main(args, *rest, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["batchops.argv"] = list(args)
        ctx.meta["batchops.lang_flag"] = flag_language(args) is not None
        return super().parse_args(ctx, args)


@click.group(
    cls=_Commands,
    help=N_(
        """Suspend, resume, withdraw or terminate many BlueKing ITSM tickets from a CSV/XLSX file.

    Each row names a ticket (sn), an operator, an action and a message. batchops
    validates the file, sends one operate_ticket call per row concurrently, and writes
    the file back as a report with each row's status, code and message.

    \b
    Example:
      batchops run samples/tickets.csv --sandbox
    """
    ),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=N_("Start with: batchops run samples/tickets.csv --sandbox"),
)
@click.version_option(__version__, prog_name="batchops")
def main() -> None:
    """The command group (its help is on the decorator, for the catalogs)."""


@main.command(
    help=N_(
        """Validate INPUT, send every valid row, write the report.

    \b
    Examples:
      export BK_APP_CODE=my-app BK_APP_SECRET=... BK_USERNAME=admin
      batchops run tickets.xlsx --base-url https://paas.example.com -c 50
      batchops run tickets.csv --profile prod --canary 10
      batchops run tickets.report.xlsx --only failed,unknown   # fix the red rows, send again
    """
    ),
    epilog=EXIT_CODES,
)
@input_options
@target_options
@run_options
def run(**params: object) -> None:
    start_native_threads_masked()  # before numpy's threads start: see process.py
    from batchops import api

    options = pick(api.RunOptions, params)
    warn_insecure(options.insecure)
    ignore_file_size_signal()
    terminal = RunTerminal(pick(Terminal, params))
    params, terminal.json_out = _summary_to_stdout(params)
    argv = click.get_current_context().meta.get("batchops.argv", [])
    try:
        summary = api.run_batch(
            param(params, "input_path", str),
            options,
            files=pick(api.Files, params),
            choices=pick(api.RunChoices, params, command=("batchops", *argv)),
            hooks=terminal.hooks(),
        )
    except BatchopsError as error:
        if terminal.events is not None:
            terminal.events("run_failed", {"error": str(error), "exit_code": error.exit_code})
        fail(error)
        return
    except KeyboardInterrupt:
        # Only possible before sending starts (afterwards Ctrl-C stops the run cleanly).
        tell(_("Interrupted before sending; nothing was sent."))
        sys.exit(Exit.INTERRUPTED)
    terminal.show(summary)
    sys.exit(summary.exit_code)


def _summary_to_stdout(params: dict[str, object]) -> tuple[dict[str, object], bool]:
    """``--summary-json -``: the summary goes to stdout, as one JSON document (the rest
    to stderr), not into a file named ``-``."""
    if params.get("summary_json") != "-":
        return params, False
    return {**params, "summary_json": None}, True


@main.command(
    help=N_(
        """Validate INPUT and write the report without sending any operation.

    Rows that would be sent are 'pending'. With an ITSM address (or --sandbox) the
    tickets are read first and rows that need no action are shown 'skipped'.

    \b
    Examples:
      batchops plan tickets.csv                     # validation only, no credentials
      batchops plan tickets.csv --profile prod      # and read every ticket's status
    """
    ),
    epilog=EXIT_CODES,
)
@plan_input_options
@target_options
@click.option("--log-json", is_flag=True, help=N_("With --verbose: requests as JSON lines."))
def plan(**params: object) -> None:
    start_native_threads_masked()  # before numpy's threads start: see process.py
    from batchops import api

    options = pick(api.RunOptions, params)
    warn_insecure(options.insecure)
    flags = pick(Terminal, params)
    params, json_out = _summary_to_stdout(params)
    hooks = api.Hooks(
        events=JsonLog() if flags.log_json else None, notice=warn, verbose=flags.verbose
    )
    try:
        summary = api.plan_batch(
            param(params, "input_path", str),
            options,
            files=pick(api.Files, params),
            precheck=param(params, "precheck", bool),
            hooks=hooks,
        )
    except BatchopsError as error:
        fail(error)
        return
    show_summary(summary, json_out=json_out)
    sys.exit(summary.exit_code)


@main.command(
    "select",
    help=N_(
        """Write an input sheet of the tickets ITSM lists for these filters (read-only).

    The sheet has sn, operator, action_type and action_message first (filled from
    --action, --operator and --message), then title, service_id, current_status,
    creator, create_at and ticket_url for whoever reviews it; run takes it as it is.
    Filters combine (all must hold); a date alone covers its whole day.

    \b
    Examples:
      batchops select --service-id 12 --status RUNNING --created-before 2024-06-01 \\
        --action SUSPEND --operator admin --message "holiday freeze" -o freeze.xlsx
      batchops select --creator zhangsan --created-after 2024-07-01 \\
        --created-before 2024-09-30 -o zhangsan-q3.csv
    """
    ),
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=PathType(dir_okay=False, path_type=str),
    help=N_("The sheet to write: *.csv or *.xlsx."),
)
@click.option("--status", metavar="STATUS[,STATUS]", help=N_("Current status: RUNNING,SUSPENDED."))
@click.option("--service-id", metavar="ID[,ID]", help=N_("Service ids: 12,13."))
@click.option("--biz-id", metavar="ID[,ID]", help=N_("Business (bk_biz_id) ids."))
@click.option("--creator", help=N_("Who created the ticket."))
@click.option("--created-after", metavar="DATE", help=N_("Created at or after DATE."))
@click.option("--created-before", metavar="DATE", help=N_("Created at or before DATE."))
@click.option("--ended-after", metavar="DATE", help=N_("Ended at or after DATE."))
@click.option("--ended-before", metavar="DATE", help=N_("Ended at or before DATE."))
@click.option("--tag", help=N_("Ticket tag."))
@click.option("--project", help=N_("Project key."))
@click.option(
    "--sn-file",
    type=PathType(exists=True, dir_okay=False, path_type=str),
    help=N_("Only these tickets: a text file with one sn a line, or a CSV with an sn column."),
)
@click.option("--all", "all_tickets", is_flag=True, help=N_("Allow a select without any filter."))
@click.option(
    "--force",
    is_flag=True,
    help=N_("Replace the file at -o if there is one (never a run's input, report or checkpoint)."),
)
@click.option(
    "--action",
    help=N_(
        "Fill action_type with this (SUSPEND, UNSUSPEND, WITHDRAW, TERMINATE); blank if unset."
    ),
)
@click.option("--operator", help=N_("Fill operator with this user; blank if unset."))
@click.option("--message", help=N_("Fill action_message with this reason."))
@option(
    "--limit",
    type=click.INT,
    default=10_000,
    show_default=True,
    help=N_("Ask before writing more rows than this (without a terminal: refuse, exit 2; {rule})."),
    help_fields={"rule": RANGES["limit"].rule},
)
@connection_options
@retries_option
@rate_option
def select_command(**params: object) -> None:
    start_native_threads_masked()  # before numpy's threads start: see process.py
    from batchops.commands import select as selection
    from batchops.settings import RunOptions

    options = pick(RunOptions, params)
    warn_insecure(options.insecure)
    on_terminal = sys.stdin.isatty() and sys.stderr.isatty()

    def confirm(count: int, limit: int) -> bool:
        return ask(
            _("{count} tickets match, more than --limit {limit}. Write all {count} rows?").format(
                count=count, limit=limit
            )
        )

    try:
        summary = selection.select_tickets(
            pick(selection.TicketFilters, params).query(),
            param(params, "output", str),
            options,
            choices=pick(selection.SelectChoices, params),
            confirm=confirm if on_terminal else None,
            handle_signals=True,
        )
    except BatchopsError as error:
        fail(error)
        return
    for note in summary.notes:
        tell(_("note: {note}").format(note=note))
    echo(summary.describe(), err=summary.stop is not None)
    sys.exit(summary.exit_code)


@main.command(
    help=N_(
        """Rebuild the full report from a checkpoint, also while its run is going (read-only).

    \b
    Example:
      batchops report .batchops/tickets.checkpoint.db -o progress.xlsx
    """
    )
)
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=PathType(dir_okay=False))
@click.option(
    "--output",
    "-o",
    type=PathType(dir_okay=False, path_type=str),
    help=N_("Where to write the report (default: the run's default report path)."),
)
@click.option(
    "--input",
    "input_path",
    type=PathType(dir_okay=False, path_type=str),
    help=N_("The run's input file, if it moved since the run."),
)
@click.option("--sheet", help=N_("XLSX: the sheet the run read."))
@click.option("--encoding", help=N_("CSV: the encoding the run used."))
def report(
    checkpoint_path: str,
    output: str | None,
    input_path: str | None,
    sheet: str | None,
    encoding: str | None,
) -> None:
    start_native_threads_masked()  # before numpy's threads start: see process.py
    from batchops import api

    from .console import format_summary

    try:
        summary = api.report_from_checkpoint(
            checkpoint_path, output=output, input_path=input_path, sheet=sheet, encoding=encoding
        )
    except BatchopsError as error:
        fail(error)
        return
    echo(format_summary(summary))
    sys.exit(summary.exit_code)


@main.command(
    help=N_(
        """Write the sheet that reverses a finished run, from its REPORT (nothing is sent).

    Every success SUSPEND becomes an UNSUSPEND and every success UNSUSPEND a SUSPEND,
    each ticket's rows newest applied first, whatever order the sheet is in now. With
    the run's checkpoint (found beside the run's input, or --checkpoint), only rows it
    records as applied are undone; report rows it contradicts are listed, never sent.
    Without one, undo says it trusts the report as it stands. Rows that cannot be
    reversed (WITHDRAW, TERMINATE, unknown outcomes) are listed with the reason in a
    second sheet (CSV: a .irreversible.csv beside it). A later run of the same sheet
    (the report fed back as input, which wrote REPORT-2) is named on stderr with the
    rows it applied; --with-newer undoes those too. Check the sheet with plan, then
    send it with run.

    \b
    Example:
      batchops undo freeze.report.xlsx          # writes freeze.report.undo.xlsx
      batchops plan freeze.report.undo.xlsx --profile prod
      batchops run freeze.report.undo.xlsx --profile prod
    """
    )
)
@click.argument("report_path", metavar="REPORT", type=PathType(dir_okay=False, path_type=str))
@click.option(
    "--output",
    "-o",
    type=PathType(dir_okay=False, path_type=str),
    help=N_(
        "Where to write the undo sheet (default: beside REPORT, same format: "
        "t.report.xlsx → t.report.undo.xlsx)."
    ),
)
@click.option("--sheet", help=N_("XLSX: the report's sheet (default: the first visible one)."))
@click.option("--encoding", help=N_("CSV: the report's encoding (default: detect)."))
@click.option(
    "--force",
    is_flag=True,
    help=N_("Replace an existing undo sheet (never a run's input, report or checkpoint)."),
)
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=PathType(dir_okay=False, path_type=str),
    help=N_(
        "The run's checkpoint, read only (default: the one beside the run's input, "
        ".batchops/t.checkpoint.db for t.report.xlsx, when there is one)."
    ),
)
@click.option(
    "--with-newer",
    is_flag=True,
    help=N_(
        "Also undo what the later runs of the same sheet applied (t.report-2.xlsx, "
        "t.report-3.xlsx … written by feeding the report back), each held to its own "
        "run's checkpoint; each row then names its report."
    ),
)
@click.option(
    "--profile", help=N_("The profile whose undo_message to write [env: BATCHOPS_PROFILE].")
)
@click.option(
    "--config", "config_path", type=PathType(dir_okay=False), help=N_("The profile file.")
)
def undo(
    report_path: str,
    output: str | None,
    sheet: str | None,
    encoding: str | None,
    force: bool,
    checkpoint_path: str | None,
    with_newer: bool,
    profile: str | None,
    config_path: str | None,
) -> None:
    start_native_threads_masked()  # before numpy's threads start: see process.py
    from batchops.commands import undo_report

    argv = click.get_current_context().meta.get("batchops.argv", [])

    try:
        summary = undo_report(
            report_path,
            output=output,
            sheet=sheet,
            encoding=encoding,
            force=force,
            checkpoint=checkpoint_path,
            profile=profile,
            config=config_path,
            with_newer=with_newer,
            command=argv,
        )
    except BatchopsError as error:
        fail(error)
        return
    for notice in summary.notices():
        warn(notice)
    echo(summary.describe())
    sys.exit(summary.exit_code)


@main.command(
    help=N_(
        """How a run stands, from its checkpoint: rows per status, rows per second over the
    last minute, ETA, whether a process still runs it, why it stopped (read-only; safe
    while the run writes).

    \b
    Examples:
      batchops status .batchops/tickets.checkpoint.db
      batchops status .batchops/tickets.checkpoint.db --json | jq .counts
    """
    )
)
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=PathType(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help=N_("Print the status as one JSON object."))
def status(checkpoint_path: str, as_json: bool) -> None:
    from batchops.commands import read_status

    try:
        result = read_status(checkpoint_path)
    except BatchopsError as error:
        fail(error)
        return
    if as_json:
        echo(json_text(result.as_json(), indent=2))
    else:
        echo(result.describe())


@main.group(
    help=N_(
        """Inspect settings: flags > environment > batchops.toml profile > defaults.

    \b
    Example:
      batchops config show --profile prod
    """
    )
)
def config() -> None:
    """The ``config`` group (its help is on the decorator, for the catalogs)."""


@config.command(
    "show",
    help=N_(
        """Show every setting, its value and where it comes from (secrets masked).

    \b
    Example:
      PROD_BK_APP_SECRET=... batchops config show --profile prod
    """
    ),
)
@option("--profile", help=N_("The profile to show [env: {env}]."), help_fields={"env": ENV_PROFILE})
@click.option(
    "--config", "config_path", type=PathType(dir_okay=False), help=N_("The profile file.")
)
def config_show(profile: str | None, config_path: str | None) -> None:
    from batchops.settings import describe, resolve

    try:
        resolved = resolve({}, profile=profile, config=config_path)
    except BatchopsError as error:
        fail(error)
        return
    for text in resolved.warnings:
        warn(text)
    echo(describe(resolved))


@config.command(
    "trust",
    help=N_(
        """Let batchops read PATH, a batchops.toml in a working folder, as it is now.

    A batchops.toml found in the working folder is ignored until you trust it: one handed
    over with a spreadsheet could send your app secret to any host. The file's sha256 is
    recorded in ~/.config/batchops/trusted.json; once the file changes, trust it again.
    A path with control characters (a newline, say) is refused.

    \b
    Example:
      batchops config trust ./batchops.toml
    """
    ),
)
@click.argument("path", type=PathType(dir_okay=False, path_type=str))
def config_trust(path: str) -> None:
    from batchops.settings import trust_config

    try:
        trusted = trust_config(path)
    except BatchopsError as error:
        fail(error)
        return
    if trusted.replaced_problem:
        warn(_("{problem}; replaced by a new one").format(problem=trusted.replaced_problem))
    echo(
        _("trusted {path} as it is now (recorded in {record})").format(
            path=os.path.abspath(path), record=trusted.record
        )
    )


main.add_command(sandbox)


def tolerant_streams() -> None:
    """Never crash on a console that cannot show a character (a GBK code page and an
    emoji in a path or a server message): such characters are written escaped."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", "") == "strict":
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def entry() -> NoReturn:
    """The ``batchops`` command: the CLI, then an exit without the interpreter's teardown
    (:func:`batchops.process.leave_without_teardown` says what that buys and costs).

    Tests call :func:`main`.
    """
    tolerant_streams()
    try:
        main()
        status: object = None
    except SystemExit as exc:
        status = exc.code
    leave_without_teardown(status)
