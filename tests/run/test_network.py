"""The send step (:mod:`batchops.run.network`): what happens between the canary and the
rest over loopback, then its pure rules over a loaded sheet."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from aiohttp import web

import batchops
from batchops.model import RunSummary, Status
from batchops.run.network import (
    blind_after_canary,
    checkpoint_stop,
    suspended_sns,
    unreadable_suspends,
)
from batchops.send import Precheck
from batchops.stops import StopKind

from ..helpers import LoopbackServer, envelope, load_one, report_of, write_csv


class TicketsWhoseReadsBreak:
    """An ITSM that operates like the real one (a second SUSPEND is accepted) and whose
    status reads answer 503 once :attr:`reads_broken` is set."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.reads_broken = False
        #: After the canary: get_tickets leaves "A" out; "A" read singly is refused too
        #: when ``single_reads_refused``.
        self.a_left_out = False
        self.single_reads_refused = False
        self.operations: list[tuple[str, str]] = []
        #: The status each SUSPEND found (SUSPENDED: a double suspend).
        self.suspended_from: list[str] = []

    def __call__(self, request: web.Request, body: bytes) -> web.Response:
        if "/itsm/" not in request.path:
            return web.Response(status=404)  # the reachability probe
        if "get_ticket" in request.path:
            if self.reads_broken:
                return web.Response(status=503, text="Service Unavailable")
            if "get_tickets" in request.path:
                sns = [s for s in json.loads(body)["sns"] if not (self.a_left_out and s == "A")]
                items = [{"sn": s, "current_status": self.statuses[s]} for s in sns]
                return envelope(data={"items": items})
            if self.single_reads_refused:
                return envelope(3900004, "接口异常，请检查请求参数: 系统繁忙")
            return envelope(data={"current_status": self.statuses[request.query["sn"]]})
        sent = json.loads(body)
        sn, action = sent["sn"], sent["action_type"]
        self.operations.append((sn, action))
        if action == "SUSPEND":
            self.suspended_from.append(self.statuses[sn])
            self.statuses[sn] = "SUSPENDED"  # accepted even when it already was: the trap
        elif action == "UNSUSPEND" and self.statuses[sn] == "SUSPENDED":
            self.statuses[sn] = "RUNNING"
        return envelope()


def run_with_canary(
    tmp_path: Path, itsm: TicketsWhoseReadsBreak, **after: bool
) -> tuple[Path, RunSummary]:
    """Rows A SUSPEND (the canary), B SUSPEND, A UNSUSPEND, A SUSPEND; ``after`` is set on
    the server once the canary is done."""
    rows = [
        ["A", "admin", "SUSPEND", "canary"],
        ["B", "admin", "SUSPEND", "rest"],
        ["A", "admin", "UNSUSPEND", "rest"],
        ["A", "admin", "SUSPEND", "rest"],
    ]
    src = write_csv(tmp_path / "t.csv", rows)

    def after_the_canary(report: object) -> bool:
        for name, value in after.items():
            setattr(itsm, name, value)
        return True

    with LoopbackServer(itsm) as server:
        summary = batchops.run_batch(
            src,
            batchops.RunOptions(base_url=server.url, app_code="app", username="admin"),
            choices=batchops.RunChoices(canary=1),
            hooks=batchops.Hooks(confirm_canary=after_the_canary),
            env={"BK_APP_SECRET": "s3cret-value"},
        )
    return src, summary


def test_after_the_canary_an_unreadable_ticket_gets_no_second_suspend(tmp_path: Path) -> None:
    """The canary suspends A; reading A again then fails. A's status from before the
    canary (RUNNING) would let the rest skip its UNSUSPEND and send a second SUSPEND,
    which leaves A stuck. The run stops before the rest instead (exit 3, resumable)."""
    server_side = TicketsWhoseReadsBreak({"A": "RUNNING", "B": "RUNNING"})
    src, summary = run_with_canary(tmp_path, server_side, reads_broken=True)
    assert server_side.operations == [("A", "SUSPEND")]
    assert Counter(action for _, action in server_side.operations)["SUSPEND"] == 1
    assert summary.exit_code == 3
    assert "could not be read again" in summary.stopped_reason
    statuses = [r["status"] for r in report_of(src)]
    assert statuses == [Status.SUCCESS.value] + [Status.PENDING.value] * 3


