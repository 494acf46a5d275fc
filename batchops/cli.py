"""The command line: parse options, call :mod:`batchops.api`, turn its errors into exit codes.

Nothing here knows HTTP, files or SQLite. Every :class:`batchops.errors.BatchopsError`
becomes one ``Error: …`` line on stderr and its class's exit code, never a traceback.

Exit codes (stable, for cron):
  0  every row success or skipped
  1  finished, some rows failed, invalid or unknown (or the run was not confirmed)
  2  usage, configuration or input error: nothing was sent
  3  stopped early by a fatal answer or the failure brake: rows not done are pending
  130 interrupted (Ctrl-C, SIGTERM): rows not done are pending
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from . import __version__, api
from .config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT_S,
    ENV_APP_CODE,
    ENV_APP_SECRET,
    ENV_BASE_URL,
    ENV_TOKEN,
    ENV_USERNAME,
)
from .console import format_summary, progress_for
from .errors import BatchopsError
from .model import RunSummary

F = TypeVar("F", bound=Callable[..., Any])


class BatchopsClickError(click.ClickException):
    """A BatchopsError shown the click way (``Error: …``) with the error's own exit code."""

    def __init__(self, error: BatchopsError) -> None:
        super().__init__(str(error))
        # click types exit_code as a class variable; each error class has its own code.
        self.exit_code = error.exit_code  # type: ignore[misc]


def _input_options(func: F) -> F:
    options = [
        click.argument(
            "input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=str)
        ),
        click.option(
            "--output",
            "-o",
            type=click.Path(dir_okay=False, path_type=str),
            help="Where to write the report. Default: beside INPUT, same format "
            "(tickets.csv → tickets.report.csv).",
        ),
        click.option("--sheet", help="XLSX: the sheet to read (default: the first)."),
        click.option(
            "--encoding",
            help="CSV: the text encoding (default: detect UTF-8, UTF-8 with BOM or GB18030).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _target_options(func: F) -> F:
    options = [
        click.option(
            "--base-url",
            envvar=ENV_BASE_URL,
            show_envvar=True,
            help="ITSM address: the ESB host (https://paas.example.com) or, with "
            "--gateway apigw, the API gateway stage (https://bkapi.example.com/api/bk-itsm/prod).",
        ),
        click.option(
            "--gateway",
            type=click.Choice(["esb", "apigw"]),
            default="esb",
            show_default=True,
            help="esb: credentials in the JSON body (/api/c/compapi/v2/itsm/…); apigw: "
            "credentials only in the X-Bkapi-Authorization header ({base}/v2/itsm/…).",
        ),
        click.option(
            "--app-code",
            envvar=ENV_APP_CODE,
            show_envvar=True,
            help=f"BlueKing app code. The app secret is read only from ${ENV_APP_SECRET}.",
        ),
        click.option(
            "--username",
            envvar=ENV_USERNAME,
            show_envvar=True,
            help=f"bk_username (apps on the ESB whitelist); otherwise set ${ENV_TOKEN}.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=DEFAULT_TIMEOUT_S,
            show_default=True,
            help="Seconds to wait for one answer.",
        ),
        click.option(
            "--precheck/--no-precheck",
            default=True,
            show_default=True,
            help="Read every ticket's status first and skip rows whose ticket is already "
            "where the action leads (SUSPEND on SUSPENDED is never sent).",
        ),
        click.option(
            "--ca-bundle",
            type=click.Path(exists=True, dir_okay=False),
            help="PEM file of CA certificates to trust (private CA).",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="Do not verify TLS certificates (dangerous: anyone on the path can read "
            "your app secret).",
        ),
        click.option(
            "--sandbox",
            is_flag=True,
            help="Run against an embedded stand-in ITSM server seeded with INPUT's tickets "
            "(no network, no credentials needed).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


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


def _finish(summary: RunSummary, quiet: bool) -> None:
    if not quiet or summary.exit_code:
        click.echo(format_summary(summary))
    sys.exit(summary.exit_code)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Start with: batchops run samples/tickets.csv --sandbox",
)
@click.version_option(__version__, prog_name="batchops")
def main() -> None:
    """Suspend, resume, withdraw or terminate many BlueKing ITSM tickets from a CSV/XLSX file.

    Each row names a ticket (sn), an operator, an action and a message. batchops
    validates the file, sends one operate_ticket call per row concurrently, and writes
    the file back as a report with each row's status, code and message.
    """


@main.command()
@_input_options
@_target_options
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1, max=1000),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Requests in flight at once (rows of one ticket always go one at a time).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0, max=20),
    default=3,
    show_default=True,
    help="Resends of a row whose request was certainly not applied (429, 503, connect "
    "error) or whose ticket was read back unchanged.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="At most this many requests per second, reads included (gateway quota).",
)
@click.option(
    "--max-failures",
    metavar="N|P%|off",
    help="Stop sending once more than N rows (or P% of answered rows) failed. "
    "Default: stop after 50 failures in a row.",
)
@click.option(
    "--readback-delay",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds to wait before reading a ticket back after a lost answer.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=str),
    help="The checkpoint file (default: beside INPUT, tickets.csv → tickets.checkpoint.db). "
    "Running the same command again continues where a run stopped.",
)
@click.option(
    "--no-checkpoint",
    is_flag=True,
    help="Keep no checkpoint (a killed run cannot be resumed safely).",
)
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
@click.option("--strict", is_flag=True, help="Send nothing if any row is invalid.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display; summary only on error.")
def run(
    input_path: str,
    output: str | None,
    sheet: str | None,
    encoding: str | None,
    base_url: str | None,
    gateway: str,
    app_code: str | None,
    username: str | None,
    timeout: float,
    precheck: bool,
    ca_bundle: str | None,
    insecure: bool,
    sandbox: bool,
    concurrency: int,
    retries: int,
    rate: float | None,
    max_failures: str | None,
    readback_delay: float,
    checkpoint: str | None,
    no_checkpoint: bool,
    fresh: bool,
    retry_failed: bool,
    strict: bool,
    yes: bool,
    quiet: bool,
) -> None:
    """Validate INPUT, send every valid row, write the report.

    \b
    Example:
      export BK_APP_CODE=my-app BK_APP_SECRET=... BK_USERNAME=admin
      batchops run tickets.xlsx --base-url https://paas.example.com -c 50
    """
    _warn_insecure(insecure)
    confirm = None
    if not yes and sys.stdin.isatty():

        def confirm(overview: api.PlanOverview) -> bool:
            click.echo(overview.describe(), err=True)
            return click.confirm("Send these operations?", default=False, err=True)

    try:
        summary = api.run_batch(
            input_path,
            base_url=base_url,
            gateway=gateway,  # type: ignore[arg-type]
            app_code=app_code,
            username=username,
            concurrency=concurrency,
            timeout=timeout,
            output=output,
            sheet=sheet,
            encoding=encoding,
            strict=strict,
            precheck=precheck,
            retries=retries,
            rate=rate,
            max_failures=max_failures,
            readback_delay=readback_delay,
            checkpoint=checkpoint,
            use_checkpoint=not no_checkpoint,
            fresh=fresh,
            retry_failed=retry_failed,
            ca_bundle=ca_bundle,
            insecure=insecure,
            sandbox=sandbox,
            progress=progress_for(sys.stderr, quiet=quiet),
            confirm=confirm,
            handle_signals=True,
        )
    except BatchopsError as error:
        _fail(error)
        return
    _finish(summary, quiet)


