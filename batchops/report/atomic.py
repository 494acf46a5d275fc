"""Writing a report file atomically, and the one-line error when it cannot be written.

A crash, a full disk or a Ctrl-C while a report is written leaves either the old report
or the new one, never half of one: the writers fill a temp file beside the target, sync
it, and rename it into place. A report that cannot be written raises
:class:`batchops.errors.InputError` with a one-line message naming the path and what to
do.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from batchops.errors import InputError
from batchops.i18n import _
from batchops.process import current_umask

from .outputs import temp_removed_on_signal


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temp file beside ``path``; after the block, move it onto ``path``.

    The block writes (and syncs) the temp file. On any error the temp file is removed
    and ``path`` is left as it was; file-system errors become :class:`InputError`.
    """
    with temp_removed_on_signal(path) as guard:
        try:
            fd = guard.create(path)
        except OSError as exc:
            raise _unwritable(path, exc) from exc
        os.close(fd)
        temp = guard.path
        assert temp is not None
        try:
            yield temp
            os.chmod(temp, _new_file_mode(path))
            os.replace(temp, path)
            guard.renamed = True
        except BaseException as exc:
            with suppress(OSError):
                temp.unlink()
            if isinstance(exc, (OSError, *_xlsxwriter_errors())):
                raise _unwritable(path, exc) from exc
            raise
    _sync_directory(path.parent)


def sync(handle: IO[Any]) -> None:
    """Flush ``handle`` to the disk, so the rename that follows never shows a short file."""
    handle.flush()
    os.fsync(handle.fileno())


def _xlsxwriter_errors() -> tuple[type[Exception], type[Exception]] | tuple[()]:
    """xlsxwriter's file errors (FileCreateError, FileSizeError), if it was imported at all."""
    module = sys.modules.get("xlsxwriter.exceptions")
    if module is None:
        return ()
    return (module.FileCreateError, module.FileSizeError)


def _unwritable(path: Path, exc: BaseException) -> InputError:
    errors = _xlsxwriter_errors()
    if errors and isinstance(exc, errors[1]):
        return InputError(
            _("cannot write the report {path}: too big for XLSX; write a .csv").format(path=path)
        )
    if errors and isinstance(exc, errors[0]) and exc.args and isinstance(exc.args[0], OSError):
        exc = exc.args[0]
    code = exc.errno if isinstance(exc, OSError) else None
    folder = path.parent
    hints: dict[int | None, str] = {
        errno.ENOENT: _(
            "the folder {folder} does not exist; create it or choose another path"
        ).format(folder=folder),
        errno.ENOTDIR: _("{folder} is not a folder; choose another report path").format(
            folder=folder
        ),
        errno.EACCES: _(
            "permission denied; choose a folder you can write to, or close {name} "
            "if another program has it open"
        ).format(name=path.name),
        errno.EISDIR: _("that is a folder; give a file name ending in .csv or .xlsx"),
        errno.ENOSPC: _("the disk is full; free some space or write the report elsewhere"),
        errno.EROFS: _("the file system is read-only; choose another report path"),
    }
    hints[errno.EPERM] = hints[errno.EACCES]
    reason = hints.get(code) or _("{error}; check the path and try again").format(
        error=_one_line(exc)
    )
    return InputError(
        _("cannot write the report {path}: {reason}").format(path=path, reason=reason)
    )


def _one_line(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def _new_file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give (mkstemp makes files 0600)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return 0o666 & ~current_umask()


def _sync_directory(folder: Path) -> None:
    """Make the rename durable; not every platform can open a folder, which is fine."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
