"""The run's heartbeat: a ``heartbeat`` event every few seconds while the run is connected.

A run nobody watches (cron, a CI job, a log collector reading ``--log-json``) must be
told apart from a hung one, above all while it waits: for an unreachable ITSM, for a
rate-limit pause the gateway asked for, for parked tickets being read back, for earlier
requests that may still land. The heartbeat is its own task on the run's event loop,
so it beats through every one of those waits (they all await; none blocks the loop).

Each beat carries the rows per status, what this run has done of what it sends, its
rate (rows a second since sending began) and ETA, and what it waits for, if anything,
with the seconds that wait may still last.
"""

from __future__ import annotations

import asyncio
import time

from batchops.stops import Stopped

from .context import Run

#: Seconds between two heartbeats (the issue asks for at least one every 10 s).
HEARTBEAT_S = 10.0


def heartbeat_fields(run: Run) -> dict[str, object]:
    """One heartbeat: counts, progress, rate, ETA and the wait, if any."""
    session, pulse = run.connected, run.pulse
    now = time.monotonic()
    done = session.recorder.finished
    sending_for = now - pulse.sending_since if pulse.sending_since else 0.0
    rate = done / sending_for if sending_for > 0 else 0.0
    left = max(0, pulse.to_send - done)
    eta = round(left / rate) if rate > 0 else None
    waiting = session.executor.waiting() if pulse.phase == "sending" else None
    if waiting is None and pulse.waiting and pulse.wait_until > now:
        waiting = pulse.waiting, pulse.wait_until - now
    return {
        "phase": pulse.phase,
        "counts": run.loaded.outcomes.counts(),
        "done": done,
        "to_send": pulse.to_send,
        "rate_rows_s": round(rate, 1),
        "eta_s": eta,
        "elapsed_s": round(now - run.started, 1),
        "waiting": waiting[0] if waiting else None,
        "wait_left_s": round(waiting[1], 1) if waiting else None,
        "parked": session.executor.parking.parked_now,
    }


async def beat(run: Run, every_s: float = HEARTBEAT_S) -> None:
    """Emit a heartbeat every ``every_s`` seconds until the run stops or this is cancelled."""
    control = run.connected.control
    try:
        while True:
            await control.sleep(every_s)
            run.hooks.emit("heartbeat", heartbeat_fields(run))
    except Stopped:
        return


async def stop_beating(task: asyncio.Task[None]) -> None:
    """End the heartbeat (the run is over)."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
