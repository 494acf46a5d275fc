"""One run per ticket set and target on this machine at a time, whatever the checkpoint.

The checkpoint's own lock only stops two runs on one checkpoint file; two runs of one
sheet with different ``--checkpoint`` paths (or ``--no-checkpoint``) would each send
every row, and a ticket suspended twice is stuck. So a run also takes a lock keyed on
what it operates, not on how it was started:

- the *target* in one spelling (:func:`normal_target`): scheme and host in lower case,
  the host in IDNA, every loopback name (``localhost``, ``127.0.0.1``, ``::1``, …) as
  ``localhost``, the default port written out, dot segments resolved, repeated and
  trailing slashes dropped, and no user or password. The gateway is left out: ESB and
  API gateway of one host reach the same ITSM;
- the *ticket set* (:func:`ticket_set`): the distinct sns of the sheet's valid rows. A
  copy of the file, a hard link, the report fed back, a CSV saved from the XLSX: one set.

The lock lives in the machine-wide folder (:mod:`.machine`), the same for every user and
every ``XDG_STATE_HOME``, so ``sudo``, cron and a second terminal meet there. It is an OS
lock (``flock``; ``filelock`` where there is no ``fcntl``): released when the process
ends, however it ends, so a killed run leaves nothing to clean up. The holder writes its
PID into the lock file, for the refusal message. Two machines running the same sheet
against one ITSM share no lock: no local record can stop that.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import posixpath
import socket
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from filelock import FileLock, Timeout

from batchops.errors import RunInProgressError
from batchops.i18n import _

from .machine import SharedFolder, writable_plain_file

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows (and a test that plays it)
    fcntl = None

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: What a path keeps as it is when it is quoted again (RFC 3986's unreserved and sub-delims).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def normal_target(base_url: str) -> str:
    """``base_url`` in one spelling: every spelling of one ITSM address gives the same text.

    ``HTTP://LocalHost:80/itsm/./`` and ``http://127.0.0.1/itsm`` are one target; so are a
    host in Unicode and in IDNA. No user or password is kept.
    """
    parts = urllib.parse.urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or _DEFAULT_PORTS.get(scheme, 0)
    host = _normal_host(parts.hostname or "")
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{scheme}://{hostport}{_normal_path(parts.path)}"


def _normal_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    address = _address(host)
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        # 0.0.0.0 and :: reach this machine too.
        return "localhost" if address.is_loopback or address.is_unspecified else str(address)
    if host == "localhost" or host.endswith(".localhost"):
        return "localhost"
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host) and host[0].isdigit():
        # The forms the resolver takes for an IPv4 address: 127.1, 0x7f.0.0.1, 2130706433.
        with contextlib.suppress(OSError):
            return ipaddress.IPv4Address(socket.inet_aton(host))
    return None


def _normal_path(path: str) -> str:
    text = urllib.parse.quote(urllib.parse.unquote(path), safe=_PATH_SAFE)
    if not text.strip("/"):
        return ""
    resolved = posixpath.normpath("/" + text)  # dot segments, repeated slashes
    resolved = "/" + resolved.lstrip("/")  # normpath keeps a leading "//"
    return "" if resolved == "/" else resolved.rstrip("/")


def ticket_set(sns: Iterable[str]) -> str:
    """The digest of a set of sns: the same tickets in any order, any number of times."""
    digest = hashlib.sha256(b"batchops-tickets-v1")
    for sn in sorted(set(sns)):
        digest.update(b"\0" + sn.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def lock_key(target: str, tickets: str) -> str:
    """The lock's name for a target (:func:`normal_target`) and a :func:`ticket_set`."""
    return hashlib.sha256(f"{target}\0{tickets}".encode()).hexdigest()[:32]


