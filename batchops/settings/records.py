"""The typed settings of one run (:class:`RunConfig`) and one plan (:class:`PlanConfig`).

The caller gives them as frozen records, each field once: :class:`RunOptions` (where
ITSM is, how to send, whom to notify), :class:`Files` (what is read and written) and
:class:`RunChoices` (what this run does). The CLI builds the same records from its
options by name. :func:`run_config` and :func:`plan_config` check them once, at the
start: every setting comes from flag (or Python keyword) > environment > profile >
default through :func:`batchops.settings.sources.resolve`, which checks each number against
:data:`batchops.settings.ranges.RANGES` whatever its source. What follows reads these frozen
records and nothing else: no step looks a setting up again, and no default is written
anywhere but in :data:`batchops.settings.sources.SETTINGS`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from batchops.errors import ConfigError
from batchops.i18n import _

from .ranges import RANGES
from .sources import (
    DEFAULT_CONCURRENCY,
    DEFAULT_OUTAGE_WAIT_S,
    DEFAULT_READBACK_DELAY_S,
    DEFAULT_RETRIES,
    DEFAULT_SERVER_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    ENV_PROFILE,
    SETTINGS,
    Credentials,
    Gateway,
    Resolved,
    SettingValue,
    Values,
    check_setting,
    credentials_from,
    resolve,
)


@dataclass(frozen=True, slots=True)
class FailureBrake:
    """When to stop sending because too many rows fail.

    ``count``: stop once more than this many rows failed. ``ratio``: stop once the share
    of failed rows passes it, after ``min_answered`` rows. ``consecutive``: stop after this
    many failures in a row with no success between them (catches a systematic error early).
    """

    count: int | None = None
    ratio: float | None = None
    consecutive: int | None = 50
    min_answered: int = 20

    @classmethod
    def parse(cls, text: str) -> FailureBrake:
        text = text.strip()
        if text.lower() in {"off", "none"} or text == "":
            return cls(consecutive=None)
        if text.endswith("%"):
            try:
                ratio = float(text[:-1]) / 100.0
            except ValueError:  # Python's own words ("could not convert …") help nobody
                raise ValueError(_("a percentage between 0% and 100%")) from None
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(_("a percentage between 0% and 100%"))
            if ratio == 0.0:
                # "No failure is acceptable": the first one stops, as with a count of 0.
                return cls(count=0, consecutive=None)
            return cls(ratio=ratio, consecutive=None)
        try:
            count = int(text)
        except ValueError:
            raise ValueError(_("not a number")) from None
        if not RANGES["max_failures"].admits(count):
            raise ValueError(_("N must be {rule}").format(rule=RANGES["max_failures"].rule()))
        return cls(count=count, consecutive=None)

    def tripped(self, answered: int, failures: int, streak: int) -> str | None:
        if self.count is not None and failures > self.count:
            return _("{failures} rows failed, more than --max-failures {count}").format(
                failures=failures, count=self.count
            )
        ratio_applies = self.ratio is not None and answered >= self.min_answered
        if ratio_applies and failures / answered > (self.ratio or 0.0):
            return _(
                "{failures} of {answered} answered rows failed, more than --max-failures {ratio}"
            ).format(failures=failures, answered=answered, ratio=f"{self.ratio:.0%}")
        if self.consecutive is not None and streak >= self.consecutive:
            return _("the last {count} answered rows all failed").format(count=streak)
        return None


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """How rows are sent: the executor's settings (defaults: :mod:`.sources`)."""

    concurrency: int = DEFAULT_CONCURRENCY
    retries: int = DEFAULT_RETRIES
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    readback_delay_s: float = DEFAULT_READBACK_DELAY_S
    #: How long after it left a request can still land (the gateway's backend timeout).
    server_timeout_s: float = DEFAULT_SERVER_TIMEOUT_S
    #: How long to wait out an outage, or a rate-limit pause, before stopping the run.
    outage_wait_s: float = DEFAULT_OUTAGE_WAIT_S
    rate: float | None = None
    brake: FailureBrake = field(default_factory=FailureBrake)
    confirm_unsuspend: bool = True


@dataclass(frozen=True, slots=True)
class Connection:
    """Where ITSM is and how to reach it. ``base_url`` is "" for the embedded stand-in."""

    base_url: str
    gateway: Gateway
    sandbox: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    ca_bundle: str | None = None
    insecure: bool = False
    #: An explicit proxy (flag or profile; "none": direct); None leaves it to the environment.
    proxy: str | None = None
    #: None for the stand-in (its own are made when it starts), or when nothing is read.
    credentials: Credentials | None = None


#: A path as a caller may give it.
StrPath = str | os.PathLike[str]


def as_path(value: StrPath | None) -> Path | None:
    """A given path as a :class:`~pathlib.Path`; None (or "") when not given."""
    return Path(value) if value else None


