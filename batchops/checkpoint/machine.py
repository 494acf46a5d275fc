"""The machine-wide folder every batchops run of this machine shares, opened safely.

The run lock (:mod:`.runlock`) and the record of operations in flight (:mod:`.inflight`)
must be seen by every run on the machine, whoever runs it: another user, ``sudo``, cron,
another ``XDG_STATE_HOME``. So they live in one folder for the whole machine:
``$BATCHOPS_LOCK_DIR`` when set (read here and nowhere else), else ``/var/tmp/batchops``
(``/tmp/batchops`` where there is no ``/var/tmp``; ``%ProgramData%\\batchops`` on
Windows).

The folder is shared with users who may be hostile, so it is opened the way ``/tmp`` must
be (POSIX):

- it is created world-writable *and sticky* (mode 1777, as ``/tmp`` is): everyone may
  create files in it, nobody may remove or rename another user's;
- a folder that others may write but that is not sticky is refused (anyone could remove
  a running batchops' lock), and so is a symbolic link in its place (anyone could point
  it anywhere);
- the folder is opened once, and every file in it is reached through that open folder
  (``dir_fd``): a folder renamed or replaced meanwhile cannot redirect a write;
- files are created with ``O_EXCL | O_NOFOLLOW``, existing ones opened with
  ``O_NOFOLLOW`` and without ``O_CREAT`` (Linux refuses ``O_CREAT`` on another user's file
  in a sticky folder), never truncated on opening, and written only when they are plain
  files with one link (a hard link to a file elsewhere is never written);
- files of other users are opened with ``O_NONBLOCK`` (a FIFO planted under a batchops
  name cannot hang the run) and read with a size cap.

What a hostile local user can still do, and what it costs: create the folder first with
other permissions, or hold another run's lock (any user may lock a file they can read),
or leave in-flight records that name other tickets. Each of these can only make batchops
refuse to run or wait longer (a denial of service), never send twice. The folder's owner
(and root) can remove files in it; on a machine shared with people you do not trust,
have root create it: ``install -d -m 1777 /var/tmp/batchops``. ``filelock``, used where
there is no ``fcntl``, has no such guards: on Windows the folder is as safe as its ACLs.

Which processes are alive is told here too (:func:`alive`): a pid that is gone, a
zombie, or a pid now used by a process started at another time is not the run that wrote
a record.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from batchops.errors import RunInProgressError
from batchops.i18n import _

#: The environment variable that names the machine-wide folder (tests point it at their own).
LOCK_DIR_ENV = "BATCHOPS_LOCK_DIR"
#: The most of another process's file that is read (a record is far smaller).
READ_CAP_BYTES = 64 * 1024 * 1024

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_BY_FD = os.open in os.supports_dir_fd and os.name == "posix"


def default_folder(environ: Mapping[str, str] | None = None) -> Path:
    """``$BATCHOPS_LOCK_DIR``, else the machine's own place (the same for every user)."""
    env = os.environ if environ is None else environ
    chosen = env.get(LOCK_DIR_ENV, "").strip()
    if chosen:
        return Path(chosen)
    if os.name == "nt":
        return Path(env.get("ProgramData") or tempfile.gettempdir()) / "batchops"
    # Not $TMPDIR: it differs between users (and sudo drops it), so runs would miss
    # each other.
    base = Path("/var/tmp")
    return (base if base.is_dir() else Path("/tmp")) / "batchops"


