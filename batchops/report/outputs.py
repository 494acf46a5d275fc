"""The one output guard: every file a command will write, checked before it starts.

Once an operation is sent it cannot be taken back, so a report path that cannot be
written must be found before sending, not after; and a file a command writes must never
destroy one a run still needs. :func:`guard_outputs`, which every command that writes a
file calls (``run``, ``plan``, ``report``, ``select``, ``undo``), raises one
:class:`~batchops.errors.ConfigError` (exit 2, nothing sent, nothing written) for:

* a path that cannot be written: ``report.txt``, a folder that does not exist, a folder
  given as a file, a read-only file;
* an output landing on the command's input or on another of its outputs;
* an output landing on a run's checkpoint (an SQLite file), on a run's report (its header
  ends in the result columns, or it has a report's default name ``x.report.csv``) or on a
  run's input (a run's report or checkpoint lies beside it under their default names),
  each as far as its :class:`Kind` may not replace them: a run replaces its own report;
* for ``select`` and ``undo``, any existing file unless ``--force``.

What can still go wrong later (a full disk, a file locked by Excel) is the caller's to
report truthfully: see ``Exit.REPORT_UNWRITTEN``.

Outputs are written to a temp file and renamed into place; :func:`temp_removed_on_signal`
makes sure a Ctrl-C or SIGTERM during that write does not leave the temp file behind, and
the next write of an output removes what a writer killed outright left beside it
(:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shlex
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from batchops.errors import ConfigError
from batchops.i18n import N_, _
from batchops.process import leave_on_signal
from batchops.sheet import is_report

from .paths import STATE_FOLDER, default_checkpoint_path, default_report_path, is_report_name

#: What the report writer can produce; the failures file is a report too.
REPORT_SUFFIXES = (".csv", ".xlsx")

#: The first bytes of every SQLite database, a checkpoint among them.
_SQLITE_HEADER = b"SQLite format 3\x00"


class Kind(Enum):
    """What an output is, which decides what it may replace when a file is already there."""

    #: A run's report or its --failures (or a report rebuilt from a checkpoint): replaces
    #: its own earlier file, as the same run started again does.
    REPORT = "report"
    #: A run's checkpoint: an existing one is the checkpoint's own to resume or refuse.
    CHECKPOINT = "checkpoint"
    #: plan's report: never over a file named as a run's report (a plan has a report's
    #: columns, so only a name tells the two apart).
    PLAN = "plan"
    #: --summary-json: never over a run's report.
    SUMMARY = "summary"
    #: select's and undo's sheets: never over a run's input, report or checkpoint, and
    #: over any other existing file only with --force.
    SHEET = "sheet"


@dataclass(frozen=True, slots=True)
class Output:
    """One file a command is about to write, as its messages name it."""

    #: How messages name it (marked ``N_`` where it is written: shown with ``_``).
    label: str
    path: Path
    kind: Kind
    #: The suffixes it may have (None: any).
    suffixes: tuple[str, ...] | None = REPORT_SUFFIXES


@dataclass(frozen=True, slots=True)
class Outputs:
    """The paths one run writes; None for the ones it does not."""

    report: Path
    failures: Path | None = None
    summary_json: Path | None = None
    checkpoint: Path | None = None

    def named(self) -> list[Output]:
        """Each path the run writes, as the guard checks it."""
        named = [Output(N_("the report (--output)"), self.report, Kind.REPORT)]
        if self.failures is not None:
            named.append(Output("--failures", self.failures, Kind.REPORT))
        if self.summary_json is not None:
            named.append(Output("--summary-json", self.summary_json, Kind.SUMMARY, None))
        if self.checkpoint is not None:
            named.append(Output(N_("the checkpoint"), self.checkpoint, Kind.CHECKPOINT, None))
        return named


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file (also through links, or in different spellings)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_file(label: str, path: Path, suffixes: tuple[str, ...] | None) -> None:
    label = _(label)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        either = _(" or ")
        raise ConfigError(
            _("{label} {path}: batchops writes {suffixes} files; name it {names}").format(
                label=label,
                path=path,
                suffixes=either.join(suffixes),
                names=either.join(f"*{suffix}" for suffix in suffixes),
            )
        )
    if path.is_dir():
        raise ConfigError(
            _("{label} {path} is a folder; give a file name inside it").format(
                label=label, path=path
            )
        )
    folder = path.resolve().parent
    if folder.name == STATE_FOLDER and not folder.exists() and folder.parent.is_dir():
        folder = folder.parent  # the state folder is made when the checkpoint is
    if not folder.is_dir():
        raise ConfigError(
            _(
                "{label} {path}: the folder {folder} does not exist; create it or choose "
                "another path"
            ).format(label=label, path=path, folder=folder)
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            _("{label} {path}: cannot write into {folder}; choose another folder").format(
                label=label, path=path, folder=folder
            )
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(
            _("{label} {path} cannot be overwritten (read-only); choose another path").format(
                label=label, path=path
            )
        )


def check_outputs(source: Path, outputs: Outputs) -> None:
    """A run's (or a rebuilt report's) outputs through the guard: ``source`` is the input."""
    guard_outputs({N_("the input"): source}, outputs.named())


def guard_outputs(
    inputs: Mapping[str, Path], outputs: Sequence[Output], *, force: bool = False
) -> None:
    """Refuse, before anything is sent or written, every output that could not be written
    or would replace what must stay (the module's docstring says what); ``inputs`` are
    the files the command reads, by the name its messages give them (labels are looked
    up with ``_``: mark them ``N_``)."""
    taken = list(inputs.items())
    for output in outputs:
        for other_label, other in taken:
            if _same(output.path, other):
                raise ConfigError(
                    _(
                        "{label} {path} would overwrite {other_label} ({other}); choose "
                        "another path"
                    ).format(
                        label=_(output.label),
                        path=output.path,
                        other_label=_(other_label),
                        other=other,
                    )
                )
        _check_file(output.label, output.path, output.suffixes)
        _check_replaced(output, force)
        taken.append((output.label, output.path))


def _check_replaced(output: Output, force: bool) -> None:
    """Refuse an existing file at ``output.path`` that this kind of output may not replace."""
    path = output.path
    if not path.is_file():
        return
    what = run_file(path, output.kind)
    if what:
        raise ConfigError(
            _("{label} {path} is {what}; choose another path").format(
                label=_(output.label), path=path, what=what
            )
        )
    if output.kind is Kind.SHEET and not force:
        raise ConfigError(
            _(
                "{label} {path} already exists; pass --force to replace it, or choose another path"
            ).format(label=_(output.label), path=path)
        )


def run_file(path: Path, kind: Kind = Kind.SHEET) -> str | None:
    """What of a run's the existing file ``path`` is, among what an output of ``kind`` may
    not replace ("a run's checkpoint", …); None when it is none of those."""
    if kind is not Kind.CHECKPOINT and _is_sqlite(path):
        return _("a run's checkpoint (an SQLite database)")
    if kind in (Kind.PLAN, Kind.SUMMARY, Kind.SHEET) and is_report_name(path):
        return _("a run's report (by its name)")
    if kind in (Kind.SUMMARY, Kind.SHEET) and is_report(path):
        return _("a run's report (it ends in the result columns)")
    if kind is Kind.SHEET:
        for beside in (default_checkpoint_path(path), default_report_path(path)):
            if beside.is_file():
                return _("a run's input ({name} is beside it)").format(name=beside.name)
    return None


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


def unwritten_after_sending(reason: str, checkpoint: Path | None, report: Path) -> str:
    """What to say when an output failed after operations were sent: never "nothing was
    sent"; where the results are, and the command that rebuilds the report."""
    if checkpoint is None:
        return _(
            "{reason}. Operations WERE sent, and no checkpoint was kept, so the counts "
            "above are the only record of this run; check the tickets in ITSM"
        ).format(reason=reason)
    other = report.with_name(f"{report.stem}.rebuilt{report.suffix or '.csv'}")
    return _(
        "{reason}. Operations WERE sent; their results are safe in the checkpoint "
        "{checkpoint}. Rebuild the report where it can be written with: {command} "
        "(or another -o path)"
    ).format(
        reason=reason,
        checkpoint=checkpoint,
        command=f"batchops report {shlex.quote(str(checkpoint))} -o {shlex.quote(str(other))}",
    )


#: This machine in a temp file's name, so that only its own writers are judged by pid.
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "surrogatepass")).hexdigest()[:6]

