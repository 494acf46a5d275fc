"""The typed settings of one run (:class:`RunConfig`) and one plan (:class:`PlanConfig`).

Both are built once, at the start, by :func:`run_config` and :func:`plan_config` from the
caller's options: every setting comes from flag (or Python keyword) > environment >
profile > default through :func:`batchops.config.resolve`, which checks each number
against :data:`batchops.config.RANGES` whatever its source. What follows reads these
frozen records and nothing else: no step looks a setting up again, and no default is
written anywhere but in :data:`batchops.config.SETTINGS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_OUTAGE_WAIT_S,
    DEFAULT_READBACK_DELAY_S,
    DEFAULT_RETRIES,
    DEFAULT_SERVER_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    Credentials,
    Gateway,
    Resolved,
    credentials_from,
    masked_url,
    resolve,
)
from .errors import ConfigError


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
            ratio = float(text[:-1]) / 100.0
            if not 0.0 <= ratio <= 1.0:
                raise ValueError("a percentage between 0% and 100%")
            if ratio == 0.0:
                # "No failure is acceptable": the first one stops, as with a count of 0.
                return cls(count=0, consecutive=None)
            return cls(ratio=ratio, consecutive=None)
        count = int(text)
        if count < 0:
            raise ValueError("a count of 0 or more")
        return cls(count=count, consecutive=None)

    def tripped(self, answered: int, failures: int, streak: int) -> str | None:
        if self.count is not None and failures > self.count:
            return f"{failures} rows failed, more than --max-failures {self.count}"
        ratio_applies = self.ratio is not None and answered >= self.min_answered
        if ratio_applies and failures / answered > (self.ratio or 0.0):
            return (
                f"{failures} of {answered} answered rows failed, more than "
                f"--max-failures {self.ratio:.0%}"
            )
        if self.consecutive is not None and streak >= self.consecutive:
            return f"the last {streak} answered rows all failed"
        return None


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """How rows are sent: the executor's settings (defaults from :mod:`batchops.config`)."""

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


@dataclass(frozen=True, slots=True)
class Files:
    """The file a run reads and the files it may write."""

    input_path: Path
    output: Path | None = None
    sheet: str | None = None
    encoding: str | None = None
    failures: Path | None = None
    summary_json: Path | None = None
    #: An explicit checkpoint path (None: beside the input, unless none is kept).
    checkpoint: Path | None = None
    use_checkpoint: bool = True


@dataclass(frozen=True, slots=True)
class RunOptions:
    """A run's options as the caller gave them: ``None`` means "not given here"."""

    base_url: str | None = None
    gateway: Gateway | None = None
    app_code: str | None = None
    username: str | None = None
    concurrency: int | None = None
    timeout: float | None = None
    retries: int | None = None
    rate: float | None = None
    max_failures: str | FailureBrake | None = None
    readback_delay: float | None = None
    server_timeout: float | None = None
    outage_wait: float | None = None
    ca_bundle: str | None = None
    profile: str | None = None
    config: str | os.PathLike[str] | None = None
    insecure: bool = False
    sandbox: bool = False
    proxy: str | None = None
    notify: Sequence[str] | None = None
    notify_on: str | None = None


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a run needs to know, checked once."""

    files: Files
    connection: Connection
    policy: SendPolicy
    #: The merged settings and where each came from (for advice and the confirmation).
    settings: Resolved
    env: Mapping[str, str]
    strict: bool = False
    precheck: bool = True
    fresh: bool = False
    retry_failed: bool = False
    only: tuple[str, ...] | None = None
    canary: int | None = None
    #: The command line that started the run: the advice names the command that finishes it.
    command: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class PlanConfig:
    """Everything a plan needs to know, checked once."""

    files: Files
    connection: Connection
    settings: Resolved
    precheck: bool = True

    @property
    def reads(self) -> bool:
        """Whether the plan reads ticket statuses (it needs a target for that)."""
        return self.precheck and (self.connection.sandbox or bool(self.connection.base_url))


Say = Callable[[str], None]


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value else None


def resolve_run(options: RunOptions, env: Mapping[str, str]) -> Resolved:
    """A run's merged settings, before they are checked (the notifier needs them first)."""
    return _resolve(options, env, keys=_RUN_KEYS)


def _resolve(options: RunOptions, env: Mapping[str, str], *, keys: Collection[str]) -> Resolved:
    given: dict[str, object] = {
        "base_url": options.base_url,
        "gateway": options.gateway,
        "app_code": options.app_code,
        "username": options.username,
        "concurrency": options.concurrency,
        "timeout": options.timeout,
        "retries": options.retries,
        "rate": options.rate,
        "max_failures": options.max_failures if isinstance(options.max_failures, str) else None,
        "readback_delay": options.readback_delay,
        "server_timeout": options.server_timeout,
        "outage_wait": options.outage_wait,
        "ca_bundle": options.ca_bundle,
        "proxy": options.proxy,
        "notify": list(options.notify) if options.notify else None,
        "notify_on": options.notify_on,
    }
    return resolve(
        {key: value for key, value in given.items() if key in keys},
        profile=options.profile,
        config=options.config,
        env=env,
    )


