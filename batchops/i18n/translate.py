"""Looking a message up in the language in use: ``_``, ``N_`` and ``ngettext``.

The catalogs are gettext's: ``locale/<lang>/LC_MESSAGES/batchops.po`` (what translators
edit) compiled to ``.mo`` (what is read here, with the standard library's reader) by
``python -m batchops.i18n.catalog``; the test suite fails when a message in the source
has no translation in either catalog, or a ``.mo`` is older than its ``.po``.

A message is written in English in the source, with named fields filled afterwards
(``_("{count} rows failed").format(count=n)``), so a translation may order them as its
language needs. Text defined before the language is known (click's help, a table's
labels) is marked with ``N_`` and looked up with ``_`` where it is shown.
"""

from __future__ import annotations

import functools
import gettext as _gettext
import inspect
from pathlib import Path

from .language import LANGUAGES, Language, current

DOMAIN = "batchops"
LOCALE_DIR = Path(__file__).with_name("locale")


@functools.cache
def _catalog(lang: Language) -> dict[str, str | tuple[str, ...]]:
    """``lang``'s messages: msgid → text (or the plural forms), also by click's cleaned
    form of a multi-line msgid (click cleans help text before it is shown)."""
    path = LOCALE_DIR / LANGUAGES[lang] / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as file:
            raw = _gettext.GNUTranslations(file)._catalog  # type: ignore[attr-defined]
    except FileNotFoundError:
        return {}
    singular: dict[str, str] = {}
    plural: dict[str, dict[int, str]] = {}
    for key, text in raw.items():
        if isinstance(key, tuple):
            plural.setdefault(key[0], {})[key[1]] = text
        elif key and text:
            singular[key] = text
    table: dict[str, str | tuple[str, ...]] = dict(singular)
    for key, forms in plural.items():
        table[key] = tuple(forms[i] for i in sorted(forms))
    for key, text in list(table.items()):
        if isinstance(text, str) and "\n" in key:
            table.setdefault(inspect.cleandoc(key), inspect.cleandoc(text))
    return table


def _(message: str) -> str:
    """``message`` in the language in use (itself when it has no translation)."""
    text = _catalog(current()).get(message)
    return text if isinstance(text, str) else message


def N_(message: str) -> str:
    """Mark ``message`` for the catalog; it is looked up with ``_`` where it is shown."""
    return message


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form for ``count`` in the language in use (Chinese has one form)."""
    forms = _catalog(current()).get(singular)
    if isinstance(forms, tuple) and forms:
        return forms[0] if len(forms) == 1 or count == 1 else forms[1]
    return singular if count == 1 else plural
