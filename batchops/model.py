"""Plain records shared by every layer: actions, statuses, rows to send and row outcomes.

Everything here is immutable and free of I/O, so the loader, the executor, the
checkpoint store and the report can all agree on one vocabulary.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MAX_MESSAGE_LENGTH = 255


class Action(enum.StrEnum):
    """The four operations ``operate_ticket`` accepts (case-sensitive on the server)."""

    SUSPEND = "SUSPEND"
    UNSUSPEND = "UNSUSPEND"
    WITHDRAW = "WITHDRAW"
    TERMINATE = "TERMINATE"


class Status(enum.StrEnum):
    """The final (or not yet final) state of one input row, as shown in the report."""

    SUCCESS = "success"
    FAILED = "failed"
    INVALID = "invalid"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"
    PENDING = "pending"


class RowState(enum.StrEnum):
    """Where a row is in the checkpoint (its ``state`` column)."""

    #: Not sent yet (or handed back by --retry-failed).
    QUEUED = "queued"
    #: Committed before its request leaves; still so after a crash: in doubt, read back.
    SENDING = "sending"
    #: Its outcome is recorded.
    DONE = "done"


#: Ticket statuses after which no action is possible any more.
FINAL_TICKET_STATUSES = frozenset({"FINISHED", "TERMINATED", "REVOKED"})

#: ITSM's built-in ticket statuses (bk-itsm ``BUILTIN_TICKET_STATUS``), as a ticket lives them.
TICKET_STATUSES = (
    "NEW",
    "RUNNING",
    "RESOLVED",
    "CONFIRMED",
    "SUSPENDED",
    "FINISHED",
    "TERMINATED",
    "REVOKED",
)

#: The names people read for them: ITSM's own, then those other BlueKing products show
#: (the Chinese-speaking operator types what the screen says, not the code).
TICKET_STATUS_NAMES = {
    "新": "NEW",
    "处理中": "RUNNING",
    "已解决": "RESOLVED",
    "待确认": "CONFIRMED",
    "挂起": "SUSPENDED",
    "已完成": "FINISHED",
    "已终止": "TERMINATED",
    "已撤销": "REVOKED",
    "已结束": "FINISHED",
    "被终止": "TERMINATED",
    "已撤单": "REVOKED",
}


def ticket_status(text: str) -> str | None:
    """The ITSM code ``text`` names (``处理中``, ``running``, full-width ``ＲＵＮＮＩＮＧ``),
    or None when it names none. NFKC first, so full-width letters and spaces match."""
    word = unicodedata.normalize("NFKC", text).strip()
    code = TICKET_STATUS_NAMES.get(word, word.upper())
    return code if code in TICKET_STATUSES else None


@dataclass(frozen=True, slots=True)
class Row:
    """One valid input row, ready to send.

    ``index`` is the 0-based position among the input's data rows; it is what ties an
    outcome back to its line in the report. ``message`` is what will be sent, never blank.
    """

    index: int
    sn: str
    operator: str
    action: Action
    message: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one row. ``code`` is the API's code where it answered."""

    status: Status
    code: int | None = None
    message: str = ""
    attempts: int = 0
    http_status: int | None = None
    request_id: str = ""
    elapsed_ms: float | None = None
    finished_at: str = ""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run did, for the terminal, for ``--summary-json`` and for the Python API."""

    counts: dict[str, int]
    total_rows: int
    sent_requests: int
    elapsed_s: float
    report_path: str | None
    exit_code: int
    stopped_reason: str = ""
    input_fingerprint: str = ""
    checkpoint_path: str | None = None
    counts_by_action: dict[str, dict[str, int]] = field(default_factory=dict)
    note: str = ""
    #: What to do next, with the command that finishes the work (for a person: stderr).
    advice: str = ""
    #: The most frequent failure reasons: (reason, how many rows, an example sn).
    top_failures: list[tuple[str, int, str]] = field(default_factory=list)
    failures_path: str | None = None
    #: Set when operations were sent but an output could not be written (exit 4): what
    #: failed, where the results are, and the command that rebuilds the report.
    report_error: str = ""
    #: When the run started and ended (ISO 8601 with the UTC offset), and what it read.
    started_at: str = ""
    finished_at: str = ""
    input_path: str | None = None
    #: Rows this run sent to ITSM (at least one operation request): what the rate counts.
    rows_sent: int = 0

    @property
    def rows_per_second(self) -> float:
        # Rows sent, not rows with a result: invalid rows, or rows a resume found done,
        # are judged in microseconds and would make a rate of tens of thousands a second.
        return self.rows_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


#: Result columns the report appends after the input's own columns, in this order: their
#: names in the program (and the English headers). When an input column already has one
#: of these names, the report writes ``result_<name>`` instead.
RESULT_COLUMNS: tuple[str, ...] = (
    "status",
    "code",
    "message",
    "attempts",
    "http_status",
    "request_id",
    "elapsed_ms",
    "finished_at",
)

#: The result columns' headers as a person reads them, per language, in
#: :data:`RESULT_COLUMNS` order: a report's header row is written in the language in use
#: and read back in any of them, so a report written under one language is an input under
#: the other. They live here, fixed, rather than in the message catalogs: a translation
#: edited later must not make older reports unrecognisable.
RESULT_HEADERS: dict[str, tuple[str, ...]] = {
    "en": RESULT_COLUMNS,
    "zh": (
        "状态",
        "返回码",
        "结果说明",
        "尝试次数",
        "HTTP状态码",
        "请求ID",
        "耗时(毫秒)",
        "完成时间",
    ),
}

#: Put before a result header that an input column already has, per language (repeated
#: until the header is free); any of them is recognised on reading.
RESULT_PREFIXES: dict[str, str] = {"en": "result_", "zh": "结果_"}

_STATUSES: tuple[Status, ...] = tuple(Status)
#: The statuses in the order of :meth:`OutcomeTable.status_codes`.
STATUS_ORDER = _STATUSES
_STATUS_INDEX = {s: i for i, s in enumerate(_STATUSES)}
_NO_INT = -(2**62)
_ID_WIDTH = 36


class OutcomeTable:
    """The outcome of every input row, stored column by column.

    A million ``Outcome`` objects would cost hundreds of megabytes; a few numpy arrays
    cost a few dozen. Every row starts ``pending``.
    """

    __slots__ = (
        "_attempts",
        "_code",
        "_elapsed",
        "_finished",
        "_http",
        "_long_ids",
        "_message",
        "_request_id",
        "_status",
    )

    def __init__(self, size: int) -> None:
        import numpy as np

        self._status = np.full(size, _STATUS_INDEX[Status.PENDING], dtype=np.int8)
        self._code = np.full(size, _NO_INT, dtype=np.int64)
        self._attempts = np.zeros(size, dtype=np.int32)
        self._http = np.zeros(size, dtype=np.int16)
        self._elapsed = np.full(size, np.nan, dtype=np.float64)
        self._message = np.full(size, "", dtype=object)
        # Request ids are 32 hex digits (ESB) or a 36-character UUID (API gateway): fixed
        # width bytes hold them in 36 bytes a row instead of an 85-byte string each.
        self._request_id = np.zeros(size, dtype=f"S{_ID_WIDTH}")
        self._long_ids: dict[int, str] = {}
        self._finished = np.full(size, "", dtype=object)

    def __len__(self) -> int:
        return len(self._status)

    def set(self, index: int, outcome: Outcome) -> None:
        self._status[index] = _STATUS_INDEX[outcome.status]
        self._code[index] = _NO_INT if outcome.code is None else outcome.code
        self._attempts[index] = outcome.attempts
        self._http[index] = outcome.http_status or 0
        self._elapsed[index] = float("nan") if outcome.elapsed_ms is None else outcome.elapsed_ms
        self._message[index] = outcome.message
        self._set_request_id(index, outcome.request_id)
        self._finished[index] = outcome.finished_at

    def get(self, index: int) -> Outcome:
        code = int(self._code[index])
        http = int(self._http[index])
        elapsed = float(self._elapsed[index])
        return Outcome(
            status=_STATUSES[int(self._status[index])],
            code=None if code == _NO_INT else code,
            message=str(self._message[index]),
            attempts=int(self._attempts[index]),
            http_status=http or None,
            request_id=self._request_id_of(index),
            elapsed_ms=None if elapsed != elapsed else elapsed,
            finished_at=str(self._finished[index]),
        )

    def _set_request_id(self, index: int, request_id: str) -> None:
        try:
            packed = request_id.encode("ascii")
        except UnicodeEncodeError:
            packed = b"\xff" * (_ID_WIDTH + 1)  # never fits: kept as text below
        # NUL bytes at the end would be dropped by the fixed-width array.
        if len(packed) <= _ID_WIDTH and not packed.endswith(b"\0"):
            self._request_id[index] = packed
            self._long_ids.pop(index, None)
        else:
            self._request_id[index] = b""
            self._long_ids[index] = request_id

    def _request_id_of(self, index: int) -> str:
        if index in self._long_ids:
            return self._long_ids[index]
        return bytes(self._request_id[index]).decode("ascii")

    def _request_ids(self, start: int, stop: int | None) -> list[str]:
        ids = [b.decode("ascii") for b in self._request_id[start:stop].tolist()]
        for index, text in self._long_ids.items():
            if index >= start and (stop is None or index < stop):
                ids[index - start] = text
        return ids

    def messages(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The rows' messages, in row order (a slice of them with ``start``/``stop``)."""
        return list(self._message[start:stop].tolist())

    def rows_with(self, *statuses: Status) -> np.ndarray:
        """Indices of the rows whose status is one of ``statuses``, in row order."""
        import numpy as np

        wanted = [_STATUS_INDEX[s] for s in statuses]
        return np.flatnonzero(np.isin(self._status, wanted))

    def any_attempted(self) -> bool:
        """Whether any row records a send (then "nothing was sent" would be untrue)."""
        return bool((self._attempts > 0).any())

    def status_codes(self) -> np.ndarray:
        """Every row's status as an index into :data:`STATUS_ORDER` (read-only)."""
        view = self._status.view()
        view.flags.writeable = False
        return view

    def status_of(self, index: int) -> Status:
        return _STATUSES[int(self._status[index])]

    def labels(self) -> np.ndarray:
        """Every row's status as text, in row order."""
        import numpy as np

        return np.array([s.value for s in _STATUSES], dtype=object)[self._status]

    def counts(self) -> dict[str, int]:
        """Rows per status, every status present (zero where none)."""
        import numpy as np

        tally = np.bincount(self._status, minlength=len(_STATUSES))
        return {s.value: int(tally[i]) for i, s in enumerate(_STATUSES)}

    def columns(self, start: int = 0, stop: int | None = None) -> dict[str, list[Any]]:
        """The result columns of the report, as plain Python lists (None where empty).

        ``start``/``stop`` take a slice of the rows, so a big report can be written a
        chunk at a time instead of holding every cell as a Python object at once.
        """
        rows = slice(start, stop)
        codes = self._code[rows].tolist()
        http = self._http[rows].tolist()
        elapsed = self._elapsed[rows].tolist()
        return {
            "status": [_STATUSES[i].value for i in self._status[rows].tolist()],
            "code": [None if c == _NO_INT else c for c in codes],
            "message": self._message[rows].tolist(),
            "attempts": self._attempts[rows].tolist(),
            "http_status": [h or None for h in http],
            "request_id": self._request_ids(start, stop),
            "elapsed_ms": [None if e != e else round(e, 1) for e in elapsed],
            "finished_at": self._finished[rows].tolist(),
        }
