"""The run's clock: the report's local time, formatted once per second."""

from __future__ import annotations

from datetime import datetime

import pytest

from batchops import clock
from batchops.clock import LocalClock, local_now


def test_local_now_is_the_local_time_to_the_second_with_its_offset() -> None:
    text = local_now()
    moment = datetime.fromisoformat(text)
    assert moment.microsecond == 0
    assert moment.utcoffset() == datetime.now().astimezone().utcoffset()
    assert abs((datetime.now().astimezone() - moment).total_seconds()) < 2


def test_the_clock_formats_once_per_second_and_follows_the_next_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_000.2]
    formatted: list[str] = []

    def fake_local_now() -> str:
        formatted.append(f"t{int(now[0])}")
        return formatted[-1]

    monkeypatch.setattr(clock.time, "time", lambda: now[0])
    monkeypatch.setattr(clock, "local_now", fake_local_now)
    tick = LocalClock()
    assert [tick(), tick()] == ["t1000", "t1000"]
    now[0] = 1_000.9
    assert tick() == "t1000"
    now[0] = 1_001.0
    assert tick() == "t1001"
    assert formatted == ["t1000", "t1001"]


def test_a_failed_format_is_tried_again_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("zone file unreadable")
        return "later"

    monkeypatch.setattr(clock, "local_now", flaky)
    tick = LocalClock()
    with pytest.raises(OSError):
        tick()
    assert tick() == "later"
