"""The advice a stopped run prints is runnable as printed, and prints no secret.

A notification URL holds a webhook key, a proxy URL may hold a password: neither may be
printed, and a masked value (``json://…``, ``user:***@``) would be refused (exit 2) or
fail. The command names the variable that holds the value (``--notify "$HOOK"``, which
the shell expands again), or leaves the option out and says so in one line. Here each
printed command is run verbatim, once ITSM is back: split like a shell would, or given
to bash itself when it names a variable, with the same environment.
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from batchops.sandbox import SandboxThread

from ..helpers import (
    FAST,
    cli,
    creds_env,
    host_env,
    report_of,
    rows_for,
    run_cli,
    tickets,
    write_csv,
)
from ..run.test_notify import Receiver
from .test_outages import _outage_after
from .test_proxy import ForwardingProxy


def _printed_command(stderr: str) -> str:
    """The command after "to continue (…), run: " in a run's advice."""
    (line,) = [line for line in stderr.splitlines() if line.startswith("to continue (")]
    return line.split("run: ", 1)[1]


def _through_bash(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` as a person pastes it into bash, with this environment and ``env``."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    inherited = host_env()
    return subprocess.run(
        ["bash", "-c", command],
        env={**inherited, **env, "PATH": path},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _all_done(src: Path, count: int) -> None:
    assert [r["status"] for r in report_of(src)] == ["success"] * count


def test_after_an_outage_stop_with_notify_the_printed_command_finishes_the_work(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """--notify with a URL no variable holds, and ITSM gone mid-run for longer than
    --outage-wait: exit 3, the advice leaves --notify out (saying so) and shows no part
    of its URL; run verbatim once ITSM is back, it ends exit 0, every row success."""
    server = stand_in(tickets("AN", 60), latency_ms=20)
    src = write_csv(tmp_path / "t.csv", rows_for([f"AN{i}" for i in range(60)]))
    args = ["-c", "4", "--server-timeout", "2", "--outage-wait", "2"]
    with Receiver() as receiver:
        outage = _outage_after(server, 10, None)
        first = cli(server, src, *args, "--notify", receiver.url("KEY-abc123"))
        outage.join(5)
        assert first.exit_code == 3, first.stdout + first.stderr
        assert len(receiver.received) == 1  # the stop was told
    assert "KEY-abc123" not in first.stdout + first.stderr
    assert "json://" not in first.stderr
    assert "(--notify is not repeated above: its URL holds a key." in first.stderr
    words = shlex.split(_printed_command(first.stderr))
    assert words[:2] == ["batchops", "run"] and "--notify" not in words

    server.come_back()
    again = run_cli(words[1:], creds_env(server.url))
    assert again.exit_code == 0, again.stdout + again.stderr
    _all_done(src, 60)
    assert server.state.stats.double_suspends == 0


def test_a_notify_url_held_by_a_variable_is_named_by_it_and_still_notifies(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """The shell expanded "$HOOK" into the command line: the advice names $HOOK, and run
    by bash it finishes the work and tells the receiver again."""
    server = stand_in(tickets("AV", 5))
    src = write_csv(tmp_path / "t.csv", rows_for([f"AV{i}" for i in range(5)]))
    with Receiver() as receiver:
        env = creds_env(server.url, HOOK=receiver.url("KEY-xyz789"))
        server.go_down()
        first = run_cli(
            ["run", str(src), *FAST, "--notify", env["HOOK"], "--notify-on", "always"], env
        )
        assert first.exit_code == 3, first.stdout + first.stderr
        command = _printed_command(first.stderr)
        assert '--notify "$HOOK"' in command and "KEY-xyz789" not in first.stderr
        server.come_back()
        again = _through_bash(command, env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert [m["type"] for m in receiver.received] == ["failure", "info"]
    _all_done(src, 5)


def test_a_proxy_password_is_never_printed_and_the_command_goes_through_the_proxy(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """--proxy with a password held by $CORP_PROXY: the advice says "$CORP_PROXY", and
    run by bash every request of the second run reaches the proxy with the real
    password. Without such a variable, --proxy is left out (saying so): the printed
    command holds no password and, run verbatim, finishes the work."""
    seed_rows = [f"AP{i}" for i in range(6)]
    itsm.call(lambda: itsm.state.seed_tickets(tickets("AP", 6)))
    src = write_csv(tmp_path / "t.csv", rows_for(seed_rows[:3]))
    other = write_csv(tmp_path / "u.csv", rows_for(seed_rows[3:]))
    with ForwardingProxy() as proxy:
        secret_proxy = f"http://u:pw-99@127.0.0.1:{proxy.port}"
        env = creds_env(itsm.url, CORP_PROXY=secret_proxy)
        itsm.go_down()
        first = run_cli(["run", str(src), *FAST, "--proxy", secret_proxy], env)
        alone = run_cli(["run", str(other), *FAST, f"--proxy={secret_proxy}"], creds_env(itsm.url))
        itsm.come_back()
        for out in (first, alone):
            assert out.exit_code == 3, out.stdout + out.stderr
            assert "pw-99" not in out.stdout + out.stderr and "***" not in out.stderr
        command = _printed_command(first.stderr)
        assert '--proxy "$CORP_PROXY"' in command
        seen = len(proxy.seen)
        again = _through_bash(command, env)
        assert again.returncode == 0, again.stdout + again.stderr
        through = proxy.seen[seen:]
        password = "Basic " + base64.b64encode(b"u:pw-99").decode()
        assert through and {s.headers.get("Proxy-Authorization") for s in through} == {password}

    assert "(--proxy is not repeated above: its URL holds a password." in alone.stderr
    words = shlex.split(_printed_command(alone.stderr))
    assert not any(word.startswith("--proxy") for word in words)
    direct = run_cli(words[1:], creds_env(itsm.url))
    assert direct.exit_code == 0, direct.stdout + direct.stderr
    _all_done(src, 3)
    _all_done(other, 3)
