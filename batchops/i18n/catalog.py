"""The maintainer's tool for the catalogs: extract, update, compile, check (needs Babel).

``python -m batchops.i18n.catalog`` extracts every marked message of the package (``_``,
``N_``, ``ngettext``) and of click (its usage errors and help words, which batchops
shows in the user's language too), adds new ones to both ``.po`` files (the English one
with the message itself, the Chinese one empty, for a translator), drops those no longer
used, and compiles the ``.mo`` files the program reads. ``--check`` changes nothing and
lists what is missing; the test suite runs it, so CI fails when a message has no
translation or a ``.mo`` is stale.
"""

from __future__ import annotations

import datetime
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from .language import LANGUAGES
from .translate import DOMAIN, LOCALE_DIR

_PACKAGE = Path(__file__).resolve().parents[1]
_KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
_FIELD = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)?(?:[!:][^{}]*)?\}")
_STABLE_DATE = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)
_PERCENT = re.compile(r"%(?:\([a-z_]+\))?[sdr]")


def _sources() -> Iterator[tuple[Path, str]]:
    import click

    yield _PACKAGE, "batchops"
    yield Path(click.__file__).resolve().parent, "click"


def extracted() -> dict[str | tuple[str, str], set[str]]:
    """Every message in the source: msgid (or (singular, plural)) → where it is used."""
    found: dict[str | tuple[str, str], set[str]] = {}
    for root, name in _sources():
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(root),
            method_map=[("**.py", "python")],
            keywords=_KEYWORDS,
            comment_tags=(),
        ):
            if name == "batchops" and filename.startswith(("sandbox/", "i18n/catalog")):
                continue  # the stand-in speaks as ITSM does; this tool speaks to maintainers
            key = message if isinstance(message, str) else (message[0], message[1])
            found.setdefault(key, set()).add(f"{name}/{filename}:{lineno}")
    return found


def _po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read(locale: str) -> Catalog:
    path = _po_path(locale)
    if not path.exists():
        return Catalog(locale=locale, domain=DOMAIN, project="batchops")
    with path.open("rb") as file:
        return read_po(file, locale=locale, domain=DOMAIN)


def updated(locale: str) -> Catalog:
    """``locale``'s catalog holding exactly the source's messages (translations kept)."""
    old = _read(locale)
    new = Catalog(
        locale=locale,
        domain=DOMAIN,
        project="batchops",
        fuzzy=False,
        # Fixed, so that only a change of the messages changes the file.
        creation_date=_STABLE_DATE,
        revision_date=_STABLE_DATE,
    )
    new.header_comment = "# batchops messages. Edit msgstr; python -m batchops.i18n.catalog."
    for key, places in sorted(extracted().items(), key=lambda item: str(item[0])):
        msgid = key if isinstance(key, str) else key[0]
        before = old.get(msgid)
        string: str | tuple[str, ...] | list[str]
        if before is not None and before.string and not before.fuzzy:
            string = before.string
        elif locale == "en":
            string = key
        else:
            string = "" if isinstance(key, str) else ("",)
        new.add(
            key,
            string,
            locations=[
                (place.rsplit(":", 1)[0], int(place.rsplit(":", 1)[1])) for place in sorted(places)
            ],
        )
    return new


def problems(catalog: Catalog, locale: str = "") -> list[str]:
    """What keeps ``catalog`` from being complete: missing translations, fields that do
    not match the English message's."""
    found: list[str] = []
    for message in catalog:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = (
            [message.string] if isinstance(message.string, str) else list(message.string or ())
        )
        if message.fuzzy or not any(strings) or not all(strings):
            found.append(f"{locale}: no translation: {ids[0]!r}")
            continue
        # A plural form may leave a field out ("1 row" has no {count}), never add one.
        want = set().union(*(_fields(i) for i in ids))
        for text in strings:
            if (_fields(text) != want) if len(ids) == 1 else not _fields(text) <= want:
                found.append(
                    f"{locale}: fields differ ({sorted(want)} vs {sorted(_fields(text))}): "
                    f"{ids[0]!r}"
                )
    return found


def _fields(text: str) -> set[str]:
    return {match.group(0) for match in _FIELD.finditer(text)} | set(_PERCENT.findall(text))


def compiled(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def _po_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(
        out, catalog, width=100, sort_output=True, include_previous=False, include_lineno=False
    )
    return out.getvalue()


def check() -> list[str]:
    """Every problem, without changing a file: missing or stale messages and translations."""
    found: list[str] = []
    for locale in LANGUAGES.values():
        catalog = updated(locale)
        found += problems(catalog, locale)
        current = _read(locale)
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in current if m.id}
        for message in catalog:
            mid = message.id if isinstance(message.id, str) else message.id[0]
            if mid and mid not in ids:
                found.append(f"{locale}: not in {_po_path(locale).name}: {mid!r}")
        mo = _po_path(locale).with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != compiled(current):
            found.append(f"{locale}: {mo.name} is not compiled from {_po_path(locale).name}")
    return found


def fill(locale: str, translations: dict[str, str | list[str]]) -> int:
    """Write ``translations`` (msgid → text, or [forms] for a plural) into ``locale``'s
    catalog, over what it held; returns how many were used."""
    catalog = _read(locale)
    used = 0
    for message in catalog:
        mid = message.id if isinstance(message.id, str) else message.id[0]
        if mid and mid in translations:
            text = translations[mid]
            message.string = tuple(text) if isinstance(text, list) else text
            message.flags.discard("fuzzy")
            used += 1
    path = _po_path(locale)
    path.write_bytes(_po_bytes(catalog))
    path.with_suffix(".mo").write_bytes(compiled(_read(locale)))
    return used


def main(argv: list[str]) -> int:
    if argv[:1] == ["--fill"]:
        # --fill FILE.py: a maintainer's file defining ZH = {msgid: translation}.
        namespace: dict[str, object] = {}
        exec(Path(argv[1]).read_text(encoding="utf-8"), namespace)
        table = namespace["ZH"]
        assert isinstance(table, dict)
        main([])
        print(f"zh_CN: {fill('zh_CN', table)} of {len(table)} translations used")
        return 0
    if "--check" in argv:
        found = check()
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    for locale in LANGUAGES.values():
        catalog = updated(locale)
        path = _po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_po_bytes(catalog))
        path.with_suffix(".mo").write_bytes(compiled(_read(locale)))
        missing = problems(catalog, locale)
        print(f"{locale}: {len(catalog)} messages, {len(missing)} to translate")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
