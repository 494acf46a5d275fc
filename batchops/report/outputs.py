"""Every file a run will write, checked before the first operation leaves.

Once an operation is sent it cannot be taken back, so a report path that cannot be
written must be found before sending, not after: ``report.txt``, a folder that does not
exist, a folder given as a file, or one output landing on the input or on another
output. :func:`check_outputs` raises a :class:`~batchops.errors.ConfigError` (exit 2,
nothing sent) for each of those. What can still go wrong later (a full disk, a file
locked by Excel) is the caller's to report truthfully: see ``Exit.REPORT_UNWRITTEN``.

Outputs are written to a temp file and renamed into place; :func:`temp_removed_on_signal`
makes sure a Ctrl-C or SIGTERM during that write does not leave the temp file behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from batchops.errors import ConfigError
from batchops.process import leave_on_signal

#: What the report writer can produce; the failures file is a report too.
REPORT_SUFFIXES = (".csv", ".xlsx")


@dataclass(frozen=True, slots=True)
class Outputs:
    """The paths one run writes; None for the ones it does not."""

    report: Path
    failures: Path | None = None
    summary_json: Path | None = None
    checkpoint: Path | None = None


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file (also through links, or in different spellings)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_file(label: str, path: Path, suffixes: tuple[str, ...] | None) -> None:
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{label} {path}: batchops writes {' or '.join(suffixes)} files; "
            f"name it *{' or *'.join(suffixes)}"
        )
    if path.is_dir():
        raise ConfigError(f"{label} {path} is a folder; give a file name inside it")
    folder = path.resolve().parent
    if not folder.is_dir():
        raise ConfigError(
            f"{label} {path}: the folder {folder} does not exist; create it or choose another path"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{label} {path}: cannot write into {folder}; choose another folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{label} {path} cannot be overwritten (read-only); choose another path")


def check_outputs(source: Path, outputs: Outputs) -> None:
    """Refuse, before anything is sent, every output that could not be written or that
    would overwrite the input or another output."""
    named: list[tuple[str, Path, tuple[str, ...] | None]] = [
        ("the report (--output)", outputs.report, REPORT_SUFFIXES)
    ]
    if outputs.failures is not None:
        named.append(("--failures", outputs.failures, REPORT_SUFFIXES))
    if outputs.summary_json is not None:
        named.append(("--summary-json", outputs.summary_json, None))
    if outputs.checkpoint is not None:
        named.append(("the checkpoint", outputs.checkpoint, None))
    taken: list[tuple[str, Path]] = [("the input", source)]
    for label, path, suffixes in named:
        for other_label, other in taken:
            if _same(path, other):
                raise ConfigError(
                    f"{label} {path} would overwrite {other_label} ({other}); choose another path"
                )
        _check_file(label, path, suffixes)
        taken.append((label, path))


def unwritten_after_sending(reason: str, checkpoint: Path | None, report: Path) -> str:
    """What to say when an output failed after operations were sent: never "nothing was
    sent"; where the results are, and the command that rebuilds the report."""
    if checkpoint is None:
        return (
            f"{reason}. Operations WERE sent, and no checkpoint was kept, so the counts "
            "above are the only record of this run; check the tickets in ITSM"
        )
    other = report.with_name(f"{report.stem}.rebuilt{report.suffix or '.csv'}")
    return (
        f"{reason}. Operations WERE sent; their results are safe in the checkpoint "
        f"{checkpoint}. Rebuild the report where it can be written with: batchops report "
        f"{shlex.quote(str(checkpoint))} -o {shlex.quote(str(other))} (or another -o path)"
    )


@dataclass(slots=True)
class TempFile:
    """The temp file an output is being written to, and whether it was moved into place."""

    path: Path | None = None
    renamed: bool = False

    def create(self, final: Path, suffix: str = ".tmp") -> int:
        """Create a new owner-only temp file beside ``final``; return its descriptor.

        The name is chosen and noted *before* the file exists: a signal handler may run
        at any moment after the file appears, and must know what to remove (blocking the
        signals meanwhile is not enough: another thread of the process can take them).
        """
        for _ in range(100):
            self.path = final.parent / f".{final.name}.{secrets.token_hex(4)}{suffix}"
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
        raise FileExistsError(f"no free temp file name beside {final}")


@contextlib.contextmanager
def temp_removed_on_signal(final: Path) -> Iterator[TempFile]:
    """While an output's temp file is written (to become ``final``): SIGINT or SIGTERM
    remove the temp file and end the process with 130, saying so on stderr.

    Create the temp file with :meth:`TempFile.create` of the object it yields, so there
    is no moment when the file exists unguarded. By default SIGTERM ends Python without
    any cleanup, and a Ctrl-C here would travel up as "interrupted before sending". The
    checkpoint is committed before any report is written and the OS drops the run lock,
    so leaving at once is safe; only the temp file needs removing. Outside the main
    thread (where signal handlers cannot be set) nothing changes.
    """
    temp = TempFile()

    def remove(signame: str) -> None:
        if temp.path is not None and not temp.renamed:
            with contextlib.suppress(OSError):
                os.unlink(temp.path)
        done = "it was written" if temp.renamed else "it was not written"
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(
                f"interrupted by {signame} while writing {final}; {done} "
                "(a checkpoint, if kept, still holds every result)\n"
            )
            sys.stderr.flush()

    with leave_on_signal(remove):
        yield temp
