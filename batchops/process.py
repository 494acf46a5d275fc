"""Everything batchops changes about its own process, in one place, each with its reason.

A process-wide change (a signal handler, the collector's threshold, a resource limit,
the umask, leaving without the interpreter's teardown) outlives the code that made it
and reaches every thread and library of the process, so none is made anywhere else:

- **SIGINT / SIGTERM during a run** (:class:`RunSignals`): the first throws the run's stop
  switch (the report is written, rows not done stay pending), a second leaves at once.
- **SIGINT / SIGTERM while an output's temp file is written** (:func:`leave_on_signal`):
  remove the temp file, say so, exit 130; otherwise it would be left behind.
- **SIGINT while a question waits for an answer** (:func:`default_sigint`): Python's own
  handler, so Ctrl-C reaches a blocking read as KeyboardInterrupt (it means "no").
- **SIGINT / SIGTERM blocked in worker threads** (:func:`main_thread_takes_signals`,
  :func:`start_native_threads_masked`): only the main thread takes them, so a Ctrl-C at a
  prompt is never swallowed by a thread nobody waits on.
- **SIGXFSZ ignored** (:func:`ignore_file_size_signal`): past ``ulimit -f`` a write fails
  and the run stops saying so, instead of the kernel killing it mid-write.
- **The open-files limit raised** (:func:`raise_open_files_limit`): towards the hard
  limit, so ``--concurrency`` connections do not fail with EMFILE.
- **The umask read** (:func:`current_umask`): reading it means setting it for a moment.
- **click's words in the user's language** (:func:`speak_click_in`): click asks gettext's
  global domain, which follows ``LANGUAGE``/``LANG`` rather than ``--lang``; its modules'
  lookups are pointed at batchops' catalogs instead.

Two of them are speed tricks, kept because a measurement shows what they buy
(BENCHMARKS.md, "Kept after measuring"):

- **Fewer young-generation collections during the send** (:func:`fewer_young_collections`).
- **Leaving with ``os._exit``** once everything is written (:func:`leave_without_teardown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any, NoReturn

from batchops.exits import Exit
from batchops.i18n import _
from batchops.stops import RunControl, Stop, StopKind


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
                os._exit(Exit.INTERRUPTED)
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
        reason = _("interrupted by {signal}").format(signal=signame)
        self._control.request_stop(Stop(StopKind.INTERRUPTED, reason))


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


@contextlib.contextmanager
def leave_on_signal(on_leave: Callable[[str], None]) -> Iterator[None]:
    """Meanwhile, SIGINT or SIGTERM call ``on_leave(signal name)`` and end the process (130).

    By default SIGTERM ends Python without any cleanup, and a Ctrl-C would travel up
    through code that cannot handle it. ``on_leave`` must be safe at any moment (it runs
    in a signal handler). Outside the main thread, where handlers cannot be set, nothing
    changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: FrameType | None) -> None:
        on_leave(signal.Signals(signum).name)
        os._exit(Exit.INTERRUPTED)

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def default_sigint() -> Iterator[None]:
    """Python's own SIGINT handler meanwhile: a Ctrl-C is a KeyboardInterrupt here.

    Inside ``asyncio.run`` a first Ctrl-C only schedules a cancellation, which cannot
    reach code blocked on the terminal (a question waiting for its answer).
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignore_file_size_signal() -> None:
    """Past a file-size limit (``ulimit -f``) a write fails instead of killing the process.

    The kernel's default for SIGXFSZ ends the run outright, mid-write; ignored, the write
    raises EFBIG and the run stops saying so (resumable). Windows has no such signal.
    """
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def raise_open_files_limit(wanted: int) -> int | None:
    """Raise the soft limit of open files towards ``wanted`` (at most the hard limit).

    Returns the soft limit now in force; None when there is none (unlimited, or Windows,
    which has no such limit). A limit the system refuses to raise is left as it was.
    """
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        goal = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (goal, hard))
            soft = goal
    return None if soft == resource.RLIM_INFINITY else soft


def current_umask() -> int:
    """The process's umask. The only way to read it is to set it, so it is put back at once."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def fewer_young_collections() -> Iterator[None]:
    """Let the cycle collector's youngest generation fill up more before it runs.

    With a hundred requests in flight, thousands of young objects are alive at any time,
    and Python's default (a collection every 700 net allocations) walks them over and
    over. Measured (BENCHMARKS.md, "Kept after measuring"): without it the client spends
    about 60 % more CPU per row at C=100, D=0 (20,000 rows: 5.4–7.1 s user against
    7.7–11.0 s). Nothing of a run's own is cyclic garbage, so the threshold is raised for
    the send and put back after.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], _YOUNG_GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


_YOUNG_GC_THRESHOLD = 20_000


def leave_without_teardown(status: object) -> NoReturn:
    """End the process as ``sys.exit(status)`` would, without the interpreter's teardown.

    Called once the command is done: every report, summary and checkpoint is written,
    closed and in place; all that is left is freeing pandas' and numpy's modules object
    by object, 0.27 s on every command (BENCHMARKS.md, "Kept after measuring"). The
    price: ``atexit`` handlers do not run, so nothing in batchops may rely on one. The
    status is read as the interpreter reads a :class:`SystemExit`'s: None is success,
    an int is the code, anything else is printed to stderr and exits 1.
    """
    if status is None:
        code = 0
    elif isinstance(status, int):
        code = status
    else:
        with contextlib.suppress(OSError):
            print(status, file=sys.stderr)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def speak_click_in(gettext: Callable[[str], str], ngettext: Callable[[str, str, int], str]) -> None:
    """Point click's own messages ("Usage:", "Error: No such option …") at ``gettext`` and
    ``ngettext``: click's modules bind the standard library's at import (``from gettext
    import gettext as _``), and those read the environment's language, not ``--lang``."""
    import click

    for name in (
        "core",
        "decorators",
        "exceptions",
        "formatting",
        "parser",
        "termui",
        "types",
        "shell_completion",
        "_termui_impl",
    ):
        module: Any = sys.modules.get(f"click.{name}") or getattr(click, name, None)
        if module is None:
            continue
        if hasattr(module, "_"):
            module._ = gettext
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext
