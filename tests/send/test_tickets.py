"""The ticket rules (:mod:`batchops.send.tickets`), where they live: when a row need not
be sent, how a ticket moves through its rows, what a read-back proves, and that no walk of
the rules ever sends SUSPEND to a ticket it knows to be SUSPENDED."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchops.model import Action, Status
from batchops.send.tickets import (
    ReadBack,
    TicketTrack,
    chains_by_sn,
    judge_readback,
    simulate,
    skip_reason,
)

STATUSES = ["NEW", "RUNNING", "SUSPENDED", "RESOLVED", "FINISHED", "TERMINATED", "REVOKED"]


def test_suspend_of_a_suspended_ticket_is_skipped_and_says_why() -> None:
    reason = skip_reason(Action.SUSPEND, "SUSPENDED")
    assert reason is not None and "stuck" in reason


@pytest.mark.parametrize(
    ("action", "status", "skipped"),
    [
        (Action.SUSPEND, "RUNNING", False),
        (Action.SUSPEND, None, False),
        (Action.UNSUSPEND, "RUNNING", True),
        (Action.UNSUSPEND, "SUSPENDED", False),
        # A closed ticket is ITSM's to refuse: the row goes and fails with ITSM's reason.
        (Action.UNSUSPEND, "FINISHED", False),
        (Action.WITHDRAW, "REVOKED", True),
        (Action.TERMINATE, "TERMINATED", True),
        (Action.TERMINATE, "SUSPENDED", False),
    ],
)
def test_skip_reason(action: Action, status: str | None, skipped: bool) -> None:
    assert (skip_reason(action, status) is not None) is skipped


def test_unsuspend_returns_to_the_status_before_the_suspend() -> None:
    track = TicketTrack("NEW")
    track.advance(Action.SUSPEND, Status.SUCCESS)
    assert track.status == "SUSPENDED"
    track.advance(Action.UNSUSPEND, Status.SUCCESS)
    assert track.status == "NEW"


def test_an_unknown_outcome_forgets_the_status() -> None:
    track = TicketTrack("RUNNING")
    track.advance(Action.SUSPEND, Status.UNKNOWN)
    assert (track.status, track.uncertain) == (None, True)


@pytest.mark.parametrize(
    ("action", "status", "before", "verdict"),
    [
        (Action.SUSPEND, "SUSPENDED", "RUNNING", ReadBack.REACHED),
        (Action.SUSPEND, "RUNNING", "RUNNING", ReadBack.UNCHANGED),
        (Action.SUSPEND, "FINISHED", "RUNNING", ReadBack.UNCLEAR),
        (Action.SUSPEND, "RUNNING", None, ReadBack.UNCHANGED),
        (Action.UNSUSPEND, "SUSPENDED", "SUSPENDED", ReadBack.UNCHANGED),
        (Action.UNSUSPEND, "RUNNING", "SUSPENDED", ReadBack.REACHED),
        (Action.UNSUSPEND, "REVOKED", "SUSPENDED", ReadBack.UNCLEAR),
        (Action.WITHDRAW, "REVOKED", "RUNNING", ReadBack.REACHED),
        (Action.TERMINATE, "REVOKED", None, ReadBack.UNCLEAR),
    ],
)
def test_judge_readback(action: Action, status: str, before: str | None, verdict: ReadBack) -> None:
    assert judge_readback(action, status, before) is verdict


def test_chains_group_rows_by_ticket_in_file_order() -> None:
    sns = np.array(["B", "A", "B", "C", "A"], dtype=object)
    chains = [c.tolist() for c in chains_by_sn(sns, np.arange(5))]
    assert sorted(chains) == [[0, 2], [1, 4], [3]]
    assert list(chains_by_sn(sns, np.array([], dtype=np.int64))) == []


@given(
    st.lists(
        st.tuples(st.sampled_from("ABC"), st.sampled_from(list(Action))), min_size=1, max_size=12
    ),
    st.dictionaries(st.sampled_from("ABC"), st.sampled_from(STATUSES)),
)
def test_no_plan_sends_suspend_to_a_ticket_it_takes_for_suspended(
    rows: list[tuple[str, Action]], statuses: dict[str, str]
) -> None:
    """Walking each ticket's rows as plan does, a SUSPEND that would go out never meets a
    ticket the walk knows to be SUSPENDED, whatever the rows and starting statuses."""
    sns = np.array([sn for sn, _ in rows], dtype=object)
    actions = np.array([a.value for _, a in rows], dtype=object)
    planned = {
        i: s
        for i, s, _ in simulate(actions, sns, chains_by_sn(sns, np.arange(len(rows))), statuses)
    }
    assert set(planned) == set(range(len(rows)))
    known = dict(statuses)
    for i, (sn, action) in enumerate(rows):
        if planned[i] is Status.PENDING:
            assert not (action is Action.SUSPEND and known.get(sn) == "SUSPENDED")
            track = TicketTrack(known.get(sn))
            if track.status not in {"FINISHED", "TERMINATED", "REVOKED"}:
                track.advance(action, Status.SUCCESS)
            known[sn] = track.status or known.get(sn, "")
