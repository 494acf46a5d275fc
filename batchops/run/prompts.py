"""What a person is shown and asked: the plan before sending, the canary's outcome, and
the advice after a run (what to fix, the exact command that finishes the work).

The run calls :data:`Confirm` with a :class:`PlanOverview` and :data:`ConfirmCanary` with
a :class:`CanaryReport`; the CLI shows them on the terminal, a scheduler may answer them
in code. Nothing here sends or writes anything.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from batchops.i18n import N_, _, ngettext
from batchops.itsm import Answer, likely_base_url, refused_credentials
from batchops.model import Outcome, OutcomeTable, Status
from batchops.process import default_sigint
from batchops.secrets import masked_url
from batchops.send import Precheck, chains_by_sn, simulate
from batchops.settings import Credentials, Resolved, shown_source
from batchops.sheet import Batch
from batchops.stops import Stop


@dataclass(frozen=True, slots=True)
class PlanOverview:
    """What a run is about to do, shown before asking for confirmation."""

    total_rows: int
    to_send: int
    by_action: dict[str, int]
    by_status: dict[str, int]
    operators: list[str]
    target: str
    gateway: str
    app_code: str
    invalid: int = 0
    precheck_note: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    #: Which flag, variable, or file and profile chose ``target``.
    target_source: str = ""

    def describe(self) -> str:
        comma = _(", ")
        actions = comma.join(f"{n} {a}" for a, n in sorted(self.by_action.items())) or _("none")
        ops = comma.join(self.operators[:5]) + (" …" if len(self.operators) > 5 else "")
        lines = [
            _(
                "About to send {to_send} of {total} rows to {target} ({gateway}, app {app_code})."
            ).format(
                to_send=self.to_send,
                total=self.total_rows,
                target=self.target,
                gateway=self.gateway,
                app_code=self.app_code,
            ),
            "  "
            + _("target chosen by: {source}").format(source=self.target_source or _("the caller")),
            "  " + _("actions: {actions}").format(actions=actions),
            "  "
            + _("operators ({count}): {names}").format(count=len(self.operators), names=ops or "-"),
        ]
        counts = comma.join(
            (_(_ROW_KINDS[s]) if s in _ROW_KINDS else f"{{count}} {s}").format(count=n)
            for s, n in self.by_status.items()
            if n
        )
        if counts:
            lines.append("  " + _("rows: {counts}").format(counts=counts))
        if self.precheck_note:
            lines.append("  " + _("pre-check: {note}").format(note=self.precheck_note))
        lines.extend(f"  {_(key)}: {value}" for key, value in self.extra.items())
        return "\n".join(lines)


#: The overview's kinds of rows not sent, as they are shown (keys of ``by_status``).
_ROW_KINDS = {
    "invalid": N_("{count} invalid"),
    "hidden (left out)": N_("{count} hidden (left out)"),
    "skipped": N_("{count} skipped"),
}


Confirm = Callable[[PlanOverview], bool]


@dataclass(frozen=True, slots=True)
class CanaryRow:
    """One canary row as it is shown: where it is in the sheet, what it did, how it ended."""

    number: int  # the row's number in the user's sheet
    sn: str
    action: str
    outcome: Outcome

    @property
    def good(self) -> bool:
        return self.outcome.status in (Status.SUCCESS, Status.SKIPPED)


@dataclass(frozen=True, slots=True)
class CanaryReport:
    """The outcomes of the canary rows, shown before the rest is sent."""

    outcomes: list[CanaryRow]
    remaining: int

    @property
    def all_good(self) -> bool:
        return all(row.good for row in self.outcomes)

    @property
    def bad(self) -> int:
        """How many canary rows did not succeed (nor need to)."""
        return sum(1 for row in self.outcomes if not row.good)

    def describe(self) -> str:
        lines = [_("Canary: {count} rows sent first:").format(count=len(self.outcomes))]
        for row in self.outcomes:
            outcome = row.outcome
            # The status stays the report's word (success, failed …): it is what the
            # report's status column and --only say.
            shown = (
                _("row {number}: {sn} {action} → {status}")
                if outcome.status is Status.SUCCESS
                else _("row {number}: {sn} {action} → {status} ({message})")
            )
            lines.append(
                "  "
                + shown.format(
                    number=row.number,
                    sn=row.sn,
                    action=row.action,
                    status=outcome.status.value,
                    message=outcome.message,
                )
            )
        lines.append(_("{count} rows remain.").format(count=self.remaining))
        return "\n".join(lines)


ConfirmCanary = Callable[[CanaryReport], bool]


def plan_overview(
    batch: Batch,
    valid: np.ndarray,
    checked: Precheck | None,
    target: str,
    gateway: str,
    credentials: Credentials,
) -> PlanOverview:
    by_action: dict[str, int] = {}
    for action in batch.action[valid].tolist():
        by_action[str(action)] = by_action.get(str(action), 0) + 1
    by_status = {"invalid": batch.invalid_count(), "hidden (left out)": batch.left_out_count()}
    to_send = len(valid)
    note = _("skipped (--no-precheck)")
    if checked is not None:
        verdicts = simulate(batch.action, batch.sn, chains_by_sn(batch.sn, valid), checked.statuses)
        skipped = sum(1 for _index, status, _message in verdicts if status is Status.SKIPPED)
        by_status["skipped"] = skipped
        to_send -= skipped
        note = _("{count} tickets read with {method}").format(
            count=len(checked.statuses), method=checked.method
        )
    operators = sorted({str(o) for o in batch.operator[valid].tolist()})
    return PlanOverview(
        total_rows=len(batch),
        to_send=to_send,
        by_action=by_action,
        by_status=by_status,
        operators=operators,
        target=target,
        gateway=gateway,
        app_code=credentials.app_code,
        invalid=batch.invalid_count(),
        precheck_note=note,
    )


T = TypeVar("T")


def ask(question: Callable[[T], bool], about: T) -> bool:
    """Ask a blocking question with plain Ctrl-C semantics.

    Inside ``asyncio.run`` a first Ctrl-C only schedules a cancellation, which cannot
    reach code blocked on the terminal; Python's own handler makes it a KeyboardInterrupt
    there, which the question treats as "no".
    """
    try:
        with default_sigint():
            return question(about)
    except KeyboardInterrupt:
        return False


def fatal_fix(
    answer: Answer | None,
    advice: Advice,
    *,
    sandbox: bool,
    base_url: str = "",
    gateway: str = "esb",
) -> str:
    """What to fix after a fatal answer: for a refused credential, which one and from
    where; for a page not found, the address each gateway takes and the likely one."""
    if answer is None or sandbox:
        return ""
    if refused_credentials(answer):
        return _("the credentials or the app's permissions; used: {sources}").format(
            sources=advice.credential_sources()
        )
    if answer.http_status == 404 and answer.code is None and base_url:
        return wrong_address(base_url, gateway)
    return ""


def wrong_address(base_url: str, gateway: str) -> str:
    """A 404 page: not the same address again, but the form each gateway takes and the
    one ``base_url`` most likely meant."""
    forms = _(
        "--base-url {url} (--gateway {gateway}) answers 404: no ITSM API there. The ESB "
        "(--gateway esb) takes the host alone, e.g. https://paas.example.com; the API "
        "gateway (--gateway apigw) takes the stage, e.g. "
        "https://bkapi.example.com/api/bk-itsm/prod"
    ).format(url=masked_url(base_url), gateway=gateway)
    likely = likely_base_url(base_url, gateway)
    if likely is None:
        return forms
    return _("{forms}; likely right here: --gateway {gateway} --base-url {url}").format(
        forms=forms, gateway=likely[0], url=masked_url(likely[1])
    )


#: Options a command sent from its report must not repeat: an output that is the report
#: itself would be refused, and the statuses to send are the advice's own.
_NOT_AGAIN = frozenset({"-o", "--output", "--only"})

#: An environment variable's name as a shell expands it in ``"$NAME"``.
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _holds_secret(option: str, value: str) -> bool:
    """Whether an option's value must never be printed: a notification URL always (the
    rest of it is a webhook key, a bot token or a mail password), an address (proxy or
    ITSM) when it carries a password."""
    if option == "--notify":
        return True
    return option in ("--proxy", "--base-url") and masked_url(value) != value


def _variable_holding(value: str, env: Mapping[str, str]) -> str | None:
    """The environment variable that holds ``value``, if one does: the shell put it on
    the command line (``--notify "$HOOK"``) and expands it again when the advice is run.
    (``$_`` is bash's last argument, not a place anyone keeps a value.)"""
    names = sorted(n for n, v in env.items() if v == value and n != "_" and _VARIABLE.fullmatch(n))
    return names[0] if names else None


def _runnable(words: Sequence[str], env: Mapping[str, str]) -> tuple[str, list[str]]:
    """A command line as it may be printed, and still does the work when pasted.

    A value that holds a secret (:func:`_holds_secret`) is never shown: an environment
    variable that holds it is named instead (``--notify "$HOOK"``); without one the
    option is left out, and a line (the second item) says so and how to add it back.
    A masked value (a notify URL cut to its scheme, a proxy with its password masked) would
    be refused or fail.
    """
    shown: list[str] = []
    notes: list[str] = []
    at = 0
    while at < len(words):
        option, equals, value = words[at].partition("=")
        if not equals:  # "--notify URL": the value is the next word
            value = words[at + 1] if at + 1 < len(words) else ""
        if not (value and _holds_secret(option, value)):
            shown.append(shlex.quote(words[at]))
            at += 1
            continue
        name = _variable_holding(value, env)
        if name is not None:
            shown += [shlex.quote(option), f'"${name}"']
        else:
            notes.append(_left_out(option))
        at += 1 if equals else 2
    return " ".join(shown), list(dict.fromkeys(notes))


def _left_out(option: str) -> str:
    setting = option.removeprefix("--").replace("-", "_")
    text = (
        _(
            "({option} is not repeated above: its URL holds a key. Add it again, or set "
            "{setting} in a profile of batchops.toml)"
        )
        if option == "--notify"
        else _(
            "({option} is not repeated above: its URL holds a password. Add it again, or set "
            "{setting} in a profile of batchops.toml)"
        )
    )
    return text.format(option=option, setting=setting)


class Advice:
    """What to do next, with the exact command that finishes the work.

    "Run the same command again" is said only when it is true: with a checkpoint, the
    same command (less ``--fresh``, which would start over) continues; rows that ITSM
    refused need ``--retry-failed``; without a checkpoint the report itself is the way
    back (``--only pending``). The command shown runs as printed and shows no secret
    (:func:`_runnable`).
    """

    def __init__(
        self,
        command: Sequence[str] | None,
        settings: Resolved,
        env: Mapping[str, str],
        *,
        checkpointed: bool,
        input_path: Path | None = None,
        report: Path | None = None,
    ) -> None:
        self._command = list(command) if command else None
        self._settings = settings
        self._env = env
        self._checkpointed = checkpointed
        #: The run's input and its report: without a checkpoint, the report is the way back.
        self._input = input_path
        self._report = report

    def _cmd(self, *extra: str) -> str:
        if self._command is None:
            if not extra:
                return _("the same command")
            return _("the same command with {options}").format(options=" ".join(extra))
        words = [w for w in self._command if w != "--fresh"]
        words += [e for e in extra if e not in words]
        return _runnable(words, self._env)[0]

    def _left_out(self) -> list[str]:
        """What the shown commands leave out (a secret no variable holds), one line each."""
        return _runnable(self._command or [], self._env)[1]

    def from_report(self, only: str) -> str:
        """The command that sends the report's rows with the statuses ``only``: the run's
        own command (its target, --sandbox and the rest), the report in place of the
        input, without the options that would be refused or undo it (-o, --only,
        --fresh, --retry-failed)."""
        if self._report is None or self._input is None:
            return _("batchops run REPORT --only {only} (REPORT: the report below)").format(
                only=only
            )
        report = str(self._report)
        words = list(self._command) if self._command else ["batchops", "run", report]
        kept: list[str] = []
        at = 0
        while at < len(words):
            word = words[at]
            option = word.partition("=")[0]
            if option in _NOT_AGAIN and "=" not in word and at + 1 < len(words):
                at += 2  # "-o PATH", "--only STATUS": the value is the next word
                continue
            if option in _NOT_AGAIN or word in ("--fresh", "--retry-failed"):
                at += 1
                continue
            if word.startswith("-o") and len(word) > 2 and not word.startswith("--"):
                at += 1  # "-oPATH"
                continue
            named_input = self._input is not None and not word.startswith("-")
            kept.append(report if named_input and Path(word) == self._input else word)
            at += 1
        return _runnable([*kept, "--only", only], self._env)[0]

    def resume(self) -> str:
        return self._cmd()

    def retry_failed(self) -> str:
        return self._cmd("--retry-failed")

    def _invalid_lines(
        self, count: int, reasons: Sequence[tuple[str, int, list[int]]], *, also_failed: bool
    ) -> list[str]:
        """The invalid rows: how many, why (with their sheet rows), and how to send them
        once fixed (the failed rows' command sends them too)."""
        # One line a reason: a reason may hold a ';' of its own.
        lines = [_("{count} invalid, not sent:").format(count=count)]
        lines += [
            "  "
            + _("{count} × {reason} ({rows})").format(count=n, reason=text, rows=_rows(rows, n))
            for text, n, rows in reasons
        ]
        if also_failed:
            return lines
        if self._checkpointed:
            lines.append(
                _("fix them in the sheet, then send them with: {command}").format(
                    command=self.resume()
                )
            )
        else:
            lines.append(
                _("fix them in the report, then send them with: {command}").format(
                    command=self.from_report("invalid")
                )
            )
        return lines

    def credential_sources(self) -> str:
        """Which credentials were used and where each came from (never a secret's value)."""
        values, sources = self._settings.values, self._settings.sources
        secret_env, token_env = values.secret_env, values.token_env
        secret_from = (
            _("app secret from the environment variable {name} (named by {source})")
            if sources["secret_env"] != "default"
            else _("app secret from the environment variable {name}")
        )
        parts = [
            _("app code {app_code} (from {source})").format(
                app_code=repr(values.app_code or self._env.get("BK_APP_CODE", "")),
                source=shown_source(sources["app_code"]),
            ),
            secret_from.format(name=secret_env, source=shown_source(sources["secret_env"])),
        ]
        if self._env.get(token_env):
            parts.append(_("bk_token from the environment variable {name}").format(name=token_env))
        user = values.username or self._env.get("BK_USERNAME", "")
        if user:
            parts.append(
                _("user {user} (from {source})").format(
                    user=repr(user), source=shown_source(sources["username"])
                )
            )
        return _("; ").join(parts)

    def next_step(
        self,
        counts: Mapping[str, int],
        stop: Stop | None,
        failures: list[tuple[str, int, str]],
        invalid: Sequence[tuple[str, int, list[int]]] = (),
    ) -> str:
        """What is left and the command that finishes it; ``invalid``: the invalid rows'
        top reasons with their sheet rows (:func:`invalid_reasons`)."""
        pending = counts.get(Status.PENDING.value, 0)
        failed = counts.get(Status.FAILED.value, 0)
        unknown = counts.get(Status.UNKNOWN.value, 0)
        lines: list[str] = []
        if stop is not None and stop.fix:
            lines.append(_("fix this first: {fix}").format(fix=stop.fix))
        if pending:
            if self._checkpointed:
                lines.append(
                    _("to continue ({pending} rows not done), run: {command}").format(
                        pending=pending, command=self.resume()
                    )
                )
            else:
                lines.append(
                    _(
                        "{pending} rows not done and no checkpoint was kept: send just those "
                        "with: {command}"
                    ).format(pending=pending, command=self.from_report("pending"))
                )
        if failed or unknown:
            lines.append(_failed_line(failed, unknown, failures))
            if unknown:
                lines.append(_("check the unknown rows' tickets in ITSM before sending them again"))
            # Without a checkpoint the report is the way back; its invalid rows, once
            # fixed, go with the failed ones (the invalid lines below then say no command).
            again = (
                "failed,unknown,invalid" if counts.get(Status.INVALID.value) else "failed,unknown"
            )
            command = self.retry_failed() if self._checkpointed else self.from_report(again)
            lines.append(
                _("once their cause is fixed, resend them with: {command}").format(command=command)
            )
        bad = counts.get(Status.INVALID.value, 0)
        if bad:
            lines += self._invalid_lines(bad, invalid, also_failed=bool(failed or unknown))
        if not lines:
            return _("nothing left to do")
        if self._checkpointed and (pending or failed or unknown or bad):
            lines += self._left_out()
        return "\n".join(lines)


def _failed_line(failed: int, unknown: int, failures: list[tuple[str, int, str]]) -> str:
    """How many rows failed or are unknown, with the three commonest reasons."""
    if failed and unknown:
        counts = _("{failed} failed, {unknown} unknown")
    elif failed:
        counts = _("{failed} failed")
    else:
        counts = _("{unknown} unknown")
    counts = counts.format(failed=failed, unknown=unknown)
    reasons = _("; ").join(f"{n} × {text}" for text, n, _sn in failures[:3])
    if not reasons:
        return counts
    return _("{counts} (top reasons: {reasons})").format(counts=counts, reasons=reasons)


#: Sheet rows named per reason at the end of a run; the rest are counted.
_ROWS_SHOWN = 5


def invalid_reasons(
    batch: Batch, outcomes: OutcomeTable, limit: int = 3
) -> list[tuple[str, int, list[int]]]:
    """The most frequent reasons rows are invalid: (reason, rows, the first sheet rows)."""
    rows: dict[str, list[int]] = {}
    for index in outcomes.rows_with(Status.INVALID).tolist():
        reason = outcomes.get(index).message or _("(no reason)")
        rows.setdefault(reason, []).append(batch.row_number(index))
    # Most rows first; among equals, the reason met first in the sheet.
    ranked = sorted(rows.items(), key=lambda item: -len(item[1]))[:limit]
    return [(reason, len(numbers), numbers[:_ROWS_SHOWN]) for reason, numbers in ranked]


def _rows(numbers: list[int], count: int) -> str:
    """``row 3`` / ``rows 3, 5 and 2 more``: sheet rows as a person reads them."""
    text = ", ".join(str(n) for n in numbers)
    if count > len(numbers):
        text = _("{rows} and {count} more").format(rows=text, count=count - len(numbers))
    return ngettext("row {rows}", "rows {rows}", count).format(rows=text)
