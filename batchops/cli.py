"""The command line: parse options, call :mod:`batchops.api`, turn its errors into exit codes.

Nothing here knows HTTP, files or SQLite. Every :class:`batchops.errors.BatchopsError`
becomes one ``Error: …`` line on stderr and its class's exit code, never a traceback.
Settings left unset on the command line are ``None`` here, so that the API can apply
one precedence everywhere: flag > environment > profile > default.

Exit codes (stable, for cron):
  0    every row success or skipped
  1    finished, some rows failed, invalid or unknown (or the run was not confirmed)
  2    usage, configuration, input or checkpoint error: nothing was sent
  3    stopped early by a fatal answer, the failure brake, the canary or a checkpoint
       that can no longer be written: rows not done are pending, and the same command
       resumes
  4    operations were sent, but the report (or --failures / --summary-json) could not
       be written: the results are safe in the checkpoint; 'batchops report' rebuilds it
  130  interrupted (Ctrl-C, SIGTERM): rows not done are pending
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, NoReturn, TypeVar

import click

from . import __version__
from .config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT_S,
    ENV_APP_CODE,
    ENV_APP_SECRET,
    ENV_BASE_URL,
    ENV_CONFIG,
    ENV_PROFILE,
    ENV_TOKEN,
    ENV_USERNAME,
    RANGES,
)
from .errors import BatchopsError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = (
    "Exit codes: 0 all rows success/skipped; 1 some rows failed/invalid/unknown; "
    "2 usage or input error, nothing sent; 3 stopped early (fatal answer, failure brake, "
    "canary, checkpoint unwritable), resumable; 4 sent, but the report could not be written "
    "(results safe in the checkpoint: batchops report CHECKPOINT -o OTHER); 130 interrupted, "
    "resumable."
)


class BatchopsClickError(click.ClickException):
    """A BatchopsError shown the click way (``Error: …``) with the error's own exit code."""

    def __init__(self, error: BatchopsError) -> None:
        super().__init__(str(error))
        # click types exit_code as a class variable; each error class has its own code.
        self.exit_code = error.exit_code  # type: ignore[misc]


def _options(*options: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


_input_options = _options(
    click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=str)),
    click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, path_type=str),
        help="Where to write the report. Default: beside INPUT, same format "
        "(tickets.csv → tickets.report.csv).",
    ),
    click.option("--sheet", help="XLSX: the sheet to read (default: the first visible one)."),
    click.option(
        "--encoding",
        help="CSV: the text encoding (default: detect UTF-8, UTF-8 with BOM or GB18030/GBK).",
    ),
)

_connection_options = _options(
    click.option(
        "--profile",
        help=f"Use this profile of batchops.toml [env: {ENV_PROFILE}].",
    ),
    click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=str),
        help="The profile file (default: ./batchops.toml, then ~/.config/batchops/batchops.toml) "
        f"[env: {ENV_CONFIG}].",
    ),
    click.option(
        "--base-url",
        help="ITSM address: the ESB host (https://paas.example.com) or, with --gateway apigw, "
        "the API gateway stage (https://bkapi.example.com/api/bk-itsm/prod) "
        f"[env: {ENV_BASE_URL}].",
    ),
    click.option(
        "--gateway",
        type=click.Choice(["esb", "apigw"]),
        help="esb (default): credentials in the JSON body (/api/c/compapi/v2/itsm/…); apigw: "
        "credentials only in the X-Bkapi-Authorization header ({base}/v2/itsm/…).",
    ),
    click.option(
        "--app-code",
        help=f"BlueKing app code [env: {ENV_APP_CODE}]. The app secret is read only from the "
        f"environment [env: {ENV_APP_SECRET}], never from a flag.",
    ),
    click.option(
        "--username",
        help=f"bk_username, for apps on the ESB whitelist [env: {ENV_USERNAME}]; otherwise set "
        f"a bk_token [env: {ENV_TOKEN}].",
    ),
    click.option(
        "--timeout",
        type=click.FLOAT,
        help=f"Seconds to wait for one answer, {RANGES['timeout'].rule()} "
        f"[default: {DEFAULT_TIMEOUT_S:g}].",
    ),
    click.option(
        "--ca-bundle",
        type=click.Path(exists=True, dir_okay=False),
        help="PEM file of CA certificates to trust (private CA).",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        help="Do not verify TLS certificates (dangerous: anyone on the path can read your "
        "app secret).",
    ),
)

