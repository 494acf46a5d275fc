"""The input workbook's styles with the report's own added: the one part of a workbook
the report changes besides the results sheet and the Summary.

A cell names its format by position (``s="7"``: the eighth ``xf`` of ``cellXfs``), and
every cell of the input keeps its number, so the report's formats (the status colours,
the date, the bold header, wrapped messages, the Summary's) are *appended*: their
fonts, fills, borders and number formats after the input's, their ``xf`` entries last.
They come from a workbook xlsxwriter wrote (so they are what the plain report uses);
the input's own entries are kept as they are, byte for byte.
"""

from __future__ import annotations

import re
from typing import Final

#: The lists a cell format points into, by the attribute that points (``fontId`` …).
_LISTS: Final = (
    ("fonts", "font", "fontId"),
    ("fills", "fill", "fillId"),
    ("borders", "border", "borderId"),
)
#: Number formats below this id are Excel's own; custom ones start here.
_FIRST_CUSTOM_FORMAT: Final = 164


def merge_styles(original: bytes, ours: bytes) -> tuple[bytes, int]:
    """``original`` (a styles part) with the formats of ``ours`` (xlsxwriter's) appended;
    and the position ``ours``'s first cell format has there (add it to its ``s``).

    ValueError when ``original`` lacks the lists a styles part has.
    """
    text = original.decode("utf-8")
    mine = ours.decode("utf-8")
    prefix = _prefix(text)
    offsets: dict[str, int] = {}
    for container, item, attribute in _LISTS:
        offsets[attribute] = len(_children(text, prefix, container, item))
        text = _append(text, prefix, container, item, _children(mine, "", container, item))
    formats: dict[str, str] = {}
    taken = [int(x) for x in re.findall(r'numFmtId="(\d+)"', _inner(text, prefix, "numFmts"))]
    next_id = max([_FIRST_CUSTOM_FORMAT - 1, *taken]) + 1
    added: list[str] = []
    for fmt in _children(mine, "", "numFmts", "numFmt"):
        old = re.search(r'numFmtId="(\d+)"', fmt)
        if old is None:
            continue
        formats[old[1]] = str(next_id)
        added.append(fmt.replace(old[0], f'numFmtId="{next_id}"'))
        next_id += 1
    if added:
        text = _append(text, prefix, "numFmts", "numFmt", added)
    base = len(_children(text, prefix, "cellXfs", "xf"))
    xfs = [_renumber(xf, offsets, formats) for xf in _children(mine, "", "cellXfs", "xf")]
    text = _append(text, prefix, "cellXfs", "xf", xfs)
    return text.encode("utf-8"), base


def _prefix(text: str) -> str:
    """The namespace prefix the part's elements carry (``x:`` from some writers, mostly none)."""
    root = re.search(r"<([A-Za-z_][\w.-]*:)?styleSheet\b", text)
    if root is None:
        raise ValueError("no styleSheet element in the styles part")
    return root[1] or ""


def _open_tag(text: str, prefix: str, container: str) -> re.Match[str] | None:
    return re.search(rf"<{re.escape(prefix)}{container}\b([^>]*?)(/?)>", text)


def _inner(text: str, prefix: str, container: str) -> str:
    """What a list element holds ("" when it is missing or empty)."""
    tag = _open_tag(text, prefix, container)
    if tag is None or tag[2]:
        return ""
    end = text.find(f"</{prefix}{container}>", tag.end())
    if end < 0:
        raise ValueError(f"{container} is not closed in the styles part")
    return text[tag.end() : end]


def _children(text: str, prefix: str, container: str, item: str) -> list[str]:
    """The list's entries as written."""
    p = re.escape(prefix)
    pattern = rf"<{p}{item}\b[^>]*?/>|<{p}{item}\b[^>]*?(?<!/)>.*?</{p}{item}>"
    return re.findall(pattern, _inner(text, prefix, container), flags=re.S)


def _append(text: str, prefix: str, container: str, item: str, entries: list[str]) -> str:
    """``text`` with ``entries`` (written without a prefix) at the end of the list, its
    ``count`` set; the list is made where a styles part has it when it is missing."""
    if prefix:
        entries = [re.sub(r"<(/?)(?=[A-Za-z])", rf"<\g<1>{prefix}", e) for e in entries]
    count = len(_children(text, prefix, container, item)) + len(entries)
    body = "".join(entries)
    tag = _open_tag(text, prefix, container)
    if tag is None:
        if container != "numFmts":
            raise ValueError(f"no {container} list in the styles part")
        root = re.search(r"<(?:[A-Za-z_][\w.-]*:)?styleSheet\b[^>]*>", text)
        assert root is not None  # _prefix found it
        made = f'<{prefix}numFmts count="{count}">{body}</{prefix}numFmts>'
        return text[: root.end()] + made + text[root.end() :]
    attributes = re.sub(r'\s+count="\d*"', "", tag[1])
    opening = f'<{prefix}{container} count="{count}"{attributes}>'
    if tag[2]:  # an empty list written as one tag
        return f"{text[: tag.start()]}{opening}{body}</{prefix}{container}>{text[tag.end() :]}"
    end = text.find(f"</{prefix}{container}>", tag.end())
    return f"{text[: tag.start()]}{opening}{text[tag.end() : end]}{body}{text[end:]}"


def _renumber(xf: str, offsets: dict[str, int], formats: dict[str, str]) -> str:
    """One of our cell formats pointing at our entries where they now are."""

    def moved(match: re.Match[str]) -> str:
        name, value = match[1], match[2]
        if name in offsets:
            return f'{name}="{int(value) + offsets[name]}"'
        if name == "numFmtId":
            return f'{name}="{formats.get(value, value)}"'
        return f'{name}="0"'  # xfId: the workbook's own Normal style

    return re.sub(r'\b(fontId|fillId|borderId|numFmtId|xfId)="(\d+)"', moved, xf)
