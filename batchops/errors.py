"""The exceptions that stop a whole run, and nothing else.

A failure of one row is an *outcome* (see :mod:`batchops.model`), never an exception.
Only what makes the whole run impossible raises, and every exception here carries a
one-line message that tells the user what is wrong and how to fix it. Each class names
its exit code (:class:`batchops.exits.Exit`), which the CLI exits with; no message ever
contains a secret.

    BatchopsError
    ├── InputError        the input file cannot be used (exit 2, nothing sent)
    ├── ConfigError       options or credentials are missing or contradictory (exit 2)
    ├── CheckpointError   the checkpoint is locked, foreign or unreadable (exit 2)
    ├── RunInProgressError  another run of the same sheet and target is going (exit 2)
    └── FatalAnswerError  the server answered something that stops every row (exit 3)
"""

from __future__ import annotations

from batchops.exits import Exit


class BatchopsError(Exception):
    """Base of every error that stops a batchops run."""

    exit_code: Exit = Exit.NOTHING_SENT


class InputError(BatchopsError):
    """The input file is missing, unreadable or lacks what batchops needs."""


class ConfigError(BatchopsError):
    """Options, environment or credentials do not allow a run."""


class CheckpointError(BatchopsError):
    """The checkpoint cannot be used for this run."""


class RunInProgressError(BatchopsError):
    """Another batchops process is running the same sheet against the same target."""


class FatalAnswerError(BatchopsError):
    """An answer that makes every further request pointless (auth, permission, service off)."""

    exit_code = Exit.STOPPED

    def __init__(self, message: str, answer: object = None) -> None:
        super().__init__(message)
        #: The server's answer (a :class:`batchops.itsm.client.Answer`), to tell what to fix.
        self.answer = answer