@main.command()
@_input_options
@_target_options
def plan(
    input_path: str,
    output: str | None,
    sheet: str | None,
    encoding: str | None,
    base_url: str | None,
    gateway: str,
    app_code: str | None,
    username: str | None,
    timeout: float,
    precheck: bool,
    ca_bundle: str | None,
    insecure: bool,
    sandbox: bool,
) -> None:
    """Validate INPUT and write the report without sending any operation.

    Rows that would be sent are 'pending'. With an ITSM address (or --sandbox) the
    tickets are read first and rows that need no action are shown 'skipped'.

    \b
    Example:
      batchops plan tickets.csv                     # validation only
      batchops plan tickets.csv --base-url https://paas.example.com
    """
    _warn_insecure(insecure)
    try:
        summary = api.plan_batch(
            input_path,
            base_url=base_url,
            gateway=gateway,  # type: ignore[arg-type]
            app_code=app_code,
            username=username,
            output=output,
            sheet=sheet,
            encoding=encoding,
            precheck=precheck,
            timeout=timeout,
            sandbox=sandbox,
            ca_bundle=ca_bundle,
            insecure=insecure,
        )
    except BatchopsError as error:
        _fail(error)
        return
    _finish(summary, False)


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
    try:
        summary = api.report_from_checkpoint(
            checkpoint_path, output=output, input_path=input_path, sheet=sheet, encoding=encoding
        )
    except BatchopsError as error:
        _fail(error)
        return
    _finish(summary, False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Delay every answer.")
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Create the tickets named in this CSV/XLSX (the first operator of each ticket "
    "is its creator and processor).",
)
@click.option(
    "--generate",
    metavar="PREFIX:COUNT",
    help="Create COUNT RUNNING tickets PREFIX0000001… whose processor is admin.",
)
def sandbox(
    host: str, port: int, latency_ms: float, seed_file: str | None, generate: str | None
) -> None:
    """Serve a stand-in of the ITSM API (ESB and gateway paths) until Ctrl-C.

    It answers like the real server, traps included (errors with HTTP 200, the
    double-suspend bug). App code batchops-sandbox, secret sandbox-secret.

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
    if generate:
        prefix, _, count = generate.rpartition(":")
        if not prefix or not count.isdigit():
            raise click.BadParameter("use PREFIX:COUNT, e.g. BENCH:20000", param_hint="--generate")
        generated.append((prefix, int(count)))
    stand_in.serve(
        host=host,
        port=port,
        config=stand_in.SandboxConfig(faults=stand_in.Faults(latency_ms=latency_ms)),
        seed_rows=rows,
        generate=generated,
    )
