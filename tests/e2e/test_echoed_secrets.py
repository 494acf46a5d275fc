"""A server that echoes the secret in every disguise leaves it in no file and no stream.

The server answers over loopback with the app secret JSON-``\\u``-escaped on the wire
(it decodes back to the secret), and in its messages as text that is ``\\u``-escaped
(lower and upper hex), URL-encoded and base64-encoded. ``run`` and ``select`` then
write their files and streams: none may hold the secret in any of those forms.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import openpyxl
from aiohttp import web

from ..helpers import LoopbackServer, creds_env, read_report, run_cli, write_csv

#: Characters that JSON, URLs and base64 each write differently.
SECRET = 'S3cr3t/Value+that=must never&leak"7f\\1c'


def _u_escaped(secret: str, upper: bool = False) -> str:
    return "".join(f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}" for c in secret)


def _forms(secret: str) -> list[str]:
    """Every way the secret could be written down (the test's own list, not the code's)."""
    raw = secret.encode()
    forms = [
        secret,
        json.dumps(secret)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        _u_escaped(secret),
        _u_escaped(secret, upper=True),
    ]
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        forms += [encoded.decode(), encoded.decode().rstrip("=")]
    return forms


FORMS = _forms(SECRET)
#: The secret in every form but its own: what the server writes into its messages.
ECHO = " ".join(["echo:", *FORMS[1:]])
#: What to look for in what batchops wrote: every form, and the secret as a CSV cell has it.
LOOKED_FOR = [*FORMS, SECRET.replace('"', '""')]


def _answer(payload: dict[str, object]) -> web.Response:
    """JSON whose every copy of the secret is \\u-escaped on the wire (parses back to it)."""
    text = json.dumps({**payload, "request_id": f"{SECRET} {ECHO}"})
    text = text.replace(json.dumps(SECRET)[1:-1], _u_escaped(SECRET))
    assert SECRET not in text
    return web.Response(text=text, content_type="application/json")


def _echo(request: web.Request, body: bytes) -> web.Response:
    """A server that echoes the secret in its messages, request ids and ticket fields."""
    said = f"{SECRET} {ECHO}"
    if "/itsm/" not in request.path:  # the reachability probe
        return web.Response(text=said)
    if "get_tickets" in request.path:
        sns = json.loads(body).get("sns") or ["SEL1", "SEL2"]
        items = [
            {
                "sn": sn,
                "current_status": "RUNNING",
                "title": f"title {said}",
                "creator": said,
                "service_id": 1,
                "create_at": "2024-01-01 00:00:00",
                "ticket_url": f"http://itsm/ticket?{said}",
            }
            for sn in sns
        ]
        data = {"items": items, "count": len(items), "total_page": 1, "page": 1}
        return _answer({"result": True, "code": 0, "message": "success", "data": data})
    if "get_ticket_status" in request.path:
        data = {"current_status": "RUNNING"}
        return _answer({"result": True, "code": 0, "message": "success", "data": data})
    code = 1306000 if json.loads(body)["sn"] == "E-STOP" else 3900004
    return _answer({"result": False, "code": code, "message": f"refused: {said}", "data": None})


def _leaks(text: str) -> list[str]:
    return [form for form in LOOKED_FOR if form in text]


def _xlsx_text(path: Path) -> str:
    book = openpyxl.load_workbook(path, read_only=True)
    cells = [c for sheet in book.worksheets for r in sheet.iter_rows(values_only=True) for c in r]
    text = "\n".join(str(c) for c in cells)
    book.close()
    return text


def test_an_answer_echoing_the_secret_escaped_leaves_it_in_no_file_and_no_stream(
    tmp_path: Path,
) -> None:
    """``run`` (report, failures, summary JSON, checkpoint) and ``select`` (CSV and XLSX
    sheets) against a server that echoes the secret escaped, encoded and JSON-\\u-escaped:
    no file and neither stream holds the secret in any form."""
    rows = [[f"E{i}", "admin", "SUSPEND", "m"] for i in range(3)]
    rows.append(["E-STOP", "admin", "SUSPEND", "m"])
    src = write_csv(tmp_path / "t.csv", rows)
    with LoopbackServer(_echo) as server:
        env = creds_env(server.url, secret=SECRET)
        args = ["run", str(src), "--yes", "-c", "1", "--readback-delay", "0"]
        args += ["--output", str(tmp_path / "r.csv"), "--failures", str(tmp_path / "f.csv")]
        args += ["--summary-json", str(tmp_path / "s.json")]
        args += ["--checkpoint", str(tmp_path / "c.db")]
        outs = [run_cli(args, env)]
        for sheet in ("sel.csv", "sel.xlsx"):
            select = ["select", "--creator", "admin", "-o", str(tmp_path / sheet)]
            outs.append(run_cli(select, env))
        sent = [body.decode() + " ".join(headers.values()) for *_, headers, body in server.requests]
        assert any(json.dumps(SECRET)[1:-1] in text for text in sent), "the secret was not sent"
    assert outs[0].exit_code == 3, outs[0].stdout + outs[0].stderr
    assert [o.exit_code for o in outs[1:]] == [0, 0], [o.stderr for o in outs]
    names = ["run", "select to CSV", "select to XLSX"]
    seen = {f"streams of {n}": out.stdout + out.stderr for n, out in zip(names, outs, strict=True)}
    files = sorted(p for p in tmp_path.iterdir() if p.is_file() and p != src)
    assert {"r.csv", "f.csv", "s.json", "c.db", "sel.csv", "sel.xlsx"} <= {p.name for p in files}
    for path in files:
        text = _xlsx_text(path) if path.suffix == ".xlsx" else path.read_bytes().decode("latin-1")
        seen[path.name] = text
    leaks = {where: len(_leaks(text)) for where, text in seen.items() if _leaks(text)}
    assert leaks == {}, "forms of the secret found (where: how many forms)"
    assert any("***" in r["message"] for r in read_report(tmp_path / "r.csv"))
    assert all("***" in r["title"] for r in read_report(tmp_path / "sel.csv"))
