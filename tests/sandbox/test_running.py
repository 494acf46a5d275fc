"""Tests of batchops.sandbox.running: start_sandbox, the background thread, shutdown."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from batchops.sandbox import Faults, SandboxState, SandboxThread, start_sandbox

from ..sandbox_http import AUTH_ADMIN, GW_SHORT, auth_header, operate_gw, sandbox_with, seed


def test_start_sandbox_serves_on_an_ephemeral_port() -> None:
    """start_sandbox binds 127.0.0.1:0 and returns a runner the caller cleans up."""
    state = SandboxState()
    state.generate_tickets("A", 1)

    async def run() -> tuple[str, int, Any]:
        runner, url = await start_sandbox(state)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    url + GW_SHORT + "get_ticket_status/",
                    params={"sn": "A0000001"},
                    headers=auth_header(**AUTH_ADMIN),
                ) as resp,
            ):
                return url, resp.status, await resp.json()
        finally:
            await runner.cleanup()

    url, status, body = asyncio.run(run())
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    assert (status, body["data"]["current_status"]) == (200, "RUNNING")


def test_sandbox_thread_reports_a_port_in_use(sb: SandboxThread) -> None:
    """A SandboxThread that cannot bind raises in ``with`` instead of hanging."""
    port = urlsplit(sb.url).port
    assert port is not None
    with pytest.raises(OSError), SandboxThread(port=port):
        pass


def test_hanging_answers_do_not_block_shutdown() -> None:
    """Stopping the sandbox wakes answers held back by a long hang."""
    start = time.monotonic()
    with sandbox_with(faults=Faults(lost_rate=1.0, lost_hang_s=60)) as sb:
        seed(sb, "S1")
        with pytest.raises(TimeoutError):
            operate_gw(
                sb,
                {"sn": "S1", "operator": "bob", "action_type": "SUSPEND", "action_message": "m"},
                timeout=0.2,
            )
    assert time.monotonic() - start < 5