def _credentials(settings: Resolved, env: Mapping[str, str]) -> Credentials:
    return credentials_from(
        settings["app_code"],
        settings["username"],
        env,
        secret_env=settings["secret_env"],
        token_env=settings["token_env"],
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
            f"--max-failures takes a count (10), a percentage (5%) or 'off', not {value!r} ({exc})"
        ) from None


def _policy(settings: Resolved, brake: str | FailureBrake | None) -> SendPolicy:
    concurrency = int(settings["concurrency"])
    rate = settings["rate"]
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if float(settings["timeout"]) <= 0:
        raise ConfigError("--timeout must be more than 0 seconds")
    if rate is not None and float(rate) <= 0:
        raise ConfigError("--rate must be more than 0 requests per second")
    return SendPolicy(
        concurrency=concurrency,
        retries=max(0, int(settings["retries"])),
        rate=float(rate) if rate is not None else None,
        brake=brake if isinstance(brake, FailureBrake) else _brake(settings["max_failures"]),
        readback_delay_s=max(0.0, float(settings["readback_delay"])),
        server_timeout_s=max(0.0, float(settings["server_timeout"])),
        outage_wait_s=max(0.0, float(settings["outage_wait"])),
    )


def _proxy(settings: Resolved) -> str | None:
    """The explicit proxy (flag or profile), checked; None leaves it to the environment."""
    value = settings["proxy"]
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    if value.lower() != "none" and not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"--proxy must be an http:// or https:// URL (or 'none' to connect directly), "
            f"not {masked_url(value)!r}"
        )
    return value


def _target_url(settings: Resolved) -> str:
    url = str(settings["base_url"] or "").strip()
    if not url:
        raise ConfigError(
            "no ITSM address: pass --base-url URL, set BATCHOPS_BASE_URL or use a "
            "--profile (or try --sandbox to run against the embedded stand-in)"
        )
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--base-url must start with http:// or https://: {url!r}")
    return url


def run_config(
    files: Files,
    options: RunOptions,
    settings: Resolved,
    *,
    say: Say,
    env: Mapping[str, str],
    strict: bool = False,
    precheck: bool = True,
    fresh: bool = False,
    retry_failed: bool = False,
    only: Collection[str] | None = None,
    canary: int | None = None,
    command: Sequence[str] | None = None,
) -> RunConfig:
    """Check a run's settings (from :func:`resolve_run`); the merge's warnings go to
    ``say`` first."""
    policy = _policy(settings, options.max_failures)
    for warning in settings.warnings:
        say(warning)
    url, credentials = "", None
    if not options.sandbox:
        url = _target_url(settings)
        credentials = _credentials(settings, env)
    if canary is not None and canary < 1:
        raise ConfigError("--canary must be at least 1 row")
    connection = _connection(settings, options, url, credentials)
    return RunConfig(
        files=files,
        connection=connection,
        policy=policy,
        settings=settings,
        env=env,
        strict=strict,
        precheck=precheck,
        fresh=fresh,
        retry_failed=retry_failed,
        only=tuple(only) if only else None,
        canary=canary,
        command=tuple(command) if command else None,
    )


def _connection(
    settings: Resolved, options: RunOptions, url: str, credentials: Credentials | None
) -> Connection:
    """Where to send, and how: the same for a run and a plan."""
    return Connection(
        base_url=url,
        gateway=settings["gateway"],
        sandbox=options.sandbox,
        timeout_s=float(settings["timeout"]),
        ca_bundle=settings["ca_bundle"],
        insecure=options.insecure,
        proxy=_proxy(settings),
        credentials=credentials,
    )


def plan_config(
    files: Files, options: RunOptions, *, say: Say, env: Mapping[str, str], precheck: bool = True
) -> PlanConfig:
    """Resolve and check a plan's settings: credentials only when tickets are read."""
    settings = _resolve(options, env, keys=_PLAN_KEYS)
    for warning in settings.warnings:
        say(warning)
    url = str(settings["base_url"] or "").strip()
    reads = precheck and (options.sandbox or bool(url))
    credentials = _credentials(settings, env) if reads and not options.sandbox else None
    connection = _connection(settings, options, url, credentials)
    return PlanConfig(files=files, connection=connection, settings=settings, precheck=precheck)


_RUN_KEYS = frozenset(
    {
        "base_url",
        "gateway",
        "app_code",
        "username",
        "concurrency",
        "timeout",
        "retries",
        "rate",
        "max_failures",
        "readback_delay",
        "server_timeout",
        "outage_wait",
        "ca_bundle",
        "proxy",
        "notify",
        "notify_on",
    }
)
_PLAN_KEYS = frozenset(
    {"base_url", "gateway", "app_code", "username", "timeout", "ca_bundle", "proxy"}
)