def test_a_canary_ticket_left_out_of_the_second_read_is_asked_for_singly(tmp_path: Path) -> None:
    """get_tickets leaves A out after the canary: A is read singly (SUSPENDED), so its
    UNSUSPEND goes out and the last SUSPEND finds it RUNNING, never SUSPENDED."""
    itsm = TicketsWhoseReadsBreak({"A": "RUNNING", "B": "RUNNING"})
    src, _ = run_with_canary(tmp_path, itsm, a_left_out=True)
    assert "SUSPENDED" not in itsm.suspended_from
    assert itsm.operations == [
        ("A", "SUSPEND"),
        ("B", "SUSPEND"),
        ("A", "UNSUSPEND"),
        ("A", "SUSPEND"),
    ]
    assert [r["status"] for r in report_of(src)] == [Status.SUCCESS.value] * 4


def test_a_canary_ticket_neither_listed_nor_readable_stops_the_rest(tmp_path: Path) -> None:
    itsm = TicketsWhoseReadsBreak({"A": "RUNNING", "B": "RUNNING"})
    src, _ = run_with_canary(tmp_path, itsm, a_left_out=True, single_reads_refused=True)
    assert itsm.operations == [("A", "SUSPEND")]
    assert [r["status"] for r in report_of(src)] == [Status.SUCCESS.value] + [
        Status.PENDING.value
    ] * 3


# --------------------------------------------------------------------------- the rules
# The pure rules of the send step, over a loaded sheet and a pre-check's result.

#: Two tickets with SUSPEND rows, one with only an UNSUSPEND, one with a WITHDRAW.
SHEET = [
    ["S1", "admin", "SUSPEND", "x"],
    ["S2", "admin", "SUSPEND", "x"],
    ["U1", "admin", "UNSUSPEND", "x"],
    ["W1", "admin", "WITHDRAW", "x"],
    ["S2", "admin", "UNSUSPEND", "x"],
]
EVERY_ROW = np.arange(len(SHEET), dtype=np.int64)


def test_suspended_sns_are_the_tickets_with_a_suspend_row_among_those_given(
    tmp_path: Path,
) -> None:
    """Only rows passed in count, and only SUSPEND rows."""
    batch = load_one(tmp_path, SHEET)
    assert suspended_sns(batch, EVERY_ROW) == {"S1", "S2"}
    assert suspended_sns(batch, np.array([1, 2, 3, 4])) == {"S2"}


def test_a_precheck_that_read_everything_never_stops(tmp_path: Path) -> None:
    """Nothing unreadable: go on."""
    batch = load_one(tmp_path, SHEET)
    checked = Precheck({"S1": "RUNNING", "S2": "RUNNING", "U1": "SUSPENDED"}, "get_tickets")
    assert unreadable_suspends(batch, EVERY_ROW, checked) is None


def test_a_precheck_that_read_nothing_stops_whatever_the_actions(tmp_path: Path) -> None:
    """Not one status read: a PRECHECK stop with the count and a reason, even for rows
    that could not stick a ticket."""
    batch = load_one(tmp_path, SHEET)
    checked = Precheck({}, unreadable={"U1": "timeout", "W1": "timeout"})
    stop = unreadable_suspends(batch, np.array([2, 3]), checked)
    assert stop is not None and stop.kind is StopKind.PRECHECK
    assert stop.reason.startswith("the pre-check could not read any of 2 tickets (timeout)")
    assert stop.reason.endswith("nothing was sent") and "--base-url" in stop.fix


