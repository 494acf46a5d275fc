"""The ticket rules: where each action leads, when a row need not be sent, how a
ticket's status moves through its rows, and what a read-back says.

Pure functions over statuses, shared by ``batchops plan`` (which simulates every row
assuming success), the pre-check and the executor (which walks each ticket's rows with
the outcomes it really got). The one that matters most: SUSPEND on a SUSPENDED ticket is
accepted by ITSM and leaves the ticket stuck for good (docs/itsm.md §4 and §6), so such
a row is never sent.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from batchops.i18n import _
from batchops.model import FINAL_TICKET_STATUSES, Action, Status

END_STATUS = {
    Action.SUSPEND: "SUSPENDED",
    Action.WITHDRAW: "REVOKED",
    Action.TERMINATE: "TERMINATED",
}


def skip_reason(action: Action, status: str | None) -> str | None:
    """Why a row need not be sent, given its ticket's status; None when it must be sent."""
    if status is None:
        return None
    if action is Action.SUSPEND and status == "SUSPENDED":
        return _(
            "skipped: ticket is already SUSPENDED (a second SUSPEND would leave it stuck "
            "because of an ITSM bug)"
        )
    if action is Action.WITHDRAW and status == "REVOKED":
        return _("skipped: ticket is already withdrawn (REVOKED)")
    if action is Action.TERMINATE and status == "TERMINATED":
        return _("skipped: ticket is already TERMINATED")
    if action is Action.UNSUSPEND and status != "SUSPENDED" and status not in FINAL_TICKET_STATUSES:
        return _("skipped: ticket is not suspended ({status}), nothing to resume").format(
            status=status
        )
    return None


def expectation(action: Action, status: str | None) -> str:
    """What ``plan`` says about a row that will be sent."""
    if status is None:
        return _("would send {action}").format(action=action.value)
    if status in FINAL_TICKET_STATUSES:
        return _("would send {action}, but the ticket is {status}: ITSM will refuse it").format(
            action=action.value, status=status
        )
    return _("would send {action} (ticket {status})").format(action=action.value, status=status)


@dataclass(slots=True)
class TicketTrack:
    """What is known of one ticket while its rows are walked in file order."""

    status: str | None
    suspended_from: str | None = None
    uncertain: bool = False

    def advance(self, action: Action, outcome: Status) -> None:
        """Move the known status on, by what a row's outcome says happened."""
        if outcome is Status.SUCCESS:
            if action is Action.SUSPEND:
                self.suspended_from = self.status
                self.status = "SUSPENDED"
            elif action is Action.UNSUSPEND:
                self.status = self.suspended_from or "RUNNING"
                self.suspended_from = None
            else:
                self.status = END_STATUS[action]
        elif outcome is Status.UNKNOWN:
            self.status = None
            self.uncertain = True


class ReadBack(enum.Enum):
    """What a ticket read back after an unclear answer says about the action."""

    #: The action's end state is there: it ran.
    REACHED = "reached"
    #: The ticket is where it was: the action did not run and may be sent again.
    UNCHANGED = "unchanged"
    #: Anything else: a person must look at the ticket.
    UNCLEAR = "unclear"


def judge_readback(action: Action, status: str, before: str | None) -> ReadBack:
    """Compare a ticket read back after an unclear answer with what the action does.

    See :class:`ReadBack` for what each verdict means.
    """
    if action is Action.UNSUSPEND:
        if status == "SUSPENDED":
            return ReadBack.UNCHANGED
        if status in FINAL_TICKET_STATUSES:
            return ReadBack.UNCLEAR
        return ReadBack.REACHED
    if status == END_STATUS[action]:
        return ReadBack.REACHED
    if before is not None:
        return ReadBack.UNCHANGED if status == before else ReadBack.UNCLEAR
    return ReadBack.UNCLEAR if status in FINAL_TICKET_STATUSES else ReadBack.UNCHANGED


def simulate(
    actions: np.ndarray,
    sns: np.ndarray,
    chains: Iterable[np.ndarray],
    statuses: Mapping[str, str],
) -> Iterator[tuple[int, Status, str]]:
    """What ``plan`` reports per valid row: skipped (and why) or pending with an expectation.

    Rows of one ticket are walked in file order, each assumed to succeed. Yields
    ``(index, status, message)``; equal messages are one shared string, so a million
    rows cost a handful of messages, not a million.
    """
    messages: dict[str, str] = {}
    for chain in chains:
        if len(chain) == 0:
            continue
        track = TicketTrack(statuses.get(str(sns[int(chain[0])])))
        for index in chain.tolist():
            action = Action(actions[index])
            reason = skip_reason(action, track.status)
            if reason:
                yield index, Status.SKIPPED, messages.setdefault(reason, reason)
                continue
            text = expectation(action, track.status)
            yield index, Status.PENDING, messages.setdefault(text, text)
            if track.status not in FINAL_TICKET_STATUSES:
                track.advance(action, Status.SUCCESS)


def chains_by_sn(sns: np.ndarray, indices: np.ndarray) -> Iterator[np.ndarray]:
    """Yield the given row indices grouped by ticket, each group in file order.

    Groups come in the order of each ticket's first row. Views into one sorted array,
    made lazily, so a million single-row tickets cost two integer arrays, not a million
    lists.
    """
    if len(indices) == 0:
        return
    codes, _ = _factorize(sns[indices])
    order = np.argsort(codes, kind="stable")
    grouped = indices[order]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    start = 0
    for stop in bounds.tolist():
        yield grouped[start:stop]
        start = stop
    yield grouped[start:]


def _factorize(values: np.ndarray) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(values)
    return np.asarray(codes), len(uniques)
