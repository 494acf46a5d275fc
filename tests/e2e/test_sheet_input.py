"""What the sheet shows is what is sent, end to end over loopback: rows hidden or filtered
out in an XLSX are left out (and sent with --include-hidden, through resumes and reports
fed back), and hidden or control characters in an operator or a message never reach ITSM."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
from aiohttp import web

from batchops.sandbox import SandboxThread

from ..helpers import (
    FAST,
    LoopbackServer,
    creds_env,
    envelope,
    report_of,
    run_cli,
    running,
    seed,
    write_csv,
)


def _report(path: Path) -> list[dict[str, object]]:
    """An XLSX report's data rows as dicts."""
    sheet = openpyxl.load_workbook(path).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip([str(h) for h in rows[0]], row, strict=True)) for row in rows[1:]]


def _operated(server: SandboxThread) -> list[str]:
    return [op.sn for op in server.state.stats.operations]


# --------------------------------------------------------------------------- characters


def test_hidden_and_control_characters_in_an_operator_never_reach_itsm(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A zero-width space or a NUL inside an operator: invalid, not sent. Zero-width
    characters at its ends: trimmed, sent as the plain name (the stand-in's permission
    check sees 'admin'), and the report says so."""
    seed(itsm, *[running(f"OP{i}") for i in range(4)])
    rows = [
        ["OP0", "ad\u200bmin", "SUSPEND", "m"],
        ["OP1", "adm\x00in", "SUSPEND", "m"],
        ["OP2", "\u200badmin\ufeff", "SUSPEND", "m"],
        ["OP3", "admin", "SUSPEND", "m"],
    ]
    src = write_csv(tmp_path / "t.csv", rows)
    out = run_cli(["run", str(src), *FAST], creds_env(itsm.url))
    assert out.exit_code == 1, out.stdout + out.stderr
    assert sorted((op.sn, op.operator, op.applied) for op in itsm.state.stats.operations) == [
        ("OP2", "admin", True),
        ("OP3", "admin", True),
    ]
    report = report_of(src)
    assert [r["status"] for r in report] == ["invalid", "invalid", "success", "success"]
    assert "zero width space (U+200B) at position 3" in report[0]["message"]
    assert "NUL character at position 4" in report[1]["message"]
    assert "operator trimmed of invisible characters" in report[2]["message"]


def test_the_message_itsm_receives_has_no_control_character(tmp_path: Path) -> None:
    """NUL, or an ESC sequence that retitles a terminal, in a message: invalid, never
    sent. Invisible ends are trimmed; tabs and line breaks go as written. The server
    records every body it receives."""
    received: list[dict[str, str]] = []

    def handler(request: web.Request, body: bytes) -> web.Response:
        if "get_tickets" in request.path:
            sns = json.loads(body)["sns"]
            items = [{"sn": sn, "current_status": "RUNNING"} for sn in sns]
            return envelope(data={"items": items})
        if "operate_ticket" in request.path:
            received.append(json.loads(body))
            return envelope(data=None)
        return web.Response(status=404)

    rows = [
        ["M1", "admin", "SUSPEND", "stop\x00now"],
        ["M2", "admin", "SUSPEND", "x \x1b]0;owned\x07 y"],
        ["M3", "admin", "SUSPEND", "\u200bplain\u200b"],
        ["M4", "admin", "SUSPEND", "line one\nline\ttwo"],
    ]
    src = write_csv(tmp_path / "t.csv", rows)
    with LoopbackServer(handler) as server:
        out = run_cli(["run", str(src), *FAST], creds_env(server.url))
        bodies = b"".join(r[3] for r in server.requests)
    assert out.exit_code == 1, out.stdout + out.stderr
    assert sorted((r["sn"], r["action_message"]) for r in received) == [
        ("M3", "plain"),
        ("M4", "line one\nline\ttwo"),
    ]
    assert b"\\u0000" not in bodies and b"\\u001b" not in bodies and b"\\u200b" not in bodies
    report = report_of(src)
    assert [r["status"] for r in report] == ["invalid", "invalid", "success", "success"]
    assert "escape character (ESC, U+001B) at position 3" in report[1]["message"]
