"""The CLI's shared parts: option groups, errors the click way, and the typed hand-over of
parsed options to the API's records (:func:`pick`). What a command says to a person or a
log collector goes through :mod:`batchops.cli.console`, the one printer.

Settings left unset on the command line are ``None``, so that the API can apply one
precedence everywhere: flag > environment > profile > default. Numbers are checked in
:data:`batchops.settings.ranges.RANGES` whatever their source; the help texts show the same
bounds and the defaults of :data:`batchops.settings.sources.SETTINGS`. Each option is named like
the field of :mod:`batchops.settings.records`'s records it fills, so a command builds those
records by name and lists no option twice.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click

from batchops.errors import BatchopsError
from batchops.i18n import N_
from batchops.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_OUTAGE_WAIT_S,
    DEFAULT_READBACK_DELAY_S,
    DEFAULT_RETRIES,
    DEFAULT_SERVER_TIMEOUT_S,
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

from .words import PathType, option

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

F = TypeVar("F", bound=Callable[..., Any])
D = TypeVar("D", bound="DataclassInstance")
T = TypeVar("T")


class BatchopsClickError(click.ClickException):
    """A BatchopsError shown the click way (``Error: …``) with the error's own exit code."""

    def __init__(self, error: BatchopsError) -> None:
        super().__init__(str(error))
        # click types exit_code as a class variable; each error class has its own code.
        self.exit_code = error.exit_code  # type: ignore[misc]


