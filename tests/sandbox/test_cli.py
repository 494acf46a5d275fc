"""End-to-end tests of the ``sandbox`` command (``python -m batchops.sandbox``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import run_cli
from ..sandbox_http import send


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_module_entry_point_serves_until_stopped(stop_signal: signal.Signals) -> None:
    """``python -m batchops.sandbox`` prints its URL, serves generated tickets, stops cleanly."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batchops.sandbox",
            "--port",
            "0",
            "--generate",
            "G:5",
            "--no-log",
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:"), first
        rest = "".join(proc.stdout.readline() for _ in range(3))
        assert "batchops-sandbox" in rest
        tickets = send(url, "GET", "/_sandbox/tickets").json["tickets"]
        assert len(tickets) == 5
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(
    "argv", [["--generate", "NOCOUNT"], ["--generate", ":5"], ["--error-5xx-rate", "2"]]
)
def test_sandbox_command_rejects_bad_arguments(argv: list[str]) -> None:
    """Bad --generate specs and out-of-range rates are usage errors (exit 2), not tracebacks.

    ``python -m batchops.sandbox`` is this same click command."""
    out = run_cli(["sandbox", *argv])
    assert out.exit_code == 2
    assert "Error:" in out.stderr
