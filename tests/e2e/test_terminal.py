"""Nothing from outside reaches the terminal raw: a hostile ITSM's messages, hostile cells,
file names and checkpoint contents, through every command, on stdout and stderr.

A terminal acts on ESC (``ESC ] 0 ; … BEL`` retitles the window, ``ESC ] 52 ; c ; …``
writes the clipboard, ``ESC [ 2 J`` clears the screen), on the 8-bit CSI (``0x9b``) and,
for the eye, on bidi overrides (``U+202E`` reverses what follows). Every one of them is
shown as a visible escape (``\\x1b``); Chinese text is shown as it is.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from aiohttp import web

from batchops.sandbox import SandboxThread

from ..helpers import (
    FAST,
    LoopbackServer,
    cli,
    creds_env,
    envelope,
    host_env,
    run_cli,
    running,
    seed,
    write_csv,
)

TITLE = "\x1b]0;pwned\x07"
CLIPBOARD = "\x1b]52;c;ZWNobyBvd25lZA==\x07"
CLEAR = "\x1b[2J\x1b[1;31m"
#: A server's message with every kind of control, inside Chinese text that must stay readable.
HOSTILE = f"拒绝操作{TITLE}{CLIPBOARD}{CLEAR}\x9b2J\u202e反转\r\x7f"
#: What a terminal acts on (the carriage return is in the pty test's own output: onlcr).
ACTED_ON = ("\x1b", "\x07", "\x9b", "\u202e")


def inert(text: str) -> bool:
    """Whether ``text`` holds nothing a terminal acts on (and no raw carriage return)."""
    return not any(char in text for char in (*ACTED_ON, "\r", "\x7f"))


def hostile_itsm(request: web.Request, body: bytes) -> web.Response:
    """An ITSM whose every message is :data:`HOSTILE`: reads list the tickets RUNNING,
    operations are refused with it, and the ticket AUTH's is an authentication stop."""
    if "/itsm/" not in request.path:
        return web.Response(status=404)  # the reachability probe
    if "get_tickets" in request.path:
        sns = json.loads(body)["sns"]
        items = [{"sn": sn, "current_status": "RUNNING"} for sn in sns]
        return envelope(data={"items": items}, message=HOSTILE)
    if json.loads(body)["sn"] == "AUTH":
        return envelope(1306000, f"app authentication failed: {HOSTILE}")
    return envelope(3900004, f"接口异常，请检查请求参数: [ErrorDetail(string='{HOSTILE}')]")


def test_a_hostile_itsm_reaches_no_terminal_from_run_plan_or_status(tmp_path: Path) -> None:
    """Refusals, a stop and pre-check answers all carrying terminal controls: run (plain,
    -v, -vv), plan and status (plain and --json) print them escaped, on stdout and
    stderr alike, and the Chinese around them as it is."""
    rows = [["H1", "admin", "SUSPEND", "中文说明"], ["H2", "admin", "SUSPEND", "x"]]
    src = write_csv(tmp_path / "t.csv", [*rows, ["AUTH", "admin", "SUSPEND", "x"]])
    checkpoint = str(tmp_path / ".batchops" / "t.checkpoint.db")
    with LoopbackServer(hostile_itsm) as server:
        env = creds_env(server.url)
        outs = [
            run_cli(["run", str(src), *FAST, "-c", "1"], env),
            run_cli(["run", str(src), *FAST, "-c", "1", "-v", "--fresh"], env),
            run_cli(["run", str(src), *FAST, "-c", "1", "-vv", "--fresh"], env),
            run_cli(["plan", str(src), "-vv"], env),
        ]
    outs += [run_cli(["status", checkpoint]), run_cli(["status", checkpoint, "--json"])]
    for out in outs:
        assert inert(out.stdout), out.stdout
        assert inert(out.stderr), out.stderr
    first, verbose = outs[0], outs[1]
    assert first.exit_code == 3
    assert "top reasons: 2 × [3900004] 拒绝操作\\x1b]0;pwned\\x07\\x1b]52;c;" in first.stderr
    assert "stopped: " in first.stderr and "\\x9b2J\\u202e反转\\x0d\\x7f" in first.stderr
    assert "rejected: 拒绝操作\\x1b]0;pwned" in verbose.stderr
    status = outs[4].stdout
    assert "stopped: " in status and "拒绝操作\\x1b]0;pwned\\x07" in status
    assert json.loads(outs[5].stdout)["run"]["stopped"].endswith(HOSTILE)


def test_json_log_lines_are_inert_parse_and_keep_chinese(tmp_path: Path) -> None:
    """--log-json (with -v, the requests too): every line is JSON, holds no control a
    terminal acts on, reads Chinese as Chinese, and parses back to the server's message
    exactly."""
    src = write_csv(tmp_path / "t.csv", [["H1", "admin", "SUSPEND", "x"]])
    with LoopbackServer(hostile_itsm) as server:
        out = run_cli(["run", str(src), *FAST, "--log-json", "-v"], creds_env(server.url))
    assert out.exit_code == 1, out.stdout + out.stderr
    assert inert(out.stderr), out.stderr
    assert "拒绝操作" in out.stderr  # not \u62d2\u7edd
    events = [json.loads(line) for line in out.stderr.splitlines()]
    (failed,) = [e for e in events if e["event"] == "row_failed"]
    assert failed["message"] == HOSTILE