def options(*options: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for each in reversed(options):
            func = each(func)
        return func

    return apply


def _input_options(output_help: str) -> Callable[[F], F]:
    """INPUT and how it is read, and ``--output`` (whose default each command names)."""
    return options(
        click.argument("input_path", metavar="INPUT", type=PathType(dir_okay=False, path_type=str)),
        click.option(
            "--output", "-o", type=PathType(dir_okay=False, path_type=str), help=output_help
        ),
        click.option(
            "--sheet", help=N_("XLSX: the sheet to read (default: the first visible one).")
        ),
        click.option(
            "--encoding",
            help=N_(
                "CSV: the text encoding (default: detect UTF-8, UTF-8 with BOM or GB18030/GBK)."
            ),
        ),
        click.option(
            "--include-hidden",
            is_flag=True,
            help=N_(
                "XLSX: also send the rows hidden or filtered out in the sheet (by default they "
                "are left out: reported skipped, never sent)."
            ),
        ),
    )


input_options = _input_options(
    N_(
        "Where to write the report. Default: beside INPUT, same format "
        "(tickets.csv → tickets.report.csv)."
    )
)
#: ``plan`` writes its own file, never over a run's report (report.paths.default_plan_path).
plan_input_options = _input_options(
    N_(
        "Where to write the plan. Default: beside INPUT, same format "
        "(tickets.csv → tickets.plan.csv), never over a run's report."
    )
)

connection_options = options(
    option(
        "--profile",
        help=N_("Use this profile of batchops.toml [env: {env}]."),
        help_fields={"env": ENV_PROFILE},
    ),
    option(
        "--config",
        type=PathType(dir_okay=False, path_type=str),
        help=N_(
            "The profile file (default: ./batchops.toml, then ~/.config/batchops/batchops.toml) "
            "[env: {env}]."
        ),
        help_fields={"env": ENV_CONFIG},
    ),
    option(
        "--base-url",
        help=N_(
            "ITSM address: the ESB host (https://paas.example.com) or, with --gateway apigw, "
            "the API gateway stage (https://bkapi.example.com/api/bk-itsm/prod) [env: {env}]."
        ),
        help_fields={"env": ENV_BASE_URL},
    ),
    click.option(
        "--gateway",
        type=click.Choice(["esb", "apigw"]),
        help=N_(
            "esb (default): credentials in the JSON body (/api/c/compapi/v2/itsm/…); apigw: "
            "credentials only in the X-Bkapi-Authorization header ({base}/v2/itsm/…)."
        ),
    ),
    option(
        "--app-code",
        help=N_(
            "BlueKing app code [env: {env}]. The app secret is read only from the "
            "environment [env: {secret_env}], never from a flag."
        ),
        help_fields={"env": ENV_APP_CODE, "secret_env": ENV_APP_SECRET},
    ),
    option(
        "--username",
        help=N_(
            "bk_username, for apps on the ESB whitelist [env: {env}]; otherwise set "
            "a bk_token [env: {token_env}]."
        ),
        help_fields={"env": ENV_USERNAME, "token_env": ENV_TOKEN},
    ),
    option(
        "--timeout",
        type=click.FLOAT,
        help=N_("Seconds to wait for one answer, {rule} [default: {default}]."),
        help_fields={"rule": RANGES["timeout"].rule, "default": f"{DEFAULT_TIMEOUT_S:g}"},
    ),
    click.option(
        "--ca-bundle",
        type=PathType(exists=True, dir_okay=False),
        help=N_("PEM file of CA certificates to trust (private CA)."),
    ),
    click.option(
        "--insecure",
        is_flag=True,
        help=N_(
            "Do not verify TLS certificates (dangerous: anyone on the path can read your "
            "app secret)."
        ),
    ),
    click.option(
        "--proxy",
        metavar="URL|none",
        help=N_(
            "Send every request through this HTTP proxy (http://[user:pass@]host:port), over "
            "HTTPS_PROXY/HTTP_PROXY/NO_PROXY, which are honoured otherwise; 'none' connects "
            "directly."
        ),
    ),
)

target_options = options(
    connection_options,
    click.option(
        "--precheck/--no-precheck",
        default=True,
        show_default=True,
        help=N_(
            "Read every ticket's status first and skip rows whose ticket is already where "
            "the action leads (SUSPEND on SUSPENDED is never sent)."
        ),
    ),
    click.option(
        "--sandbox",
        is_flag=True,
        help=N_(
            "Run against an embedded stand-in ITSM server seeded with INPUT's tickets (no "
            "network, no credentials needed)."
        ),
    ),
    click.option(
        "--summary-json",
        type=PathType(dir_okay=False, path_type=str),
        help=N_(
            "Also write the run's summary as JSON (start and end times, version, counts, "
            "elapsed, absolute paths, exit code); '-' writes it to stdout."
        ),
    ),
    click.option(
        "--verbose",
        "-v",
        count=True,
        help=N_(
            "One stderr line per request and answer (time, API, sn, action, HTTP status, "
            "code, ms, attempt); -vv adds headers and bodies. Credentials are masked."
        ),
    ),
)

# Numbers are checked in settings.RANGES, whatever their source (flag, profile, keyword),
# so that a profile's value is refused exactly as the flag's is: no click range here.
retries_option = option(
    "--retries",
    type=click.INT,
    help=N_(
        "Resends of a row whose request was certainly not applied (429, 503, connect error) "
        "or whose ticket was read back unchanged ({rule}) [default: {default}]."
    ),
    help_fields={"rule": RANGES["retries"].rule, "default": str(DEFAULT_RETRIES)},
)

rate_option = option(
    "--rate",
    type=click.FLOAT,
    help=N_("At most this many requests per second, reads included (gateway quota; {rule})."),
    help_fields={"rule": RANGES["rate"].rule},
)


def pick(record: type[D], params: Mapping[str, object], **given: object) -> D:
    """``record`` (a dataclass) built from the parsed options named like its fields, and
    from ``given`` for what no option names as it is.

    Each value is checked against its field's type, so an option and a field that drift
    apart fail here, loudly, not somewhere down the run.
    """
    hints = typing.get_type_hints(record)
    names = {item.name for item in dataclasses.fields(record)}
    unknown = set(given) - names
    if unknown:
        raise TypeError(f"{record.__name__} has no field {', '.join(sorted(unknown))}")
    values: dict[str, object] = {}
    for name in sorted(names & (set(params) | set(given))):
        value = given[name] if name in given else params[name]
        if not _fits(value, hints[name]):
            raise TypeError(f"{record.__name__}.{name} takes {hints[name]}, not {value!r}")
        values[name] = value
    return record(**values)


def param(params: Mapping[str, object], name: str, kind: type[T]) -> T:
    """One parsed option that fills no record, checked against its type."""
    value = params[name]
    if not isinstance(value, kind):
        raise TypeError(f"option {name} should be {kind.__name__}, not {value!r}")
    return value


def _fits(value: object, hint: object) -> bool:
    """Whether ``value`` is of the type ``hint`` (unions, Literal and generics by origin)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is None or hint is type(None):
        return value is None
    if hint in (int, float) and isinstance(value, bool):
        return False
    if hint is float:
        return isinstance(value, int | float)
    kind = origin or hint
    return isinstance(kind, type) and isinstance(value, kind)


def fail(error: BatchopsError) -> None:
    raise BatchopsClickError(error) from None


def _statuses(text: str | None) -> tuple[str, ...] | None:
    """``--only failed,unknown``: the statuses named (None when none is)."""
    named = tuple(s for s in (text or "").split(",") if s.strip())
    return named or None


run_options = options(
    option(
        "--concurrency",
        "-c",
        type=click.INT,
        help=N_(
            "Requests in flight at once; rows of one ticket always go one at a time "
            "({rule}) [default: {default}]."
        ),
        help_fields={"rule": RANGES["concurrency"].rule, "default": str(DEFAULT_CONCURRENCY)},
    ),
    retries_option,
    rate_option,
    option(
        "--max-failures",
        metavar="N|P%|off",
        help=N_(
            "Stop sending once more than N rows (or P% of answered rows) failed "
            "(N {rule}) [default: stop after 50 failures in a row]."
        ),
        help_fields={"rule": RANGES["max_failures"].rule},
    ),
    option(
        "--readback-delay",
        type=click.FLOAT,
        help=N_(
            "Seconds between read-backs of parked tickets (at most 2), {rule} [default: {default}]."
        ),
        help_fields={
            "rule": RANGES["readback_delay"].rule,
            "default": f"{DEFAULT_READBACK_DELAY_S:g}",
        },
    ),
    option(
        "--server-timeout",
        type=click.FLOAT,
        help=N_(
            "Seconds a request whose answer was lost may still land (the gateway gives up "
            "after 30, ITSM's worker runs on): meanwhile its ticket is parked and read back, "
            "and only an unchanged ticket this long after the request left is sent again, "
            "{rule} [default: {default}]."
        ),
        help_fields={
            "rule": RANGES["server_timeout"].rule,
            "default": f"{DEFAULT_SERVER_TIMEOUT_S:g}",
        },
    ),
    option(
        "--outage-wait",
        type=click.FLOAT,
        help=N_(
            "Seconds to wait for an unreachable ITSM (or a long rate-limit pause) before "
            "stopping, resumable, {rule} [default: {default}]."
        ),
        help_fields={"rule": RANGES["outage_wait"].rule, "default": f"{DEFAULT_OUTAGE_WAIT_S:g}"},
    ),
    click.option(
        "--checkpoint",
        type=PathType(dir_okay=False, path_type=str),
        help=N_(
            "The checkpoint file (default: in the .batchops folder beside INPUT, "
            "tickets.csv → .batchops/tickets.checkpoint.db). "
            "Running the same command again continues where a run stopped."
        ),
    ),
    click.option(
        "--no-checkpoint",
        "use_checkpoint",
        flag_value=False,
        default=True,
        help=N_("Keep no checkpoint (no safe resume)."),
    ),
    click.option(
        "--fresh",
        is_flag=True,
        help=N_("Start over: set the existing checkpoint aside as a backup and send every row."),
    ),
    click.option(
        "--retry-failed",
        is_flag=True,
        help=N_("Resume, and also resend rows that ended failed or unknown (not invalid ones)."),
    ),
    click.option(
        "--only",
        metavar="STATUS[,STATUS]",
        callback=lambda _ctx, _param, text: _statuses(text),
        help=N_(
            "INPUT is an earlier report: send only its rows with these statuses "
            "(e.g. failed,unknown); the others keep their result."
        ),
    ),
    option(
        "--canary",
        type=click.INT,
        metavar="N",
        help=N_(
            "Send N rows first and show them; on a terminal ask before the rest (even with "
            "--yes), elsewhere go on only if all N succeeded ({rule})."
        ),
        help_fields={"rule": RANGES["canary"].rule},
    ),
    click.option(
        "--failures",
        type=PathType(dir_okay=False, path_type=str),
        help=N_(
            "Also write just the rows needing attention (failed, unknown, invalid) to this "
            "file; fix them and run it again."
        ),
    ),
    click.option("--strict", is_flag=True, help=N_("Send nothing if any row is invalid.")),
    click.option(
        "--yes", "-y", is_flag=True, help=N_("Do not ask for confirmation on a terminal.")
    ),
    click.option(
        "--quiet", "-q", is_flag=True, help=N_("No progress display; summary only on error.")
    ),
    click.option("--log-json", is_flag=True, help=N_("Log events as JSON lines on stderr.")),
    click.option(
        "--notify",
        metavar="URL",
        multiple=True,
        help=N_(
            "Send the run's summary here when it ends (repeatable): any Apprise URL, e.g. "
            "wecombot://KEY, dingtalk://TOKEN, feishu://TOKEN, slack://…, mailto://…, "
            "json://host/path."
        ),
    ),
    click.option(
        "--notify-on",
        type=click.Choice(["problems", "always"]),
        help=N_("problems: only when the exit code is not 0 [default]; always: after every run."),
    ),
)
