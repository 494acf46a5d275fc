"""Shared fixtures: a real stand-in ITSM server on loopback, a clean environment, the CLI.

Every end-to-end test talks HTTP over 127.0.0.1 to :class:`batchops.sandbox.SandboxThread`;
nothing is mocked on that path.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batchops.cli import main
from batchops.sandbox import SandboxConfig, SandboxState, SandboxThread, Ticket

APP_CODE = "batchops-sandbox"
#: A secret distinctive enough that finding it anywhere proves a leak.
SECRET = "s3cr3t-Value-that-must-never-leak-7f1c"
HEADER = ["sn", "operator", "action_type", "action_message"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own credentials or ITSM address."""
    for name in list(os.environ):
        if name.startswith(("BK_", "BATCHOPS_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def itsm() -> Iterator[SandboxThread]:
    """A stand-in ITSM server whose app secret is :data:`SECRET`."""
    state = SandboxState(SandboxConfig(app_code=APP_CODE, app_secret=SECRET))
    with SandboxThread(state) as server:
        yield server


def creds_env(url: str, *, secret: str = SECRET, **extra: str) -> dict[str, str]:
    """The environment a real user would set for a run against ``url``."""
    env = {
        "BATCHOPS_BASE_URL": url,
        "BK_APP_CODE": APP_CODE,
        "BK_APP_SECRET": secret,
        "BK_USERNAME": "admin",
    }
    env.update(extra)
    return env


def write_csv(
    path: Path,
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = HEADER,
    encoding: str = "utf-8",
) -> Path:
    """Write a CSV input file."""
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    """A CSV report as dicts (UTF-8 with BOM, as batchops writes it)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def seed(server: SandboxThread, *tickets: Ticket) -> None:
    """Create tickets on the running stand-in."""
    server.call(lambda: server.state.seed_tickets(tickets))


def running(sn: str, processor: str = "admin", status: str = "RUNNING") -> Ticket:
    """A ticket created and processed by ``processor``."""
    return Ticket(sn=sn, status=status, creator=processor, processors=[processor])


@dataclass
class CliRun:
    """What one CLI invocation did."""

    exit_code: int
    stdout: str
    stderr: str
    result: Result


def run_cli(
    args: Sequence[str], env: dict[str, str] | None = None, input_text: str | None = None
) -> CliRun:
    """Invoke the real CLI entry point in-process (stdin is not a terminal)."""
    runner = CliRunner()
    result = runner.invoke(main, list(args), env=env, input=input_text, catch_exceptions=False)
    return CliRun(result.exit_code, result.stdout, result.stderr, result)