class SharedFolder:
    """The machine-wide folder, opened and checked; files in it are reached through it."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def open(cls, path: Path | None = None) -> SharedFolder:
        """Open (creating it if need be) and check the folder; refuse an unsafe one."""
        path = default_folder() if path is None else path
        try:
            _make(path)
            if not _BY_FD:
                if path.is_symlink() or not path.is_dir():
                    raise _unsafe(path, _("it is a symbolic link or not a folder"))
                return cls(path, None)
            fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and path.is_symlink():
                why = _("it is a symbolic link (anyone could point it anywhere)")
                raise _unsafe(path, why) from None
            raise _unusable(path, exc) from None
        try:
            _check_folder(path, os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _at(self, name: str) -> tuple[str, dict[str, int]]:
        if self._fd is None:
            return str(self.path / name), {}
        return name, {"dir_fd": self._fd}

    def create(self, name: str, flags: int, mode: int) -> int:
        """Create ``name`` (it must not exist) with exactly ``mode``; its descriptor."""
        where, at = self._at(name)
        flags |= os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
        fd = os.open(where, flags, mode, **at)
        with contextlib.suppress(OSError, AttributeError):
            os.fchmod(fd, mode)  # the umask narrowed it; others must be able to use it
        return fd

    def open_existing(self, name: str, flags: int) -> int:
        """Open ``name`` as it is: never through a symbolic link, never created, never
        truncated, never blocking (a FIFO in its place)."""
        where, at = self._at(name)
        return os.open(where, flags | _NOFOLLOW | _CLOEXEC | _NONBLOCK | _BINARY, **at)

    def names(self, prefix: str) -> list[str]:
        """The names in the folder that start with ``prefix``."""
        try:
            listed = os.listdir(self._fd if self._fd is not None else self.path)
        except OSError:
            return []
        return sorted(name for name in listed if name.startswith(prefix))

    def unlink(self, name: str) -> bool:
        """Remove ``name`` if this user may (in a sticky folder: only one's own files)."""
        where, at = self._at(name)
        try:
            os.unlink(where, **at)
        except OSError:
            return False
        return True

    def replace(self, source: str, target: str) -> None:
        """Rename ``source`` over ``target`` (both this user's), atomically."""
        if self._fd is None:
            os.replace(self.path / source, self.path / target)
        else:
            os.replace(source, target, src_dir_fd=self._fd, dst_dir_fd=self._fd)

    def read(self, name: str) -> bytes | None:
        """The start of another process's file (at most :data:`READ_CAP_BYTES`), or None
        when it is gone, unreadable or not a plain file."""
        try:
            fd = self.open_existing(name, os.O_RDONLY)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            chunks: list[bytes] = []
            size = 0
            while size < READ_CAP_BYTES:
                chunk = os.read(fd, min(1 << 20, READ_CAP_BYTES - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
        except OSError:
            return None
        finally:
            os.close(fd)


def writable_plain_file(fd: int) -> bool:
    """Whether ``fd`` is a plain file with one name (a hard link to another file, made
    to have batchops write it, is not)."""
    info = os.fstat(fd)
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1


def _make(path: Path) -> None:
    """Create the folder (world-writable and sticky) unless it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    if os.name == "posix":
        # Made private first, then opened up: there is no moment when others may write
        # in it without the sticky bit.
        os.chmod(path, 0o1777)


def _check_folder(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISDIR(info.st_mode):
        raise _unsafe(path, _("it is not a folder"))
    others_write = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if others_write and not info.st_mode & stat.S_ISVTX:
        raise _unsafe(
            path,
            _(
                "other users may write in it but it is not sticky (chmod +t), so anyone could "
                "remove a running batchops' lock"
            ),
        )


def _unsafe(path: Path, why: str) -> RunInProgressError:
    return RunInProgressError(
        _(
            "the machine-wide run-lock folder {path} is refused: {why}; nothing was sent. "
            "Remove it (root: install -d -m 1777 {path}) or set {variable} to a folder "
            "every batchops user of this machine shares"
        ).format(path=path, why=why, variable=LOCK_DIR_ENV)
    )


def _unusable(path: Path, exc: OSError) -> RunInProgressError:
    return RunInProgressError(
        _(
            "cannot use the machine-wide run-lock folder {path}: {error}; "
            "nothing was sent. Set {variable} to a folder every batchops user of this "
            "machine can write"
        ).format(path=path, error=exc.strerror or exc, variable=LOCK_DIR_ENV)
    )


# ---------------------------------------------------------------- processes


def process_start(pid: int) -> str:
    """When process ``pid`` started, as the system says it ("" where it does not say):
    with the pid, it names one process even after the pid is used again."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            fields = stat_file.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    # Field 22 of proc(5), counted after the command name: the start time in clock ticks.
    return fields[19].decode("ascii", "replace") if len(fields) > 19 else ""


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            fields = stat_file.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return bool(fields) and fields[0] == b"Z"


def alive(pid: int, start: str) -> bool:
    """Whether process ``pid``, started at ``start`` (see :func:`process_start`), runs."""
    if pid <= 0:
        return False
    if not _pid_exists(pid) or _zombie(pid):
        return False
    if start:
        now = process_start(pid)
        if now and now != start:
            return False  # the pid was used again by a process started later
    return True


if sys.platform == "win32":

    def _pid_exists(pid: int) -> bool:
        """``os.kill(pid, 0)`` would end the process on Windows: ask the kernel instead."""
        import ctypes

        kernel = ctypes.WinDLL("kernel32", use_last_error=True)
        synchronize, wait_timeout, access_denied = 0x00100000, 0x00000102, 5
        handle = kernel.OpenProcess(synchronize, False, pid)
        if not handle:
            # Gone, or another user's that this one may not open (then it runs).
            return bool(ctypes.get_last_error() == access_denied)
        try:
            return bool(kernel.WaitForSingleObject(handle, 0) == wait_timeout)
        finally:
            kernel.CloseHandle(handle)

else:

    def _pid_exists(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's process
        except OSError:
            return False
        return True