_target_options = _options(
    _connection_options,
    click.option(
        "--precheck/--no-precheck",
        default=True,
        show_default=True,
        help="Read every ticket's status first and skip rows whose ticket is already where "
        "the action leads (SUSPEND on SUSPENDED is never sent).",
    ),
    click.option(
        "--sandbox",
        is_flag=True,
        help="Run against an embedded stand-in ITSM server seeded with INPUT's tickets (no "
        "network, no credentials needed).",
    ),
    click.option(
        "--summary-json",
        type=click.Path(dir_okay=False, path_type=str),
        help="Also write the run's summary as JSON (counts, elapsed, paths, exit code).",
    ),
    click.option(
        "--proxy",
        metavar="URL|none",
        help="Send every request through this HTTP proxy (http://[user:pass@]host:port), over "
        "HTTPS_PROXY/HTTP_PROXY/NO_PROXY, which are honoured otherwise; 'none' connects "
        "directly.",
    ),
    click.option(
        "--verbose",
        "-v",
        count=True,
        help="One stderr line per request and answer (time, API, sn, action, HTTP status, "
        "code, ms, attempt); -vv adds headers and bodies. Credentials are masked.",
    ),
)

# Numbers are checked in config.RANGES, whatever their source (flag, profile, keyword),
# so that a profile's value is refused exactly as the flag's is.
_retries_option = click.option(
    "--retries",
    type=click.INT,
    help="Resends of a row whose request was certainly not applied (429, 503, connect error) "
    f"or whose ticket was read back unchanged ({RANGES['retries'].rule()}) [default: 8].",
)

_rate_option = click.option(
    "--rate",
    type=click.FLOAT,
    help="At most this many requests per second, reads included (gateway quota).",
)


def _fail(error: BatchopsError) -> None:
    raise BatchopsClickError(error) from None


def _warn_insecure(insecure: bool) -> None:
    if insecure:
        click.secho(
            "WARNING: --insecure: TLS certificates are NOT verified; the app secret can be "
            "read by anyone between you and the gateway.",
            fg="red",
            bold=True,
            err=True,
        )


def _notice(text: str) -> None:
    """Anything meant for a person rather than a program goes to stderr (13.4)."""
    click.echo(text, err=True)


def _warning(text: str) -> None:
    """A warning outside a run, said as a run's notices are ("batchops: ...")."""
    _notice(f"batchops: {text}")


def _ask(question: str) -> bool:
    """Yes/no on the terminal; Ctrl-C or end of input mean no."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        click.echo("", err=True)
        return False


class JsonLog:
    """``--log-json``: one JSON object per line on stderr, for log collectors."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stderr

    def __call__(self, event: str, fields: Mapping[str, object]) -> None:
        record = {"ts": datetime.now().astimezone().isoformat(), "event": event, **fields}
        self._stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._stream.flush()


