"""The one rule for an option that takes a word from a fixed set: an unknown word is
refused, before anything is written or sent, with one line naming the words it takes and,
when one is near, the word meant (``RUNNNING`` → ``RUNNING``).

A typo must never quietly become an empty result: ``select --status RUNNNING`` asked of
ITSM as it is matches no ticket, exits 0 and writes an empty sheet that looks like an
answer.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

from batchops.errors import ConfigError
from batchops.i18n import _


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known word ``word`` is most likely a typo of, or None when none is near
    (compared NFKC-normalised and upper-cased, as the words are matched)."""
    typed = unicodedata.normalize("NFKC", word).strip().upper()
    words = {unicodedata.normalize("NFKC", w).upper(): w for w in known}
    found = difflib.get_close_matches(typed, list(words), n=1, cutoff=0.6)
    return words[found[0]] if found else None


def refused(option: str, value: str, takes: str, known: Iterable[str]) -> ConfigError:
    """The error for ``option`` given ``value``, which is none of ``known``: ``takes``
    says in words what the option takes (every valid word), then the closest one, if any."""
    near = closest(value, known)
    if near is None:
        return ConfigError(
            _("{option} takes {takes}, not {value}; fix it and run again").format(
                option=option, takes=takes, value=repr(value)
            )
        )
    return ConfigError(
        _("{option} takes {takes}, not {value}; did you mean {closest}?").format(
            option=option, takes=takes, value=repr(value), closest=near
        )
    )
