"""The progress protocol's plain parts (:mod:`batchops.run.progress`): a line for a person
that never breaks the run, and the sink that shows nothing but notices.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from batchops.model import Status
from batchops.run.progress import NullProgress, say


class _BrokenPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_line_the_terminal_cannot_encode_is_shown_with_replacements() -> None:
    """On a narrow code page, characters it lacks become '?' instead of an error."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    say("row 2: S1 SUSPEND → success 完成", stream)
    assert raw.getvalue() == b"row 2: S1 SUSPEND ? success ??\n"


def _closed() -> io.StringIO:
    stream = io.StringIO()
    stream.close()
    return stream


@pytest.mark.parametrize("gone", [_BrokenPipe, _closed], ids=["broken-pipe", "closed"])
def test_a_line_to_a_stream_that_is_gone_is_dropped_quietly(
    gone: Callable[[], io.StringIO],
) -> None:
    """A closed stream or a reader that went away (``| head``) never stops the run."""
    say("a notice", gone())


def test_say_writes_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """A line for a person goes to stderr, never into stdout's data."""
    say("a notice")
    assert capsys.readouterr() == ("", "a notice\n")


def test_null_progress_shows_nothing_but_notices(capsys: pytest.CaptureFixture[str]) -> None:
    """start/advance/close print nothing; write() still reaches stderr."""
    sink = NullProgress()
    sink.start(10, done=2)
    sink.advance(Status.SUCCESS)
    sink.write("the outage is over")
    sink.close()
    assert capsys.readouterr() == ("", "the outage is over\n")
