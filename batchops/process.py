"""SIGINT/SIGTERM while a run is on: the first stops the run cleanly, a second leaves now."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from batchops.stops import EXIT_INTERRUPTED, RunControl, Stop, StopKind


class RunSignals:
    """SIGINT/SIGTERM while a run is on: stop sending at once; a second signal leaves now.

    The first signal throws the run's stop switch: no request leaves after it, every wait
    (backoff, read-back, outage, rate limit) ends, rows not done stay pending and rows in
    doubt stay in doubt for the next run, and the report is written.

    The second leaves at once, whatever is running: signals are counted by a plain
    ``signal.signal`` handler, which Python runs on the main thread as soon as the
    signal comes, not by a callback that waits its turn in the event loop, which may be
    busy with a long synchronous step (sorting a million tickets, a slow disk's commit)
    when the person insists.

    The stop itself is thrown on the loop: through the loop's own signal handlers where it
    has them (POSIX; the loop learns of the signal through its wakeup fd, whatever Python
    handler is set), elsewhere (Windows, where ``add_signal_handler`` raises
    NotImplementedError) handed to the loop by the plain handler, which then also takes
    SIGBREAK (Ctrl-Break) where it exists.
    """

    def __init__(self, control: RunControl) -> None:
        self._control = control
        self._hits = 0
        self._installed = False
        self._via_loop = False
        #: The handlers to put back, for those the loop does not put back itself.
        self._previous: dict[signal.Signals, object] = {}
        self.install()

    @staticmethod
    def _signals() -> list[signal.Signals]:
        names = ("SIGINT", "SIGTERM", "SIGBREAK")
        return [getattr(signal, name) for name in names if hasattr(signal, name)]

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._stop, sig.name)
            self._via_loop = True
        except NotImplementedError:
            self._via_loop = False
        signals = [signal.SIGINT, signal.SIGTERM] if self._via_loop else self._signals()
        handler = self._handler(None if self._via_loop else loop)
        for sig in signals:
            # Over the loop's no-op Python handler, when it set one: it learns of the
            # signal anyway, and this one counts it at once.
            previous = signal.signal(sig, handler)
            if not self._via_loop:
                self._previous[sig] = previous
        self._installed = True

    def _handler(self, loop: asyncio.AbstractEventLoop | None) -> Callable[[int, object], None]:
        def handler(signum: int, frame: object) -> None:
            self._hits += 1
            if self._hits > 1:
                # Second interrupt: leave now. SQLite's journal keeps the checkpoint whole.
                os._exit(EXIT_INTERRUPTED)
            if loop is not None:
                loop.call_soon_threadsafe(self._stop, signal.Signals(signum).name)

        return handler

    def remove(self) -> None:
        if not self._installed:
            return
        if self._via_loop:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)  # puts the default handler back
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous.clear()
        self._installed = False

    def _stop(self, signame: str) -> None:
        self._control.request_stop(Stop(StopKind.INTERRUPTED, f"interrupted by {signame}"))


def main_thread_takes_signals(loop: asyncio.AbstractEventLoop) -> None:
    """Give ``loop`` a default executor whose threads never take SIGINT or SIGTERM.

    The kernel hands a process-wide signal to any thread that does not block it. When a
    worker thread (name resolution runs in the loop's default executor) took a Ctrl-C
    while the main thread sat in a question's blocking read, nothing woke the read and
    the run hung at the prompt. With the signals blocked in every worker they always
    reach the main thread. Where threads cannot mask signals (Windows) there is nothing
    to do: the console delivers Ctrl-C through its own handler thread there.
    """
    if hasattr(signal, "pthread_sigmask"):
        loop.set_default_executor(
            ThreadPoolExecutor(thread_name_prefix="batchops-worker", initializer=_block_signals)
        )


def _block_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held back on this thread meanwhile; threads started inside inherit it.

    Used around imports that start native threads (numpy's BLAS workers start when numpy
    is imported), for the reason :func:`main_thread_takes_signals` gives. A signal that
    arrives meanwhile waits, and is delivered when the block ends.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start_native_threads_masked() -> None:
    """Import numpy with the signals blocked, so its worker threads never take a Ctrl-C."""
    with signals_blocked():
        import numpy  # noqa: F401
