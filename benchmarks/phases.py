"""Where one run's time goes: the ``batchops`` command with its steps timed.

``python -m benchmarks.phases run FILE --base-url URL ...`` runs the real CLI with the
same arguments and, when it ends, prints to stderr each step's calls, CPU and wall time:
loading, opening the checkpoint, the reachability probe, the pre-check, the sending, the
checkpoint's commits (most inside the sending; the last ones in writing the results and
closing), writing the results and closing the checkpoint.
The bench says how fast a run is; this says which step to look at. The timers wrap the
steps' module functions, so they cost nothing per row except around each commit.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn


@dataclass
class Step:
    """One timed step: how often it ran and what it took in total."""

    calls: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def add(self, cpu_s: float, wall_s: float) -> None:
        self.calls += 1
        self.cpu_s += cpu_s
        self.wall_s += wall_s


STEPS: dict[str, Step] = {}


def timed(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` (a function or an async function) by a timed one."""
    original = getattr(owner, name)
    step = STEPS.setdefault(label, Step())

    if _is_async(original):

        @functools.wraps(original)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                step.add(time.process_time() - cpu, time.perf_counter() - wall)

        setattr(owner, name, timed_async)
        return

    @functools.wraps(original)
    def timed_sync(*args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            step.add(time.process_time() - cpu, time.perf_counter() - wall)

    setattr(owner, name, timed_sync)


def _is_async(function: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(function)


def install() -> None:
    """Time the steps of a run (imports batchops; call before the CLI starts)."""
    from batchops.checkpoint import group_commit, store
    from batchops.run import flow as pipeline
    from batchops.run import network as sending

    timed(pipeline, "load", "load and validate")
    timed(pipeline, "open_run", "open the checkpoint")
    timed(sending, "check_reachable", "reachability probe")
    timed(sending, "precheck", "pre-check")
    timed(sending, "send_rows", "send")
    timed(group_commit.GroupCommit, "_write", "  checkpoint commits (all)")
    timed(pipeline, "finish", "write the results")
    timed(store.Checkpoint, "close", "close the checkpoint")


def table(started: float) -> str:
    lines = [f"{'step':32} {'calls':>6} {'CPU ms':>9} {'wall ms':>9}"]
    for label, step in STEPS.items():
        if step.calls:
            lines.append(
                f"{label:32} {step.calls:6d} {step.cpu_s * 1000:9.1f} {step.wall_s * 1000:9.1f}"
            )
    # CPU of the whole process, imports included; wall time from this module's start.
    lines.append(
        f"{'whole process':32} {'':6} {time.process_time() * 1000:9.1f} "
        f"{(time.perf_counter() - started) * 1000:9.1f}"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> NoReturn:
    started = time.perf_counter()
    install()
    from batchops import cli

    real_exit = os._exit

    def exit_after_the_table(status: int) -> NoReturn:
        sys.stderr.write(table(started) + "\n")
        sys.stderr.flush()
        real_exit(status)

    # The command leaves through os._exit (batchops.cli.main.entry); the table goes first.
    os._exit = exit_after_the_table
    sys.argv = ["batchops", *argv]
    cli.entry()


if __name__ == "__main__":
    main(sys.argv[1:])
