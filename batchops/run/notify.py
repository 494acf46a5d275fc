"""Telling the on-call person: a run's summary sent through Apprise when the run ends.

``--notify URL`` (repeatable, or the profile's ``notify`` list) takes any URL Apprise
knows — ``wecombot://``, ``dingtalk://``, ``feishu://``, ``slack://``, ``mailto://``,
``json://`` and the rest. ``--notify-on problems`` (the default) sends only when the
exit code is not 0; ``always`` sends every time. A run that stops on an error before or
while sending (exit 2, a checkpoint in use, a report that cannot be written) is told too.

What is sent: the input, the host, the exit code and what it means, rows per status,
elapsed time, the stop reason, the most frequent failure reasons, the report and
checkpoint paths. The app secret and the user token never are: every text is scrubbed
of them before it leaves.

Delivery never changes a run's outcome: a URL that cannot be reached is a warning on
stderr, the exit code stays the run's, and the wait is bounded (:data:`DELIVERY_TIMEOUT_S`)
because delivery runs in a daemon thread that the exit does not wait for. A URL that
Apprise does not understand is refused before the run starts (exit 2), so a typo is
found at the terminal, not at 03:00. URLs are never shown whole: they hold webhook keys.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchops.errors import BatchopsError, ConfigError
from batchops.exits import Exit, meaning_of
from batchops.i18n import _
from batchops.model import RunSummary
from batchops.secrets import notify_label, scrub, without_url_parts
from batchops.settings import NOTIFY_ON

from .progress import say

#: The longest a run's exit waits for its notifications, all URLs together.
DELIVERY_TIMEOUT_S = 5.0


def _apprise() -> Any:
    with _quiet():
        import apprise
    return apprise


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Apprise loads its plugins lazily, and some warn on import (imghdr on Python 3.11 and
    3.12): its business, not a problem of the run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass(frozen=True, slots=True)
class Notifier:
    """Where and when to send a run's summary. Build with :meth:`from_settings`."""

    urls: tuple[str, ...] = ()
    on: str = "problems"
    secrets: tuple[str, ...] = ()
    timeout_s: float = DELIVERY_TIMEOUT_S

    @classmethod
    def from_settings(
        cls, urls: Sequence[str] | None, on: str | None, secrets: Iterable[str] = ()
    ) -> Notifier:
        """Check the URLs and the condition now, before anything is sent."""
        chosen = tuple(u.strip() for u in urls or () if u and u.strip())
        when = (on or "problems").strip().lower()
        if when not in NOTIFY_ON:
            raise ConfigError(
                _("--notify-on takes 'problems' or 'always', not {value}").format(value=repr(on))
            )
        if chosen:
            apprise = _apprise()
            for url in chosen:
                with _quiet():
                    understood = apprise.Apprise().add(url)
                if not understood:
                    raise ConfigError(
                        _(
                            "--notify {url}: not a notification URL Apprise "
                            "understands; see https://github.com/caronc/apprise/wiki for the "
                            "forms (wecombot://, dingtalk://, slack://, mailto://, json://, …)"
                        ).format(url=notify_label(url))
                    )
        return cls(chosen, when, tuple(s for s in secrets if s))

    def wants(self, exit_code: int) -> bool:
        return bool(self.urls) and (self.on == "always" or exit_code != Exit.OK)

    def run_finished(self, summary: RunSummary, input_path: str) -> list[str]:
        """Send the summary if the condition holds; return the warnings (also printed)."""
        if not self.wants(summary.exit_code):
            return []
        title, body = summary_message(summary, input_path)
        return self.send(title, body, failed=summary.exit_code != Exit.OK)

    def run_failed(self, error: BatchopsError, input_path: str) -> list[str]:
        """Send word of a run that stopped on an error before it could sum itself up."""
        if not self.wants(error.exit_code):
            return []
        title, body = error_message(error, input_path)
        return self.send(title, body, failed=True)

    def send(self, title: str, body: str, *, failed: bool) -> list[str]:
        title, body = self._scrub(title), self._scrub(body)
        problems = deliver(self.urls, title, body, failed=failed, timeout_s=self.timeout_s)
        for problem in problems:
            say(_("Warning: {problem}").format(problem=self._scrub(problem)))
        return problems

    def _scrub(self, text: str) -> str:
        return scrub(text, self.secrets)


