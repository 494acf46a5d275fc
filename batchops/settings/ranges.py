"""The one table of bounds (:data:`RANGES`): the values each number a run takes may have.

Every number has a lower and an upper bound, whatever its source (flag, environment,
profile, Python keyword): a wait of ``1e308`` seconds or a rate of ``1e-300`` requests
per second is a run that never ends, not a choice. :func:`batchops.settings.sources.check_setting`
holds each value to its range; the CLI's help texts quote :meth:`Range.rule`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from batchops.i18n import N_, _


@dataclass(frozen=True, slots=True)
class Range:
    """The values a numeric setting may take, both ends closed unless ``low_open``."""

    low: float
    high: float
    low_open: bool = False
    #: Said after the bounds (marked ``N_``: shown in the language in use).
    unit: str = ""
    whole: bool = False

    def rule(self) -> str:
        """The range as an error message says it, in the language in use."""
        if self.whole and self.low_open:
            text = _("a whole number more than {low} and at most {high}")
        elif self.whole:
            text = _("a whole number at least {low} and at most {high}")
        elif self.low_open:
            text = _("a finite number more than {low} and at most {high}")
        else:
            text = _("a finite number at least {low} and at most {high}")
        unit = _(self.unit) if self.unit else ""
        return text.format(low=_number(self.low), high=_number(self.high)) + unit

    def admits(self, value: float) -> bool:
        try:
            value = float(value)
        except OverflowError:  # an int past any float: past any bound too
            return False
        if not math.isfinite(value):
            return False
        if value < self.low or (self.low_open and value == self.low):
            return False
        return value <= self.high


#: The longest any wait may be. A wait is a promise that the run goes on afterwards; an
#: hour is more than any gateway, outage or read-back needs, and ``1e308`` is a hang.
MAX_WAIT_S = 3600.0
#: The floor of ``--server-timeout``. The setting says how long a request whose answer
#: was lost may still land; 0 says "never", which no gateway makes true: a request the
#: gateway gave up on may already be in ITSM's worker (with 0, 6 of 20 tickets were
#: suspended twice: read back before the lost SUSPEND landed, then sent again). The
#: default is 300 s (ITSM's worker outlives the gateway). The floor is 1 s, not 30: an API gateway's
#: backend timeout is set per deployment and may be shorter than the ESB's, and because
#: the stand-in, which answers at once, is tested with 1-2 s. It refuses 0, negatives and
#: slips such as 0.03 for 30; it does not make a value under the gateway's real timeout
#: safe.
MIN_SERVER_TIMEOUT_S = 1.0
#: The slowest ``--rate``: one request every 100 s. Slower is a run of days that looks
#: hung (``1e-300`` was one that never sent at all).
MIN_RATE = 0.01
#: The fastest ``--rate``: beyond what any gateway quota allows, so "no limit" in effect.
MAX_RATE = 10_000.0
#: More rows than any sheet batchops is meant for (an XLSX holds about a million): the
#: upper bound of the counts of rows (``--canary``, ``--limit``, ``--max-failures N``).
MAX_ROWS = 10_000_000

#: One table of bounds for every number, whatever its source (flag, environment, profile,
#: Python keyword). ``max_failures`` is text ("10", "5%", "off"): its count is held to this
#: range where the text is read (:meth:`batchops.settings.records.FailureBrake.parse`).
_SECONDS = N_(" (seconds)")
_ROWS = N_(" rows")

RANGES: dict[str, Range] = {
    "concurrency": Range(1, 1000, whole=True),
    "retries": Range(0, 20, whole=True),
    "timeout": Range(0, MAX_WAIT_S, low_open=True, unit=_SECONDS),
    "rate": Range(MIN_RATE, MAX_RATE, unit=N_(" (requests per second)")),
    "readback_delay": Range(0, MAX_WAIT_S, unit=_SECONDS),
    "server_timeout": Range(MIN_SERVER_TIMEOUT_S, MAX_WAIT_S, unit=_SECONDS),
    "outage_wait": Range(0, MAX_WAIT_S, unit=_SECONDS),
    "max_failures": Range(0, MAX_ROWS, whole=True, unit=_ROWS),
    "canary": Range(1, MAX_ROWS, whole=True, unit=_ROWS),
    "limit": Range(1, MAX_ROWS, whole=True, unit=_ROWS),
}


def _number(value: float) -> str:
    """A bound as people write it: 10,000,000 and 0.01, not 1e+07."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"
