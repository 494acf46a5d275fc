"""One run per sheet and target at a time, whatever the checkpoint.

The checkpoint's own lock only stops two runs on one checkpoint file; two runs of one
sheet with different ``--checkpoint`` paths (or ``--no-checkpoint``) would each send
every row, and a ticket suspended twice is stuck. So a run also takes a lock keyed on
the input file's resolved path and the target (gateway and base URL), kept in the
user's state folder (``$XDG_STATE_HOME/batchops/locks``, else
``~/.local/state/batchops/locks``). The lock is an OS lock through ``filelock``: it is
released when the process ends, however it ends, so a killed run leaves nothing to
clean up. Beside it a small file names the holder's PID for the refusal message.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from filelock import FileLock, Timeout

from batchops.errors import RunInProgressError


def state_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/batchops``, else ``~/.local/state/batchops``."""
    xdg = env.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path(env.get("HOME", str(Path.home()))) / ".local" / "state"
    return base / "batchops"


def lock_key(input_path: Path, gateway: str, base_url: str) -> str:
    """The same sheet against the same target gives the same key, from any folder."""
    target = f"{gateway} {base_url.strip().rstrip('/').lower()}"
    identity = f"{input_path.resolve()}\0{target}"
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RunLock:
    """Held for the whole of a run; :meth:`release` (or process exit) lets the next one in."""

    def __init__(
        self, input_path: Path, gateway: str, base_url: str, env: Mapping[str, str]
    ) -> None:
        self.folder = state_dir(env) / "locks"
        key = lock_key(input_path, gateway, base_url)
        self.path = self.folder / f"{key}.lock"
        self._holder = self.folder / f"{key}.pid"
        self._input = input_path
        self._target = base_url
        self._lock: FileLock | None = None

    def acquire(self) -> RunLock:
        """Take the lock at once or raise :class:`RunInProgressError` naming the holder."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise RunInProgressError(
                f"cannot create the run-lock folder {self.folder}: {exc.strerror or exc}; "
                "set XDG_STATE_HOME to a writable folder"
            ) from None
        lock = FileLock(str(self.path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise RunInProgressError(
                f"{self._input} is in use by another batchops run against {self._target} "
                f"({self._holder_text()}); two runs of one sheet could operate a ticket "
                "twice, so nothing was sent. Wait for it to finish (or stop it), then run "
                "again"
            ) from None
        except OSError as exc:
            raise RunInProgressError(
                f"cannot take the run lock {self.path}: {exc.strerror or exc}"
            ) from None
        self._lock = lock
        with contextlib.suppress(OSError):
            tmp = self._holder.with_name(f".{self._holder.name}.{os.getpid()}")
            tmp.write_text(f"{os.getpid()}\n", encoding="utf-8")
            os.replace(tmp, self._holder)
        return self

    def _holder_text(self) -> str:
        try:
            pid = self._holder.read_text(encoding="utf-8").strip()
        except OSError:
            pid = ""
        return f"PID {pid}" if pid.isdigit() else "PID not known yet"

    def release(self) -> None:
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            self._holder.unlink()
        self._lock.release()
        self._lock = None
