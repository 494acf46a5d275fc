"""The run as one record: what the caller hooks in, what was loaded, and :class:`Run`.

Every step of a run (:mod:`.flow`, :mod:`.network`) takes the one :class:`Run` and at
most two more arguments, and returns its outcome (a :class:`~batchops.stops.Stop`, or
nothing) instead of writing it into shared objects. How the send ended is written once,
as an :class:`Ending`, by :func:`.network.send`; :func:`.flow.finish` reads it. The types
live here, apart from the steps, so both step modules import them and not each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from batchops.checkpoint import Checkpoint, InFlightLedger, Work
from batchops.itsm import ItsmClient, Target, Tracer
from batchops.model import OutcomeTable
from batchops.process import RunSignals
from batchops.report import Outputs
from batchops.send import Executor
from batchops.settings import RunConfig
from batchops.sheet import Batch
from batchops.stops import RunControl, Stop

from .progress import NullProgress, ProgressSink
from .prompts import Advice, Confirm, ConfirmCanary
from .recorder import Events, Recorder, no_events, notices_to


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the caller sees and answers while a run (or a plan) goes; none of it is a
    setting, and every part may be left out.

    ``confirm`` is shown the overview before anything is sent (False sends nothing);
    ``confirm_canary`` decides after a canary (without it: go on only if every canary
    row succeeded). ``events`` receives ``(name, fields)`` for log lines; ``notice`` what
    a person should see meanwhile (an outage, a long rate-limit pause). With
    ``handle_signals`` Ctrl-C and SIGTERM stop the run cleanly. ``verbose`` 1 writes a
    line per request and answer to stderr (an ``http`` event with ``events``), 2 adds
    the bodies; credentials masked. ``unasked``: nobody can be asked (no terminal) and
    nobody said not to ask (``--yes``), so the run says it sends without asking.
    """

    progress: ProgressSink | None = None
    confirm: Confirm | None = None
    confirm_canary: ConfirmCanary | None = None
    events: Events | None = None
    notice: Callable[[str], None] | None = None
    handle_signals: bool = False
    verbose: int = 0
    unasked: bool = False

    def tracer(self) -> Tracer | None:
        """--verbose's tracer, or None."""
        return Tracer(self.verbose, events=self.events) if self.verbose > 0 else None


@dataclass(frozen=True, slots=True)
class RunHooks:
    """The caller's :class:`Hooks`, wired for the steps: nothing left to check for None."""

    emit: Events
    say: Callable[[str], None]
    progress: ProgressSink = dataclasses.field(default_factory=NullProgress)
    confirm: Confirm | None = None
    confirm_canary: ConfirmCanary | None = None
    handle_signals: bool = False
    #: --verbose: a line (or an ``http`` event) per request and answer.
    tracer: Tracer | None = None
    #: Say that the run sends without asking (no terminal, no --yes).
    unasked: bool = False

    @classmethod
    def wired(cls, hooks: Hooks) -> RunHooks:
        emit = hooks.events or no_events
        return cls(
            emit=emit,
            say=notices_to(hooks.notice, emit),
            progress=hooks.progress or NullProgress(),
            confirm=hooks.confirm,
            confirm_canary=hooks.confirm_canary,
            handle_signals=hooks.handle_signals,
            tracer=hooks.tracer(),
            unasked=hooks.unasked,
        )


@dataclass(slots=True)
class Loaded:
    """The input, its outcome table, and where the run's files go."""

    batch: Batch
    outcomes: OutcomeTable
    outputs: Outputs
    #: Which rows this run may send.
    sendable: np.ndarray
    #: --only as it applies to this run (an earlier report fed back: the rows not done).
    only: tuple[str, ...] | None


@dataclass(slots=True)
class Session:
    """A connected run: its client, where outcomes go, its stop switch and its executor."""

    client: ItsmClient
    target: Target
    recorder: Recorder
    control: RunControl
    executor: Executor
    signals: RunSignals | None


@dataclass(frozen=True, slots=True)
class Ending:
    """How the send ended: the stop (None: it ran its course), whether the person
    declined, and how many requests left."""

    stop: Stop | None = None
    declined: bool = False
    requests: int = 0
    #: Rows sent to ITSM (at least one operation request).
    rows_sent: int = 0


@dataclass(slots=True)
class Pulse:
    """How far the run is, for its heartbeat (:mod:`.heartbeat`): the steps write it."""

    #: What the run does now: ``connecting``, ``settling``, ``precheck``, ``sending``.
    phase: str = "connecting"
    #: Rows this run sends (set when sending starts), and when (``time.monotonic()``).
    to_send: int = 0
    sending_since: float = 0.0
    #: A wait of the run's own before sending (``earlier_requests``), and its end.
    waiting: str = ""
    wait_until: float = 0.0


@dataclass(slots=True)
class Run:
    """One run's context, handed to every step as one argument."""

    config: RunConfig
    hooks: RunHooks
    loaded: Loaded
    #: What this run still has to do (the checkpoint's say, or every sendable row).
    work: Work
    store: Checkpoint | None
    #: ``time.monotonic()`` when the run started.
    started: float
    #: What ``--fresh`` set aside, for the confirmation.
    fresh_note: dict[str, str] = field(default_factory=dict)
    #: This run's record of its operations in flight, in the machine-wide folder (None
    #: for the stand-in).
    ledger: InFlightLedger | None = None
    #: Set once connected (:func:`.network.connect`).
    session: Session | None = None
    ending: Ending = field(default_factory=Ending)
    pulse: Pulse = field(default_factory=Pulse)

    @property
    def connected(self) -> Session:
        """The session; only steps after :func:`.network.connect` ask for it."""
        if self.session is None:
            raise RuntimeError("the run is not connected yet")
        return self.session

    def advice(self) -> Advice:
        """What to run next, as the stop or the failures call for."""
        config = self.config
        return Advice(
            config.choices.command,
            config.settings,
            config.env,
            checkpointed=self.store is not None,
            input_path=config.input_path,
            report=self.loaded.outputs.report,
        )