def test_unreadable_tickets_stop_the_run_only_when_they_have_suspend_rows(
    tmp_path: Path,
) -> None:
    """Unreadable tickets with only UNSUSPEND or WITHDRAW rows go on; unreadable tickets
    with a SUSPEND row to send stop it, counted with their commonest reasons."""
    batch = load_one(tmp_path, SHEET)
    harmless = Precheck({"S1": "RUNNING"}, unreadable={"U1": "HTTP 503", "W1": "timeout"})
    assert unreadable_suspends(batch, EVERY_ROW, harmless) is None
    blind = Precheck({"U1": "RUNNING"}, unreadable={"S1": "HTTP 503", "S2": "HTTP 503"})
    stop = unreadable_suspends(batch, EVERY_ROW, blind)
    assert stop is not None and stop.kind is StopKind.PRECHECK
    assert "status of 2 tickets with SUSPEND rows (2 × HTTP 503)" in stop.reason
    assert "leaves it stuck" in stop.reason
    # S2's SUSPEND (row 1) is not among the rows to send: only S1 counts.
    stop = unreadable_suspends(batch, np.array([0, 2, 4]), blind)
    assert stop is not None and "status of 1 tickets" in stop.reason


def test_the_reasons_shown_are_the_three_commonest_most_frequent_first(tmp_path: Path) -> None:
    """Ties are in the reasons' alphabetical order; a fourth reason is left out."""
    rows = [[f"S{i}", "admin", "SUSPEND", "x"] for i in range(7)]
    batch = load_one(tmp_path, rows)
    why = ["timeout", "timeout", "timeout", "HTTP 503", "HTTP 502", "HTTP 502", "reset"]
    checked = Precheck({"other": "RUNNING"}, unreadable={f"S{i}": w for i, w in enumerate(why)})
    stop = unreadable_suspends(batch, np.arange(7), checked)
    assert stop is not None
    assert "(3 × timeout; 2 × HTTP 502; 1 × HTTP 503)" in stop.reason


def test_after_the_canary_a_ticket_not_read_again_stops_its_second_suspend(
    tmp_path: Path,
) -> None:
    """A canary ticket known before and missing from the second read, with a SUSPEND row
    still to send, stops the rest: its old status may be stale."""
    batch = load_one(tmp_path, SHEET)
    before = {"S1": "RUNNING", "S2": "RUNNING"}
    again = Precheck({"S1": "SUSPENDED"})
    stop = blind_after_canary(batch, np.array([1, 4]), {"S1", "S2"}, before, again)
    assert stop is not None and stop.kind is StopKind.PRECHECK
    assert "after the canary, the status of 1 tickets" in stop.reason
    assert "(1 × absent from the answer)" in stop.reason and "the rest was not sent" in stop.reason


def test_after_the_canary_only_stale_suspend_tickets_stop_the_rest(tmp_path: Path) -> None:
    """Read again, unknown before, or with no SUSPEND row left to send: go on; unreadable
    on the second read with a SUSPEND row left: stop."""
    batch = load_one(tmp_path, SHEET)
    rest = np.array([1, 2, 4])
    read = Precheck({"S2": "SUSPENDED"})
    assert blind_after_canary(batch, rest, {"S2"}, {"S2": "RUNNING"}, read) is None
    assert blind_after_canary(batch, rest, {"S2"}, {}, Precheck({})) is None
    no_suspend_left = np.array([2, 4])
    assert (
        blind_after_canary(batch, no_suspend_left, {"S2"}, {"S2": "RUNNING"}, Precheck({})) is None
    )
    unreadable = Precheck({}, unreadable={"S2": "timeout"})
    stop = blind_after_canary(batch, rest, {"S2"}, {}, unreadable)
    assert stop is not None and "(1 × timeout)" in stop.reason


def test_a_checkpoint_that_cannot_be_written_stops_at_once_with_how_to_make_room() -> None:
    """The CHECKPOINT stop keeps what ran out, says the run stopped at once, exits 3, and
    its fix names the limits to raise and that nothing is sent twice."""
    stop = checkpoint_stop("checkpoint t.db can no longer be written: the disk is full")
    assert stop.kind is StopKind.CHECKPOINT and stop.kind.exit_code == 3
    assert stop.reason == (
        "checkpoint t.db can no longer be written: the disk is full; stopped at once"
    )
    assert "'ulimit -f'" in stop.fix and "none is sent twice" in stop.fix
