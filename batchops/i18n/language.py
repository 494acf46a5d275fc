"""Which language batchops speaks: the one choice, and where it came from.

The order is ``--lang`` > ``BATCHOPS_LANG`` > a profile's ``lang`` > the locale variables
(``LC_ALL``, ``LC_MESSAGES``, ``LANG``, read as text: a machine may have no Chinese locale
installed, so ``setlocale`` fails and Python coerces the C locale, yet the person asked
for Chinese) > English. The command line decides once per command (:func:`use`); the
Python API, which has no command line, follows the environment (:func:`current`).

Only the words change with the language: status values, ``--only`` values, exit codes,
JSON field and event names stay as they are, so scripts and fed-back reports keep working.
"""

from __future__ import annotations

import contextlib
import os
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Literal

Language = Literal["zh", "en"]

#: The languages batchops speaks, and their catalogs' locale names.
LANGUAGES: dict[Language, str] = {"zh": "zh_CN", "en": "en"}

#: The environment variable that chooses the language, after ``--lang``.
ENV_LANG = "BATCHOPS_LANG"

#: The locale variables, in the order POSIX reads them for messages.
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")

#: BlueKing's ``Blueking-Language`` header value for each language (bkapi-client-core).
_BLUEKING: dict[Language, str] = {"zh": "zh-cn", "en": "en"}

_chosen: Language | None = None


def parse_language(text: str) -> Language | None:
    """``zh``, ``zh_CN.UTF-8``, ``zh-Hans``, ``中文``, ``en_US`` … as a language, or None."""
    word = unicodedata.normalize("NFKC", text).strip().casefold()
    if not word:
        return None
    if word.startswith("zh") or word in {"中文", "chinese", "简体中文"}:
        return "zh"
    if word.startswith("en") or word in {"english", "英文"}:
        return "en"
    return None


def choose(
    flag: str | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Language, str]:
    """The language and what chose it (``--lang``, ``BATCHOPS_LANG``, ``profile``, the
    locale variable's name, or ``default``). A flag or ``BATCHOPS_LANG`` that names no
    language is an error for whoever parses it; here it is simply not a choice."""
    env = os.environ if environ is None else environ
    if flag and (lang := parse_language(flag)):
        return lang, "--lang"
    if (text := env.get(ENV_LANG)) and (lang := parse_language(text)):
        return lang, ENV_LANG
    if profile and (lang := parse_language(profile)):
        return lang, "profile"
    for name in LOCALE_VARIABLES:
        # POSIX: the first variable that is set decides, whatever it names.
        if text := env.get(name):
            return ("zh" if parse_language(text) == "zh" else "en"), name
    return "en", "default"


def current() -> Language:
    """The language in use: the command's choice, else what the environment says."""
    return _chosen if _chosen is not None else choose()[0]


def use(lang: Language | None) -> None:
    """Speak ``lang`` from now on (None: follow the environment again)."""
    global _chosen
    _chosen = lang


@contextlib.contextmanager
def using(lang: Language | None) -> Iterator[None]:
    """Speak ``lang`` inside the block, then what was spoken before."""
    before = _chosen
    use(lang)
    try:
        yield
    finally:
        use(before)


def blueking_language(lang: Language | None = None) -> str:
    """The ``Blueking-Language`` header for ``lang`` (default: the language in use)."""
    return _BLUEKING[lang or current()]