@dataclass(frozen=True, slots=True)
class Files:
    """How the input is read and where a run writes; None: the default beside the input.

    A plan reads ``sheet``, ``encoding`` and ``include_hidden`` and writes ``output`` and
    ``summary_json``; the rest only matters to a run.
    """

    output: StrPath | None = None
    sheet: str | None = None
    encoding: str | None = None
    #: Send the rows hidden or filtered out in an XLSX sheet too (default: left out).
    include_hidden: bool = False
    #: Also write just the rows needing attention here.
    failures: StrPath | None = None
    summary_json: StrPath | None = None
    #: An explicit checkpoint path (None: beside the input, unless none is kept).
    checkpoint: StrPath | None = None
    use_checkpoint: bool = True


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Where ITSM is, how to send and whom to tell: ``None`` means "not given here", so
    the environment, then the profile, then the default decide.

    A plan reads the target's fields (``base_url`` to ``config``, ``insecure``,
    ``sandbox``, ``proxy``), a select those and ``retries`` and ``rate``; a run all.
    """

    base_url: str | None = None
    gateway: Gateway | None = None
    app_code: str | None = None
    username: str | None = None
    timeout: float | None = None
    ca_bundle: str | None = None
    profile: str | None = None
    config: StrPath | None = None
    insecure: bool = False
    sandbox: bool = False
    proxy: str | None = None
    concurrency: int | None = None
    retries: int | None = None
    rate: float | None = None
    max_failures: str | FailureBrake | None = None
    readback_delay: float | None = None
    server_timeout: float | None = None
    outage_wait: float | None = None
    #: Apprise URLs told how the run ended, and when ("problems" or "always").
    notify: Sequence[str] | None = None
    notify_on: str | None = None


@dataclass(frozen=True, slots=True)
class RunChoices:
    """What this run does, beyond where and how it sends."""

    #: Send nothing if any row is invalid.
    strict: bool = False
    #: Read every ticket's status first and skip rows that need no action.
    precheck: bool = True
    #: Start over: the old checkpoint is set aside.
    fresh: bool = False
    #: Resume, and resend rows that ended failed or unknown.
    retry_failed: bool = False
    #: The input is an earlier report: send only its rows with these statuses.
    only: Collection[str] | None = None
    #: Send this many rows first, then ask (or go on only if all succeeded).
    canary: int | None = None
    #: The command line that started the run: the advice names the command that finishes it.
    command: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a run needs to know, checked once."""

    input_path: Path
    files: Files
    connection: Connection
    policy: SendPolicy
    #: The merged settings and where each came from (for advice and the confirmation).
    settings: Resolved
    env: Mapping[str, str]
    choices: RunChoices


@dataclass(frozen=True, slots=True)
class PlanConfig:
    """Everything a plan needs to know, checked once."""

    input_path: Path
    files: Files
    connection: Connection
    settings: Resolved
    precheck: bool = True
    #: Why the plan does not read the target it has ("" when nothing stops it).
    unread: str = ""

    @property
    def reads(self) -> bool:
        """Whether the plan reads ticket statuses (it needs a target for that)."""
        if self.unread:
            return False
        return self.precheck and (self.connection.sandbox or bool(self.connection.base_url))


Say = Callable[[str], None]

#: The settings a run resolves: every field of :class:`RunOptions` a profile may set.
RUN_KEYS = frozenset(item.name for item in dataclasses.fields(RunOptions)) & SETTINGS.keys()
#: What a plan reads of them (the target), and what a select reads.
PLAN_KEYS = frozenset(
    {"base_url", "gateway", "app_code", "username", "timeout", "ca_bundle", "proxy"}
)
SELECT_KEYS = PLAN_KEYS | {"retries", "rate"}


def resolve_options(
    options: RunOptions, env: Mapping[str, str], *, keys: Collection[str] = RUN_KEYS
) -> Resolved:
    """Merge the ``keys`` of ``options`` with the environment, the profile and the
    defaults (a run's notifier needs them before they are checked)."""
    given: dict[str, SettingValue] = {}
    for key in keys:
        value = getattr(options, key)
        if key == "max_failures" and not isinstance(value, str):
            value = None  # a FailureBrake given as such is no setting to merge
        elif key == "notify":
            value = list(value) if value else None
        given[key] = value
    return resolve(given, profile=options.profile, config=options.config, env=env)


def credentials_for(values: Values, env: Mapping[str, str]) -> Credentials:
    """The credentials the settings name, from the environment; a ConfigError if short."""
    return credentials_from(
        values.app_code,
        values.username,
        env,
        secret_env=values.secret_env,
        token_env=values.token_env,
    )


def _brake(value: str | FailureBrake | None) -> FailureBrake:
    if value is None:
        return FailureBrake()
    if isinstance(value, FailureBrake):
        return value
    try:
        return FailureBrake.parse(value)
    except ValueError as exc:
        raise ConfigError(
            _(
                "--max-failures takes a count (10), a percentage (5%) or 'off', not {value} "
                "({problem})"
            ).format(value=repr(value), problem=exc)
        ) from None


