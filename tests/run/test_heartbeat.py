"""The heartbeat's promise; its beats through an outage are tested end to end
(tests/e2e/test_watching.py)."""

from __future__ import annotations

from batchops.run.heartbeat import HEARTBEAT_S


def test_the_heartbeat_beats_at_least_every_10_seconds() -> None:
    """A log collector is promised a beat at least every 10 s (issue 23)."""
    assert 0 < HEARTBEAT_S <= 10
