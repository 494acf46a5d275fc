"""Notifications end to end: the real CLI tells a local ``json://`` receiver how a run ended.

The receiver is a plain HTTP server on 127.0.0.1 (Apprise's ``json://host:port/path``
posts the title, body and type there as JSON). Nothing leaves the machine.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchops.run.notify import DELIVERY_TIMEOUT_S, Notifier
from batchops.sandbox import SandboxThread

from ..helpers import SECRET, creds_env, run_cli, running, seed, write_csv


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running_receiver:
        yield running_receiver


def _one_failing(itsm: SandboxThread, tmp_path: Path) -> Path:
    """Two good rows and one for a ticket that does not exist (failed, code 3900022)."""
    seed(itsm, running("NT1"), running("NT2"))
    return write_csv(
        tmp_path / "t.csv",
        [
            ["NT1", "admin", "SUSPEND", "x"],
            ["NT2", "admin", "SUSPEND", "x"],
            ["GONE1", "admin", "SUSPEND", "x"],
        ],
    )


def test_problem_run_is_told_with_its_summary_and_no_secret(
    itsm: SandboxThread, receiver: Receiver, tmp_path: Path
) -> None:
    """A run ending with a failed row (exit 1) sends one notification: counts, elapsed, the
    top failure reason, the report path and the exit code; never the app secret."""
    src = _one_failing(itsm, tmp_path)
    out = run_cli(["run", str(src), "--notify", receiver.url()], creds_env(itsm.url))
    assert out.exit_code == 1, out.stdout + out.stderr
    assert len(receiver.received) == 1
    message = receiver.received[0]
    assert message["type"] == "failure"
    assert "t.csv" in message["title"] and "exit 1" in message["title"]
    body = message["message"]
    assert "exit code: 1" in body
    assert "rows: 3 (2 success, 1 failed)" in body
    assert "elapsed:" in body
    assert "top failure reasons:" in body and "[3900022]" in body
    assert f"report: {(tmp_path / 't.report.csv').resolve()}" in body
    assert SECRET not in json.dumps(message)
    assert "Warning" not in out.stderr


def test_success_is_not_told_by_default_but_is_with_always(
    itsm: SandboxThread, receiver: Receiver, tmp_path: Path
) -> None:
    """Exit 0 sends nothing with the default --notify-on problems; --notify-on always sends
    an 'info' message saying it succeeded."""
    seed(itsm, running("OK1"), running("OK2"))
    src = write_csv(tmp_path / "ok.csv", [["OK1", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(src), "--notify", receiver.url()], creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    assert receiver.received == []

    src = write_csv(tmp_path / "ok2.csv", [["OK2", "admin", "SUSPEND", "x"]])
    out = run_cli(
        ["run", str(src), "--notify", receiver.url(), "--notify-on", "always"],
        creds_env(itsm.url),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert len(receiver.received) == 1
    assert receiver.received[0]["type"] == "info"
    assert "succeeded" in receiver.received[0]["title"]
    assert "exit code: 0" in receiver.received[0]["message"]


def test_profile_list_and_flags_notify_every_url(
    itsm: SandboxThread, receiver: Receiver, tmp_path: Path
) -> None:
    """A profile's notify list is used; a --notify flag replaces it (flag > profile)."""
    profile = tmp_path / "batchops.toml"
    profile.write_text(
        f'[profiles.ops]\nnotify = ["{receiver.url("a")}", "{receiver.url("b")}"]\n'
        'notify_on = "always"\n',
        encoding="utf-8",
    )
    seed(itsm, running("PR1"), running("PR2"))
    src = write_csv(tmp_path / "p.csv", [["PR1", "admin", "SUSPEND", "x"]])
    args = ["run", str(src), "--config", str(profile), "--profile", "ops"]
    out = run_cli(args, creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    assert len(receiver.received) == 2

    src = write_csv(tmp_path / "q.csv", [["PR2", "admin", "SUSPEND", "x"]])
    args = ["run", str(src), "--config", str(profile), "--profile", "ops"]
    out = run_cli([*args, "--notify", receiver.url("c")], creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    assert len(receiver.received) == 3


def test_error_before_sending_is_told(receiver: Receiver, tmp_path: Path) -> None:
    """A run that stops with exit 2 (--strict and an invalid row) still tells, with the
    error text."""
    src = write_csv(tmp_path / "bad.csv", [["B1", "", "SUSPEND", "x"]])
    out = run_cli(["run", str(src), "--sandbox", "--strict", "--notify", receiver.url()])
    assert out.exit_code == 2
    assert len(receiver.received) == 1
    assert "failed (exit 2)" in receiver.received[0]["title"]
    assert "--strict" in receiver.received[0]["message"]


def _refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"json://127.0.0.1:{port}/KEYdoNotShow42"


def test_undeliverable_is_a_warning_and_keeps_the_exit_code(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Nobody listening: one 'Warning:' line on stderr (no URL key in it), the report is
    written and the exit code is the run's own."""
    src = _one_failing(itsm, tmp_path)
    out = run_cli(["run", str(src), "--notify", _refused_url()], creds_env(itsm.url))
    assert out.exit_code == 1, out.stdout + out.stderr
    assert "Warning: notification to json://… could not be delivered" in out.stderr
    assert "KEYdoNotShow42" not in out.stdout + out.stderr
    assert (tmp_path / "t.report.csv").exists()


def test_a_receiver_that_never_answers_delays_the_exit_only_a_few_seconds(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A receiver that accepts the connection and never answers: the run still ends, with
    its own exit code, within the delivery bound plus a margin."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"json://127.0.0.1:{silent.getsockname()[1]}/hook"
        src = _one_failing(itsm, tmp_path)
        started = time.monotonic()
        out = run_cli(["run", str(src), "--notify", url], creds_env(itsm.url))
        took = time.monotonic() - started
    assert out.exit_code == 1, out.stdout + out.stderr
    assert "Warning: notification to json://…" in out.stderr
    assert took < DELIVERY_TIMEOUT_S + 10


def test_url_apprise_does_not_know_is_refused_before_anything_is_sent(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """--notify with an unknown scheme: exit 2 at once, nothing sent, the URL's key not
    echoed."""
    src = _one_failing(itsm, tmp_path)
    out = run_cli(["run", str(src), "--notify", "nosuch://TOKENxyz123"], creds_env(itsm.url))
    assert out.exit_code == 2
    assert out.stderr.startswith("Error: --notify nosuch://…")
    assert "TOKENxyz123" not in out.stderr
    assert sum(itsm.state.stats.requests.values()) == 0


def test_secrets_are_scrubbed_from_what_is_sent(receiver: Receiver) -> None:
    """Whatever text a notification carries, a known secret in it leaves as '***'."""
    notifier = Notifier.from_settings([receiver.url()], "always", [SECRET])
    problems = notifier.send(f"title {SECRET}", f"body with {SECRET} inside", failed=True)
    assert problems == []
    assert len(receiver.received) == 1
    assert SECRET not in json.dumps(receiver.received[0])
    assert "body with *** inside" in receiver.received[0]["message"]
