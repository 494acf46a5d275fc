"""The exit codes: code → name → meaning, the one table every site and every text reads.

A scheduler acts on these numbers (cron mails on non-zero, a retry on 3 or 130), so they
are stable and written here only. What chooses a code reads :class:`Exit`: the error
classes (:mod:`batchops.errors`), the stop kinds (:mod:`batchops.stops`), the end of a
run, the commands' summaries and the entry point. What explains one reads it too: the
commands' ``--help`` (:func:`help_text`), notifications (:func:`meaning_of`) and the
README's "Exit codes" table (:attr:`Exit.detail`, checked by ``tests/project/test_docs.py``).

The one-line meanings are said in the language in use (:mod:`batchops.i18n`); the long
ones are the English README's, word for word.
"""

from __future__ import annotations

import enum

from batchops.i18n import N_, _


class Exit(enum.IntEnum):
    """How a command ended, as the number the process exits with."""

    #: Every row success or skipped.
    OK = 0
    #: Finished, but not everything was done: rows failed, invalid or unknown; the
    #: confirmation was declined; ``undo`` found nothing to undo.
    ROWS_FAILED = 1
    #: Usage, configuration, input or checkpoint error: nothing was sent.
    NOTHING_SENT = 2
    #: Stopped early, resumable: rows not done are pending.
    STOPPED = 3
    #: Operations were sent, but an output could not be written (results in the checkpoint).
    REPORT_UNWRITTEN = 4
    #: Interrupted by SIGINT or SIGTERM, resumable.
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        """One line, for ``--help`` and notifications, in the language in use."""
        return _(_MEANINGS[self][0])

    @property
    def detail(self) -> str:
        """The long meaning, as the README's table says it (Markdown)."""
        return _MEANINGS[self][1]


#: Each code's (meaning in one line without a ";", the README's long meaning).
_MEANINGS: dict[Exit, tuple[str, str]] = {
    Exit.OK: (N_("every row success or skipped"), "every row `success` or `skipped`"),
    Exit.ROWS_FAILED: (
        N_("finished, some rows failed, invalid or unknown (or the run was not confirmed)"),
        "finished; some rows `failed`, `invalid` or `unknown` (or the confirmation was "
        "declined, or `undo` found nothing to undo)",
    ),
    Exit.NOTHING_SENT: (
        N_("usage, configuration, input or checkpoint error: nothing was sent"),
        "usage, configuration, input or checkpoint error: nothing was sent",
    ),
    Exit.STOPPED: (
        N_(
            "stopped early (fatal answer, ITSM unreachable, failure brake, canary, checkpoint "
            "unwritable): rows not done are pending, the same command resumes"
        ),
        "stopped early, resumable: a fatal answer (authentication, permission, API not "
        "found, ITSM switched off, a redirect), ITSM unreachable before the start or for "
        "longer than `--outage-wait`, tickets with SUSPEND rows whose status could not be "
        "read, the failure brake, a canary that did not pass, a checkpoint that can no "
        "longer be written, or rows left `pending` because the way to ITSM kept failing; "
        "rows not done are `pending`, and the command printed on stderr finishes the work",
    ),
    Exit.REPORT_UNWRITTEN: (
        N_(
            "operations were sent, but the report could not be written: the results are safe "
            "in the checkpoint (batchops report CHECKPOINT -o OTHER rebuilds it)"
        ),
        "operations were sent, but the report (or `--failures` / `--summary-json`) could "
        "not be written; the results are safe in the checkpoint, and `batchops report "
        "CHECKPOINT -o OTHER` rebuilds the report",
    ),
    Exit.INTERRUPTED: (
        N_("interrupted (Ctrl-C, SIGTERM): rows not done are pending, the same command resumes"),
        "interrupted (Ctrl-C, SIGTERM); rows not done are `pending`",
    ),
}


def meaning_of(code: int) -> str:
    """What ``code`` means, in one line; a code not in the table says where to look."""
    try:
        return Exit(code).meaning
    except ValueError:
        return _("see batchops --help")


def help_text() -> str:
    """The commands' ``--help`` epilog: every code and what it means, in the language in
    use (:data:`batchops.cli.words.EXIT_CODES` asks for it when the help is shown)."""
    codes = _("; ").join(f"{code.value} {code.meaning}" for code in Exit)
    return _("Exit codes: {codes}.").format(codes=codes)
