"""Where a setting came from, as a person reads it.

:func:`batchops.settings.sources.resolve` records each setting's source as ``flag``,
``default``, ``env NAME`` or ``profile NAME (PATH)``: what code compares, the same in
every language. ``config show``, the errors that name a setting and the advice about
credentials say it in the language in use, with :func:`shown_source`.
"""

from __future__ import annotations

from batchops.i18n import _


def shown_source(source: str) -> str:
    """``source`` (as :func:`batchops.settings.sources.resolve` records it) in the
    language in use; anything else as it is."""
    kind, _space, rest = source.partition(" ")
    if source == "flag":
        return _("flag")
    if source == "default":
        return _("default")
    if kind == "env" and rest:
        return _("env {name}").format(name=rest)
    if kind == "profile" and rest.endswith(")") and " (" in rest:
        name, _open, path = rest[:-1].partition(" (")
        return _("profile {name} ({path})").format(name=name, path=path)
    return source