class _Commands(click.Group):
    """The command group; it keeps the words it was given, for advice that repeats them."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["batchops.argv"] = list(args)
        return super().parse_args(ctx, args)


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Start with: batchops run samples/tickets.csv --sandbox",
)
@click.version_option(__version__, prog_name="batchops")
def main() -> None:
    """Suspend, resume, withdraw or terminate many BlueKing ITSM tickets from a CSV/XLSX file.

    Each row names a ticket (sn), an operator, an action and a message. batchops
    validates the file, sends one operate_ticket call per row concurrently, and writes
    the file back as a report with each row's status, code and message.

    \b
    Example:
      batchops run samples/tickets.csv --sandbox
    """


@main.command(epilog=EXIT_CODES_HELP)
@_input_options
@_target_options
@click.option(
    "--concurrency",
    "-c",
    type=click.INT,
    help="Requests in flight at once; rows of one ticket always go one at a time "
    f"({RANGES['concurrency'].rule()}) [default: {DEFAULT_CONCURRENCY}].",
)
@_retries_option
@_rate_option
@click.option(
    "--max-failures",
    metavar="N|P%|off",
    help="Stop sending once more than N rows (or P% of answered rows) failed "
    "[default: stop after 50 failures in a row].",
)
@click.option(
    "--readback-delay",
    type=click.FLOAT,
    help="Seconds to wait before reading a ticket back after a lost answer [default: 1].",
)
@click.option(
    "--server-timeout",
    type=click.FLOAT,
    help="Seconds the gateway gives ITSM to answer (ESB: 30): a request whose answer was lost "
    "is resent only when this long after it left the ticket still shows it did not run "
    "[default: 30].",
)
@click.option(
    "--outage-wait",
    type=click.FLOAT,
    help="Seconds to wait for an unreachable ITSM (or a long rate-limit pause) before "
    "stopping, resumable [default: 60].",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=str),
    help="The checkpoint file (default: beside INPUT, tickets.csv → tickets.checkpoint.db). "
    "Running the same command again continues where a run stopped.",
)
@click.option("--no-checkpoint", is_flag=True, help="Keep no checkpoint (no safe resume).")
@click.option(
    "--fresh",
    is_flag=True,
    help="Start over: set the existing checkpoint aside as a backup and send every row.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Resume, and also resend rows that ended failed or unknown (not invalid ones).",
)
@click.option(
    "--only",
    metavar="STATUS[,STATUS]",
    help="INPUT is an earlier report: send only its rows with these statuses "
    "(e.g. failed,unknown); the others keep their result.",
)
@click.option(
    "--canary",
    type=click.IntRange(min=1),
    metavar="N",
    help="Send N rows first and show them; on a terminal ask before the rest (even with "
    "--yes), elsewhere go on only if all N succeeded.",
)
@click.option(
    "--failures",
    type=click.Path(dir_okay=False, path_type=str),
    help="Also write just the rows needing attention (failed, unknown, invalid) to this "
    "file; fix them and run it again.",
)
@click.option("--strict", is_flag=True, help="Send nothing if any row is invalid.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display; summary only on error.")
@click.option("--log-json", is_flag=True, help="Log events as JSON lines on stderr.")
@click.option(
    "--notify",
    metavar="URL",
    multiple=True,
    help="Send the run's summary here when it ends (repeatable): any Apprise URL, e.g. "
    "wecombot://KEY, dingtalk://TOKEN, feishu://TOKEN, slack://…, mailto://…, json://host/path.",
)
@click.option(
    "--notify-on",
    type=click.Choice(["problems", "always"]),
    help="problems: only when the exit code is not 0 [default]; always: after every run.",
)
def run(
    input_path: str,
    yes: bool,
    quiet: bool,
    log_json: bool,
    insecure: bool,
    only: str | None,
    notify: tuple[str, ...],
    **options: Any,
) -> None:
    """Validate INPUT, send every valid row, write the report.

    \b
    Examples:
      export BK_APP_CODE=my-app BK_APP_SECRET=... BK_USERNAME=admin
      batchops run tickets.xlsx --base-url https://paas.example.com -c 50
      batchops run tickets.csv --profile prod --canary 10
      batchops run tickets.report.xlsx --only failed,unknown   # fix the red rows, send again
    """
    from . import api
    from .console import format_problems, format_summary, progress_for

    _warn_insecure(insecure)
    if hasattr(signal, "SIGXFSZ"):
        # Past a file-size limit ('ulimit -f') the kernel would kill the run outright;
        # ignored, the write fails instead and the run stops saying so (resumable).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    confirm = confirm_canary = None
    on_terminal = sys.stdin.isatty() and sys.stderr.isatty()
    if on_terminal and not yes:

        def confirm(overview: api.PlanOverview) -> bool:
            click.echo(overview.describe(), err=True)
            return _ask("Send these operations?")

    if on_terminal:
        # Asked even with --yes: whoever asks for a canary wants to look at it.

        def confirm_canary(report: api.CanaryReport) -> bool:
            click.echo(report.describe(), err=True)
            return _ask("Send the rest?")

    events = JsonLog() if log_json else None
    progress = progress_for(sys.stderr, quiet=quiet or log_json, lines=bool(options["verbose"]))
    checkpoint_off = options.pop("no_checkpoint")

    def notice(text: str) -> None:
        if not log_json:  # JSON logs carry it as a "notice" event
            progress.write(f"batchops: {text}")

    try:
        summary = api.run_batch(
            input_path,
            **options,
            notify=notify or None,
            use_checkpoint=not checkpoint_off,
            only=[s for s in only.split(",") if s.strip()] if only else None,
            insecure=insecure,
            progress=progress,
            confirm=confirm,
            confirm_canary=confirm_canary,
            events=events,
            handle_signals=True,
            notice=notice,
            command=["batchops", *click.get_current_context().meta.get("batchops.argv", [])],
        )
    except BatchopsError as error:
        if events is not None:
            events("run_failed", {"error": str(error), "exit_code": error.exit_code})
        _fail(error)
        return
    except KeyboardInterrupt:
        # Only possible before sending starts (afterwards Ctrl-C stops the run cleanly).
        click.echo("Interrupted before sending; nothing was sent.", err=True)
        sys.exit(130)
    for line in format_problems(summary):
        _notice(line)
    if not (quiet or log_json) or summary.exit_code:
        click.echo(format_summary(summary))
    if summary.advice and summary.exit_code and events is None:
        # (JSON logs carry it in the run_finished event, as "next".)
        click.echo(summary.advice, err=True)
    sys.exit(summary.exit_code)


@main.command(epilog=EXIT_CODES_HELP)
@_input_options
@_target_options
@click.option("--log-json", is_flag=True, help="With --verbose: requests as JSON lines.")
def plan(input_path: str, insecure: bool, log_json: bool, **options: Any) -> None:
    """Validate INPUT and write the report without sending any operation.

    Rows that would be sent are 'pending'. With an ITSM address (or --sandbox) the
    tickets are read first and rows that need no action are shown 'skipped'.

    \b
    Examples:
      batchops plan tickets.csv                     # validation only, no credentials
      batchops plan tickets.csv --profile prod      # and read every ticket's status
    """
    from . import api
    from .console import format_problems, format_summary

    _warn_insecure(insecure)
    try:
        summary = api.plan_batch(
            input_path,
            insecure=insecure,
            notice=_warning,
            events=JsonLog() if log_json else None,
            **options,
        )
    except BatchopsError as error:
        _fail(error)
        return
    for line in format_problems(summary):
        _notice(line)
    click.echo(format_summary(summary))
    sys.exit(summary.exit_code)


@main.command("select")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="The sheet to write: *.csv or *.xlsx.",
)
@click.option("--status", metavar="STATUS[,STATUS]", help="Current status: RUNNING,SUSPENDED.")
@click.option("--service-id", metavar="ID[,ID]", help="Service ids: 12,13.")
@click.option("--biz-id", metavar="ID[,ID]", help="Business (bk_biz_id) ids.")
@click.option("--creator", help="Who created the ticket.")
@click.option("--created-after", metavar="DATE", help="Created at or after DATE.")
@click.option("--created-before", metavar="DATE", help="Created at or before DATE.")
@click.option("--ended-after", metavar="DATE", help="Ended at or after DATE.")
@click.option("--ended-before", metavar="DATE", help="Ended at or before DATE.")
@click.option("--tag", help="Ticket tag.")
@click.option("--project", help="Project key.")
@click.option(
    "--sn-file",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Only these tickets: a text file with one sn a line, or a CSV with an sn column.",
)
@click.option("--all", "all_tickets", is_flag=True, help="Allow a select without any filter.")
@click.option(
    "--action",
    help="Fill action_type with this (SUSPEND, UNSUSPEND, WITHDRAW, TERMINATE); blank if unset.",
)
@click.option("--operator", help="Fill operator with this user; blank if unset.")
@click.option("--message", help="Fill action_message with this reason.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Ask before writing more rows than this (without a terminal: refuse, exit 2).",
)
@_connection_options
@_retries_option
@_rate_option
def select_command(output: str, insecure: bool, **options: Any) -> None:
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
    from . import select as selection

    _warn_insecure(insecure)
    on_terminal = sys.stdin.isatty() and sys.stderr.isatty()
    filters = {name: options.pop(name) for name in _SELECT_FILTERS}

    def confirm(count: int, limit: int) -> bool:
        return _ask(f"{count} tickets match, more than --limit {limit}. Write all {count} rows?")

    try:
        summary = selection.select_tickets(
            selection.TicketQuery.from_options(**filters),
            output=output,
            insecure=insecure,
            confirm=confirm if on_terminal else None,
            **options,
        )
    except BatchopsError as error:
        _fail(error)
        return
    click.echo(summary.describe())
    sys.exit(summary.exit_code)


_SELECT_FILTERS = (
    "status",
    "service_id",
    "biz_id",
    "creator",
    "created_after",
    "created_before",
    "ended_after",
    "ended_before",
    "tag",
    "project",
    "sn_file",
)


@main.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=click.Path(dir_okay=False))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=str),
    help="Where to write the report (default: the run's default report path).",
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="The run's input file, if it moved since the run.",
)
@click.option("--sheet", help="XLSX: the sheet the run read.")
@click.option("--encoding", help="CSV: the encoding the run used.")
def report(
    checkpoint_path: str,
    output: str | None,
    input_path: str | None,
    sheet: str | None,
    encoding: str | None,
) -> None:
    """Rebuild the full report from a checkpoint, also while its run is going (read-only).

    \b
    Example:
      batchops report tickets.checkpoint.db -o progress.xlsx
    """
    from . import api
    from .console import format_summary

    try:
        summary = api.report_from_checkpoint(
            checkpoint_path, output=output, input_path=input_path, sheet=sheet, encoding=encoding
        )
    except BatchopsError as error:
        _fail(error)
        return
    click.echo(format_summary(summary))
    sys.exit(summary.exit_code)


@main.command()
@click.argument("report_path", metavar="REPORT", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=str),
    help="Where to write the undo sheet (default: beside REPORT, same format: "
    "t.report.xlsx → t.report.undo.xlsx).",
)
@click.option("--sheet", help="XLSX: the report's sheet (default: the first visible one).")
@click.option("--encoding", help="CSV: the report's encoding (default: detect).")
def undo(report_path: str, output: str | None, sheet: str | None, encoding: str | None) -> None:
    """Write the sheet that reverses a finished run, from its REPORT (nothing is sent).

    Every success SUSPEND becomes an UNSUSPEND and every success UNSUSPEND a SUSPEND,
    each ticket's rows in reverse order. Rows that cannot be reversed (WITHDRAW,
    TERMINATE, unknown outcomes) are listed with the reason in a second sheet (CSV: a
    .irreversible.csv beside it). Check the sheet with plan, then send it with run.

    \b
    Example:
      batchops undo freeze.report.xlsx          # writes freeze.report.undo.xlsx
      batchops plan freeze.report.undo.xlsx --profile prod
      batchops run freeze.report.undo.xlsx --profile prod
    """
    from .undo import undo_report

    try:
        summary = undo_report(report_path, output=output, sheet=sheet, encoding=encoding)
    except BatchopsError as error:
        _fail(error)
        return
    click.echo(summary.describe())
    sys.exit(summary.exit_code)


@main.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def status(checkpoint_path: str, as_json: bool) -> None:
    """How a run stands, from its checkpoint: rows per status, rows per second over the
    last minute, ETA, whether a process still runs it, why it stopped (read-only; safe
    while the run writes).

    \b
    Examples:
      batchops status tickets.checkpoint.db
      batchops status tickets.checkpoint.db --json | jq .counts
    """
    from .status import read_status

    try:
        result = read_status(checkpoint_path)
    except BatchopsError as error:
        _fail(error)
        return
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(result.describe())


@main.group()
def config() -> None:
    """Inspect settings: flags > environment > batchops.toml profile > defaults.

    \b
    Example:
      batchops config show --profile prod
    """


@config.command("show")
@click.option("--profile", help=f"The profile to show [env: {ENV_PROFILE}].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The profile file.")
def config_show(profile: str | None, config_path: str | None) -> None:
    """Show every setting, its value and where it comes from (secrets masked).

    \b
    Example:
      PROD_BK_APP_SECRET=... batchops config show --profile prod
    """
    from .config import describe, resolve

    try:
        resolved = resolve({}, profile=profile, config=config_path)
    except BatchopsError as error:
        _fail(error)
        return
    for warning in resolved.warnings:
        _warning(warning)
    click.echo(describe(resolved))


@config.command("trust")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
def config_trust(path: str) -> None:
    """Let batchops read PATH, a batchops.toml in a working folder, as it is now.

    A batchops.toml found in the working folder is ignored until you trust it: one handed
    over with a spreadsheet could send your app secret to any host. The file's sha256 is
    recorded in ~/.config/batchops/trusted.txt; once the file changes, trust it again.

    \b
    Example:
      batchops config trust ./batchops.toml
    """
    from .config import trust_config

    try:
        record = trust_config(path)
    except BatchopsError as error:
        _fail(error)
        return
    click.echo(f"trusted {os.path.abspath(path)} as it is now (recorded in {record})")


_RATE = click.FloatRange(0.0, 1.0)


@main.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="0 picks a free port.",
)
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Create the tickets named in this CSV/XLSX (the first operator of each ticket is "
    "its creator and processor).",
)
@click.option(
    "--generate",
    metavar="PREFIX:COUNT",
    multiple=True,
    help="Create COUNT RUNNING tickets PREFIX0000001… whose processor is admin (repeatable).",
)
@click.option("--app-code", default="batchops-sandbox", show_default=True, help="The app code.")
@click.option("--not-whitelisted", is_flag=True, help="Require a bk_token, not bk_username.")
@click.option("--legacy-codes", is_flag=True, help="Answer 3900005 like servers before 2022.")
@click.option("--no-log", is_flag=True, help="Keep the counters, not the operation log.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Delay every answer.")
@click.option(
    "--error-5xx-rate", type=_RATE, default=0.0, help="Share of operations answered HTTP 5xx."
)
@click.option(
    "--rate-limit-rate", type=_RATE, default=0.0, help="Share of operations rate-limited."
)
@click.option(
    "--backend-timeout-rate",
    type=_RATE,
    default=0.0,
    help="Share of operations answered 'backend timed out' (applied or not, by a coin).",
)
@click.option(
    "--lost-rate", type=_RATE, default=0.0, help="Share of operations whose answer is lost."
)
@click.option(
    "--lost-mode",
    type=click.Choice(["hang", "drop"]),
    default="hang",
    show_default=True,
    help="A lost answer hangs (for --lost-hang-s) or drops the connection.",
)
@click.option(
    "--lost-hang-s",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="How long a lost answer hangs.",
)
@click.option(
    "--fault-seed", type=int, default=0, show_default=True, help="Seed of the faults' dice."
)
def sandbox(
    host: str,
    port: int,
    seed_file: str | None,
    generate: tuple[str, ...],
    app_code: str,
    not_whitelisted: bool,
    legacy_codes: bool,
    no_log: bool,
    latency_ms: float,
    error_5xx_rate: float,
    rate_limit_rate: float,
    backend_timeout_rate: float,
    lost_rate: float,
    lost_mode: Literal["hang", "drop"],
    lost_hang_s: float,
    fault_seed: int,
) -> None:
    """Serve a stand-in of the ITSM API (ESB and gateway paths) until Ctrl-C.

    It answers like the real server, traps included (errors with HTTP 200, the
    double-suspend bug). App code batchops-sandbox, secret sandbox-secret. The rates
    and --latency-ms inject faults; 'python -m batchops.sandbox' is this command.

    \b
    Example:
      batchops sandbox --port 8765 --seed samples/tickets.csv
      BK_APP_CODE=batchops-sandbox BK_APP_SECRET=sandbox-secret BK_USERNAME=admin \\
        batchops run samples/tickets.csv --base-url http://127.0.0.1:8765
    """
    from . import sandbox as stand_in
    from .loader import load_batch

    rows: list[tuple[str, str]] = []
    try:
        if seed_file:
            batch = load_batch(seed_file)
            rows = [(str(batch.sn[i]), str(batch.operator[i])) for i in range(len(batch))]
    except BatchopsError as error:
        _fail(error)
    generated: list[tuple[str, int]] = []
    for spec in generate:
        prefix, _, count = spec.rpartition(":")
        if not prefix or not count.isdigit():
            raise click.BadParameter("use PREFIX:COUNT, e.g. BENCH:20000", param_hint="--generate")
        generated.append((prefix, int(count)))
    faults = stand_in.Faults(
        seed=fault_seed,
        latency_ms=latency_ms,
        error_5xx_rate=error_5xx_rate,
        rate_limit_rate=rate_limit_rate,
        backend_timeout_rate=backend_timeout_rate,
        lost_rate=lost_rate,
        lost_mode=lost_mode,
        lost_hang_s=lost_hang_s,
    )
    config = stand_in.SandboxConfig(
        app_code=app_code,
        whitelisted=not not_whitelisted,
        legacy_codes=legacy_codes,
        record_log=not no_log,
        faults=faults,
    )
    stand_in.serve(host=host, port=port, config=config, seed_rows=rows, generate=generated)


def tolerant_streams() -> None:
    """Never crash on a console that cannot show a character (a GBK code page and an
    emoji in a path or a server message): such characters are written escaped."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", "") == "strict":
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def entry() -> NoReturn:
    """The ``batchops`` command: the CLI, then an exit without the interpreter's teardown.

    When the command returns, every report, summary and checkpoint is written, closed and
    in place; all that is left is freeing pandas' and numpy's modules object by object,
    about 0.2 s on every run (more than many a run's sending). Tests call :func:`main`.
    """
    tolerant_streams()
    try:
        main()
        status: object = 0
    except SystemExit as exc:
        status = exc.code
    if status is None:
        code = 0
    elif isinstance(status, int):
        code = status
    else:
        # sys.exit("text") prints the text and exits 1; keep that.
        with contextlib.suppress(OSError):
            print(status, file=sys.stderr)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