def _policy(values: Values, brake: str | FailureBrake | None) -> SendPolicy:
    """The sending settings, each already held to its range by the merge."""
    return SendPolicy(
        concurrency=values.concurrency,
        retries=values.retries,
        rate=values.rate,
        brake=brake if isinstance(brake, FailureBrake) else _brake(values.max_failures),
        readback_delay_s=values.readback_delay,
        server_timeout_s=values.server_timeout,
        outage_wait_s=values.outage_wait,
    )


def _proxy(values: Values) -> str | None:
    """The explicit proxy (flag or profile; its URL checked by the merge); None leaves it
    to the environment."""
    value = (values.proxy or "").strip()
    return value or None


def target_url(values: Values, *, hint: str) -> str:
    """The ITSM address (its URL checked by the merge); ``hint`` ends the error that says
    none was given."""
    url = (values.base_url or "").strip()
    if not url:
        raise ConfigError(
            _(
                "no ITSM address: pass --base-url URL, set BATCHOPS_BASE_URL (or BlueKing's "
                "BK_COMPONENT_API_URL; BK_API_URL_TMPL with --gateway apigw) or use a {hint}"
            ).format(hint=hint)
        )
    return url


def run_config(
    input_path: Path,
    options: RunOptions,
    settings: Resolved,
    *,
    files: Files,
    choices: RunChoices,
    say: Say,
    env: Mapping[str, str],
) -> RunConfig:
    """Check a run's settings (from :func:`resolve_options`); the merge's warnings go to
    ``say`` first."""
    policy = _policy(settings.values, options.max_failures)
    for warning in settings.warnings:
        say(warning)
    url, credentials = "", None
    if not options.sandbox:
        url = target_url(
            settings.values,
            hint=_("--profile (or try --sandbox to run against the embedded stand-in)"),
        )
        credentials = credentials_for(settings.values, env)
    check_setting("canary", choices.canary, "flag")
    connection = _connection(settings.values, options, url, credentials)
    # The caller's lists become tuples: nothing can change them once the run started.
    choices = dataclasses.replace(
        choices,
        only=tuple(choices.only) if choices.only else None,
        command=tuple(choices.command) if choices.command else None,
    )
    return RunConfig(input_path, files, connection, policy, settings, env, choices)


def _connection(
    values: Values, options: RunOptions, url: str, credentials: Credentials | None
) -> Connection:
    """Where to send, and how: the same for a run and a plan."""
    return Connection(
        base_url=url,
        gateway=values.gateway,
        sandbox=options.sandbox,
        timeout_s=values.timeout,
        ca_bundle=values.ca_bundle,
        insecure=options.insecure,
        proxy=_proxy(values),
        credentials=credentials,
    )


def select_connection(options: RunOptions, env: Mapping[str, str]) -> tuple[Connection, Values]:
    """Where a select reads from, resolved and checked as for a run (its proxy too), and
    the merged settings it reads ``retries`` and ``rate`` of."""
    values = resolve_options(options, env, keys=SELECT_KEYS).values
    url = target_url(values, hint="--profile")
    return _connection(values, options, url, credentials_for(values, env)), values


def plan_config(
    input_path: Path,
    options: RunOptions,
    *,
    files: Files,
    say: Say,
    env: Mapping[str, str],
    precheck: bool = True,
) -> PlanConfig:
    """Resolve and check a plan's settings: credentials only when tickets are read."""
    settings = resolve_options(options, env, keys=PLAN_KEYS)
    for warning in settings.warnings:
        say(warning)
    values = settings.values
    url = (values.base_url or "").strip()
    reads = precheck and (options.sandbox or bool(url))
    credentials, unread = None, ""
    if reads and not options.sandbox:
        try:
            credentials = credentials_for(values, env)
        except ConfigError as exc:
            if not _unasked_profile(settings, options, env):
                raise
            # Nobody asked for this target: the profile the file names by default did.
            # A plan that only validates needs no credentials, so it validates.
            why = str(exc).removesuffix(" Set them and run again.").rstrip(".")
            unread = _(
                "not run: the ITSM address comes from the default profile '{profile}' "
                "and its credentials are not set ({why})"
            ).format(profile=settings.profile, why=why)
            say(_("validation only; pre-check {unread}").format(unread=unread))
    connection = _connection(values, options, url, credentials)
    return PlanConfig(input_path, files, connection, settings, precheck, unread)


def _unasked_profile(settings: Resolved, options: RunOptions, env: Mapping[str, str]) -> bool:
    """The address comes from the file's ``default_profile``: neither ``--profile`` nor
    ``BATCHOPS_PROFILE`` named a profile, nor did a flag or variable give the address."""
    named = options.profile or env.get(ENV_PROFILE, "").strip()
    return not named and settings.sources.get("base_url", "").startswith("profile ")