def summary_message(summary: RunSummary, input_path: str) -> tuple[str, str]:
    """The title and body that tell how a run ended."""
    code = summary.exit_code
    title = (
        _("batchops: {name} succeeded")
        if code == Exit.OK
        else _("batchops: {name} needs attention (exit {code})")
    ).format(name=_name(input_path), code=code)
    # Status values stay the report's words (success, failed …): --only takes them.
    counts = _(", ").join(f"{n} {status}" for status, n in summary.counts.items() if n)
    lines = [
        *_heading(input_path, code),
        _("rows: {rows} ({counts})").format(
            rows=summary.total_rows, counts=counts or _("nothing to do")
        ),
        _("elapsed: {seconds} s, {requests} requests").format(
            seconds=f"{summary.elapsed_s:.1f}", requests=summary.sent_requests
        ),
    ]
    if summary.stopped_reason:
        lines.append(_("stopped: {reason}").format(reason=summary.stopped_reason))
    if summary.top_failures:
        lines.append(_("top failure reasons:"))
        lines += [
            "  " + _("{count} × {reason} (e.g. {sn})").format(count=n, reason=reason, sn=sn)
            for reason, n, sn in summary.top_failures[:5]
        ]
    lines.append(_("report: {path}").format(path=_full(summary.report_path) or _("(none written)")))
    if summary.checkpoint_path:
        lines.append(_("checkpoint: {path}").format(path=_full(summary.checkpoint_path)))
    return title, "\n".join(lines)


def _heading(input_path: str, code: int) -> list[str]:
    """The first lines of every message: which input, on which host, how it ended."""
    return [
        _("input: {path}").format(path=_full(input_path)),
        _("host: {host}").format(host=socket.gethostname()),
        _("exit code: {code} ({meaning})").format(code=code, meaning=meaning_of(code)),
    ]


def error_message(error: BatchopsError, input_path: str) -> tuple[str, str]:
    """The title and body for a run that stopped on an error."""
    code = error.exit_code
    title = _("batchops: {name} failed (exit {code})").format(name=_name(input_path), code=code)
    lines = [*_heading(input_path, code), _("error: {error}").format(error=error)]
    return title, "\n".join(lines)


def _full(path: str | None) -> str:
    """A path as the on-call person needs it: absolute (they are not in the run's folder)."""
    if not path:
        return ""
    try:
        return str(Path(path).resolve())
    except OSError:
        return path


def _name(input_path: str) -> str:
    return input_path.replace("\\", "/").rsplit("/", 1)[-1]


class _Collect(logging.Handler):
    """Keeps what Apprise says about a failed delivery, for our one warning line."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def deliver(
    urls: Sequence[str], title: str, body: str, *, failed: bool, timeout_s: float
) -> list[str]:
    """Send to every URL, together at most ``timeout_s``; return one warning per URL that
    did not take it (no URL in full: they hold keys)."""
    apprise = _apprise()
    results: dict[int, bool] = {}
    said: dict[int, list[str]] = {}

    def send_all() -> None:
        for number, url in enumerate(urls):
            collect = _Collect()
            hub = apprise.Apprise()
            logger = logging.getLogger("apprise")
            logger.addHandler(collect)
            try:
                with _quiet():
                    hub.add(url)
                    sent = hub.notify(
                        body=body,
                        title=title,
                        notify_type=(
                            apprise.NotifyType.FAILURE if failed else apprise.NotifyType.INFO
                        ),
                    )
            except Exception as exc:  # a plugin's own bug must not end the run
                collect.messages.append(f"{exc.__class__.__name__}: {exc}")
                sent = False
            finally:
                logger.removeHandler(collect)
            results[number] = bool(sent)
            said[number] = collect.messages

    # Apprise's own logger must not print the URL (with its key) to the console.
    logging.getLogger("apprise").propagate = False
    worker = threading.Thread(target=send_all, name="batchops-notify", daemon=True)
    worker.start()
    worker.join(timeout_s)
    problems = []
    for number, url in enumerate(urls):
        if number not in results:
            problems.append(
                _(
                    "notification to {url} not delivered within {seconds} s; "
                    "the run's outcome is unchanged"
                ).format(url=notify_label(url), seconds=f"{timeout_s:g}")
            )
        elif not results[number]:
            problems.append(_undelivered(said.get(number, []), url))
    return problems


def _undelivered(messages: list[str], url: str) -> str:
    """The warning for a URL that did not take the message, with Apprise's last word on
    it (without the URL's secret parts) when it said one."""
    why = without_url_parts(" ".join(messages[-1].split()), url)[:200] if messages else ""
    text = (
        _("notification to {url} could not be delivered ({why}); the run's outcome is unchanged")
        if why
        else _("notification to {url} could not be delivered; the run's outcome is unchanged")
    )
    return text.format(url=notify_label(url), why=why)
