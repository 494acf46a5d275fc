"""What ``undo`` tells a person: the sheet it wrote (stdout), and on stderr how far it
can be trusted and what it left out.

A later run of the same sheet (a report fed back as input, ``t.report-2.csv``) applied
rows of its own that the undo of an earlier report does not reverse: each such report is
named with how many rows its run applied, and the exact command that includes them.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from batchops.exits import Exit
from batchops.i18n import _, ngettext

#: The option that includes the later runs of the same sheet.
WITH_NEWER = "--with-newer"


@dataclass(frozen=True, slots=True)
class UndoSummary:
    """What ``undo`` wrote."""

    rows: int
    irreversible: int
    path: str
    irreversible_path: str
    by_action: dict[str, int]
    #: The run's checkpoint the report was held to ("" when there was none).
    checkpoint: str = ""
    disagreeing: int = 0
    missing: int = 0
    #: What the settings' merge warned of (an untrusted batchops.toml, ignored).
    warnings: tuple[str, ...] = ()
    #: Later runs of the same sheet left out: (their report, rows they applied).
    left_out: tuple[tuple[str, int], ...] = ()
    #: Later runs included (--with-newer): (their report, their checkpoint).
    included: tuple[tuple[str, str], ...] = ()
    #: Whether --with-newer was given.
    with_newer: bool = False
    #: The command that writes this undo sheet again with the later runs included.
    again: str = ""

    @property
    def exit_code(self) -> Exit:
        return Exit.OK if self.rows else Exit.ROWS_FAILED

    def describe(self) -> str:
        actions = _(", ").join(f"{n} {a}" for a, n in sorted(self.by_action.items()))
        sheet = (
            _("undo sheet: {path} ({rows} rows: {actions})")
            if actions
            else _("undo sheet: {path} ({rows} rows)")
        )
        lines = [sheet.format(path=self.path, rows=self.rows, actions=actions)]
        if self.checkpoint:
            lines.append(
                "  " + _("checked against the run's checkpoint {path}").format(path=self.checkpoint)
            )
        for report, checkpoint in self.included:
            lines.append(
                "  "
                + _(
                    "plus what the later run that wrote {report} applied, checked against "
                    "its checkpoint {path}"
                ).format(report=report, path=checkpoint)
            )
        if not self.rows:
            lines.append(
                "  " + _("nothing in the report can be undone (no successful SUSPEND/UNSUSPEND)")
            )
        if self.irreversible:
            lines.append(
                _("{count} rows cannot be undone; each with its reason in {path}").format(
                    count=self.irreversible, path=self.irreversible_path
                )
            )
        if self.rows:
            lines.append(
                _("next: {plan} (shows what still applies), then {run}").format(
                    plan=f"batchops plan {self.path}", run="batchops run"
                )
            )
        return "\n".join(lines)

    def notices(self) -> list[str]:
        """What a person must know about how far the sheet can be trusted (for stderr)."""
        return [*self.warnings, *self._doubts(), *self._later()]

    def _later(self) -> list[str]:
        """The later runs of the same sheet this undo sheet leaves out, and how to include
        them; with --with-newer and none found, that there is none."""
        if self.with_newer and not self.included:
            return [
                _(
                    "{option}: no later run of this sheet found beside the report (a report "
                    "fed back as input writes the next one, t.report-2.csv)"
                ).format(option=WITH_NEWER)
            ]
        said = [
            ngettext(
                "{report}: a later run of the same sheet applied {count} row there that this "
                "undo sheet does not reverse",
                "{report}: a later run of the same sheet applied {count} rows there that this "
                "undo sheet does not reverse",
                count,
            ).format(report=report, count=count)
            for report, count in self.left_out
        ]
        if said:
            said.append(
                _("to undo those too, write this undo sheet again with: {command}").format(
                    command=self.again
                )
            )
        return said

    def _doubts(self) -> list[str]:
        if not self.checkpoint:
            return [
                _(
                    "no checkpoint of the run found beside the report: undo trusts the report as "
                    "it stands (its statuses, sns and finished_at); give the run's checkpoint with "
                    "--checkpoint PATH to undo only what it records as applied"
                )
            ]
        said = []
        if self.disagreeing:
            said.append(
                ngettext(
                    "{count} row of the report disagrees with the run's checkpoint {path}",
                    "{count} rows of the report disagree with the run's checkpoint {path}",
                    self.disagreeing,
                ).format(count=self.disagreeing, path=self.checkpoint)
            )
        if self.missing:
            said.append(
                ngettext(
                    "{count} row the checkpoint records as applied (or maybe applied) is in no "
                    "row of the report",
                    "{count} rows the checkpoint records as applied (or maybe applied) are in no "
                    "row of the report",
                    self.missing,
                ).format(count=self.missing)
            )
        if not said:
            return []
        return [
            _("{problems}: not undone, each listed with the reason in {path}").format(
                problems=_(" and ").join(said), path=self.irreversible_path
            )
        ]


def again_command(words: Sequence[str]) -> str:
    """The undo command ``words`` (after ``batchops``) with the later runs included; it
    replaces the undo sheet just written (--force), which leaves them out."""
    extra = [option for option in (WITH_NEWER, "--force") if option not in words]
    return shlex.join(["batchops", *words, *extra])


def undo_words(
    report: str | os.PathLike[str], given: Mapping[str, str | os.PathLike[str] | None]
) -> list[str]:
    """The undo command of ``report`` with the ``given`` options' values (after
    ``batchops``), for advice when no command line is at hand (an API call)."""
    words = ["undo", str(report)]
    for option, value in given.items():
        if value is not None:
            words += [option, str(value)]
    return words