class RunLock:
    """Held for the whole of a run; :meth:`release` (or process exit) lets the next one in."""

    def __init__(
        self,
        base_url: str,
        sns: Iterable[str],
        folder: Path | None = None,
        *,
        source: Path | None = None,
    ) -> None:
        self.target = normal_target(base_url)
        #: The input, for the refusal message only (it is no part of the key).
        self._source = source
        self.key = lock_key(self.target, ticket_set(sns))
        self._folder_path = folder
        self.folder: SharedFolder | None = None
        self.name = f"run-{self.key}.lock"
        self._fd: int | None = None
        self._soft: FileLock | None = None

    def acquire(self) -> RunLock:
        """Take the lock at once or raise :class:`RunInProgressError` naming the holder."""
        folder = SharedFolder.open(self._folder_path)
        try:
            if fcntl is None:
                self._take_soft(folder)
            else:
                self._take(folder)
        except BaseException:
            folder.close()
            raise
        self.folder = folder
        return self

    def _take(self, folder: SharedFolder) -> None:
        assert fcntl is not None
        fd = self._open(folder)
        try:
            if not writable_plain_file(fd):
                raise self._refused_file(folder, _("it is not a plain file (a link?)"))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._held(folder, _holder(fd)) from None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _open(self, folder: SharedFolder) -> int:
        """The lock file, created for every user (0666) or opened as another user left it."""
        try:
            try:
                return folder.create(self.name, os.O_RDWR, 0o666)
            except FileExistsError:
                pass
            try:
                return folder.open_existing(self.name, os.O_RDWR)
            except PermissionError:
                # Another user's file that this one may not write: flock needs no more
                # than reading it (the PID then stays as it is).
                return folder.open_existing(self.name, os.O_RDONLY)
        except OSError as exc:
            raise self._refused_file(folder, exc.strerror or str(exc)) from None

    def _take_soft(self, folder: SharedFolder) -> None:
        lock = FileLock(str(folder.path / self.name), mode=0o666)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise self._held(folder, _read_pid(folder, self.name + ".pid")) from None
        except OSError as exc:
            raise self._refused_file(folder, exc.strerror or str(exc)) from None
        self._soft = lock
        with contextlib.suppress(OSError):
            fd = folder.create(f".{self.name}.{os.getpid()}", os.O_WRONLY, 0o644)
            with os.fdopen(fd, "w", encoding="ascii") as holder:
                holder.write(f"{os.getpid()}\n")
            folder.replace(f".{self.name}.{os.getpid()}", self.name + ".pid")

    def _held(self, folder: SharedFolder, pid: str) -> RunInProgressError:
        who = f"PID {pid}" if pid else _("PID not known yet")
        text = (
            _(
                "the tickets of {source} are in use by another batchops run ({who}) against "
                "{target}; two runs of one ticket set could operate a ticket twice, so nothing "
                "was sent. Wait for it to finish (or stop it), then run again"
            )
            if self._source
            else _(
                "these tickets are in use by another batchops run ({who}) against "
                "{target}; two runs of one ticket set could operate a ticket twice, so nothing "
                "was sent. Wait for it to finish (or stop it), then run again"
            )
        )
        return RunInProgressError(text.format(source=self._source, who=who, target=self.target))

    def _refused_file(self, folder: SharedFolder, why: str) -> RunInProgressError:
        return RunInProgressError(
            _("cannot take the run lock {path}: {why}; nothing was sent").format(
                path=folder.path / self.name, why=why
            )
        )

    def release(self) -> None:
        """Let the next run in (a second call does nothing)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # no stale PID for the next refusal to name
            os.close(self._fd)  # closing it releases the flock
            self._fd = None
        if self._soft is not None:
            if self.folder is not None:
                self.folder.unlink(self.name + ".pid")
            self._soft.release()
            self._soft = None
        if self.folder is not None:
            self.folder.close()
            self.folder = None


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def _read_pid(folder: SharedFolder, name: str) -> str:
    data = folder.read(name) or b""
    text = data[:32].decode("ascii", "replace").strip()
    return text if text.isdigit() else ""