#: A temp file left by a writer whose process cannot be asked (another machine sharing
#: the folder, a batchops that put no pid in the name) is removed once untouched this
#: long: no report takes an hour to write.
STALE_AFTER_S = 3600.0


@dataclass(slots=True)
class TempFile:
    """The temp file an output is being written to, and whether it was moved into place.

    Its name, ``.<output>.<host>-<pid>-<random>.tmp``, says which process writes it, so
    the next write of the same output removes what a killed writer (``kill -9``, a power
    cut) left behind: see :func:`remove_stale_temp_files`.
    """

    path: Path | None = None
    renamed: bool = False

    @staticmethod
    def name_for(final: Path, pid: int) -> str:
        """The name of a temp file that process ``pid`` of this machine writes for ``final``."""
        return f".{final.name}.{_HOST}-{pid}-{secrets.token_hex(4)}.tmp"

    def create(self, final: Path) -> int:
        """Create a new owner-only temp file beside ``final``; return its descriptor.

        The name is chosen and noted *before* the file exists: a signal handler may run
        at any moment after the file appears, and must know what to remove (blocking the
        signals meanwhile is not enough: another thread of the process can take them).
        """
        remove_stale_temp_files(final)
        for _unused in range(100):
            self.path = final.parent / self.name_for(final, os.getpid())
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
        raise FileExistsError(f"no free temp file name beside {final}")


def remove_stale_temp_files(final: Path) -> None:
    """Remove the temp files beside ``final`` that no writer will finish: this machine's
    whose process is gone, and any untouched for :data:`STALE_AFTER_S`.

    A temp file of a live process is kept (it may be writing the same output right now);
    so is anything not named like a temp file of ``final``. Nothing here is worth failing
    a write for, so every error is ignored.
    """
    pattern = re.compile(
        rf"\.{re.escape(final.name)}\.(?:([0-9a-f]{{6}})-([0-9]+)-)?[0-9a-f]{{8}}\.tmp"
    )
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(final.parent) as entries:
        for entry in entries:
            found = pattern.fullmatch(entry.name)
            if found is None:
                continue
            with contextlib.suppress(OSError):
                host, pid = found.group(1), found.group(2)
                gone = host == _HOST and pid is not None and _process_gone(int(pid))
                old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
                if (gone or old) and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (False when that cannot be told)."""
    if pid == os.getpid():
        return False
    if os.name != "posix":
        return False  # os.kill(pid, 0) would end the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False  # another user's (or an impossible pid): not ours to judge
    return False


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
        if temp.renamed:
            said = _(
                "interrupted by {signal} while writing {path}; it was written (a checkpoint, "
                "if kept, still holds every result)"
            )
        else:
            said = _(
                "interrupted by {signal} while writing {path}; it was not written (a "
                "checkpoint, if kept, still holds every result)"
            )
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(said.format(signal=signame, path=final) + "\n")
            sys.stderr.flush()

    with leave_on_signal(remove):
        yield temp