def test_hostile_cells_and_file_names_reach_no_terminal_from_any_command(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """An input, report and checkpoint whose file name retitles the window, and sns,
    operators and messages with OSC 52 and CSI sequences: run, plan, status, report,
    undo and select print every name and cell escaped."""
    seed(itsm, running("OK1"), running("OK2"))
    src = write_csv(
        tmp_path / f"t{TITLE}.csv",
        [
            ["OK1", "admin", "SUSPEND", "正常"],
            [f"BAD{CLIPBOARD}", "admin", "SUSPEND", "x"],
            ["OK2", f"ad{CLEAR}min", "SUSPEND", "x"],
            ["OK2", "admin", "SUSPEND", f"m{TITLE}"],
        ],
    )
    stem = src.with_suffix("")
    checkpoint = str(src.parent / ".batchops" / f"{src.stem}.checkpoint.db")
    report = f"{stem}.report.csv"
    outs = [
        cli(itsm, src),
        run_cli(["undo", report]),
        run_cli(["status", checkpoint]),
        run_cli(["report", checkpoint, "-o", str(tmp_path / f"r{TITLE}.csv")]),
        cli(itsm, src, "--strict", "--fresh"),
        run_cli(["plan", str(src)], creds_env(itsm.url)),
        run_cli(
            ["select", "--status", "SUSPENDED", "-o", str(tmp_path / f"s{CLIPBOARD}.csv")],
            creds_env(itsm.url),
        ),
        run_cli(["plan", str(tmp_path / f"missing{TITLE}.csv")]),
    ]
    for out in outs:
        assert inert(out.stdout), out.stdout
        assert inert(out.stderr), out.stderr
    assert [int(out.exit_code) for out in outs] == [1, 0, 0, 1, 2, 1, 0, 2], [
        o.stdout + o.stderr for o in outs
    ]
    assert f"report: {tmp_path}/t\\x1b]0;pwned\\x07.report.csv" in outs[0].stdout
    assert "\\x1b]0;pwned\\x07.csv" in outs[7].stderr


def test_a_tampered_checkpoint_is_shown_escaped_by_status(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A checkpoint edited to carry controls in its input path, target and stop reason:
    status shows them escaped (plain and --json)."""
    seed(itsm, running("T1"))
    src = write_csv(tmp_path / "t.csv", [["T1", "admin", "SUSPEND", "x"]])
    assert cli(itsm, src).exit_code == 0
    checkpoint = tmp_path / ".batchops" / "t.checkpoint.db"
    with sqlite3.connect(checkpoint) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'input_path'", (f"in{TITLE}.csv",))
        conn.execute("UPDATE meta SET value = ? WHERE key = 'base_url'", (f"http://x{CLEAR}",))
        conn.execute("UPDATE runs SET stopped = ?, note = ?", (HOSTILE, CLIPBOARD))
    conn.close()
    for args in (["status", str(checkpoint)], ["status", str(checkpoint), "--json"]):
        out = run_cli(args)
        assert out.exit_code == 0, out.stdout + out.stderr
        assert inert(out.stdout + out.stderr), out.stdout
        assert "in\\x1b]0;pwned\\x07.csv" in out.stdout or "in\\u001b]0;pwned" in out.stdout


def test_on_a_real_terminal_the_plan_canary_and_bar_are_inert(tmp_path: Path) -> None:
    """On a pseudo-terminal (stdin and stderr a tty): the plan is shown and asked, the
    canary's refusal (the hostile message) is shown and asked about, the bar is drawn;
    nothing the terminal acts on comes out, and the Chinese reason is readable."""
    src = write_csv(
        tmp_path / f"t{TITLE}.csv",
        [["H1", "admin", "SUSPEND", "x"], ["H2", "admin", "SUSPEND", "x"]],
    )
    with LoopbackServer(hostile_itsm) as server:
        text = _on_a_pty(
            [sys.executable, "-m", "batchops", "run", str(src), "--canary", "1"],
            creds_env(server.url),
            answers=b"y\ny\n",
        )
    assert "Send these operations?" in text and "Send the rest?" in text
    assert "row 2: H1 SUSPEND → failed (拒绝操作\\x1b]0;pwned\\x07" in text
    assert "\r100%|" in text  # the bar redraws itself (its own \r is left alone)
    assert not any(char in text for char in ACTED_ON), repr(text)


def _on_a_pty(args: list[str], env: dict[str, str], answers: bytes) -> str:
    """Run ``args`` with a pseudo-terminal as stdin, stdout and stderr, ``answers`` typed
    ahead; everything it wrote to the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    child_env = host_env()
    child = subprocess.Popen(
        args, stdin=slave, stdout=slave, stderr=slave, env={**child_env, **env}, close_fds=True
    )
    os.close(slave)
    os.write(master, answers)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if child.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child is gone and the terminal closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")
