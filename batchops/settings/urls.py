"""An address batchops may send to: one check, for every URL a setting holds (base URL,
proxy), so a bad one is one line at the start, never a traceback mid-run.
"""

from __future__ import annotations

import urllib.parse

from batchops.errors import ConfigError
from batchops.i18n import _
from batchops.secrets import masked_url


def checked_url(text: str, where: str, *, none_allowed: bool = False) -> str:
    """``text`` if it is an http(s) URL batchops can send to; else one ConfigError line.

    Blank is "not given" (the caller says what is missing); ``none`` is a choice for the
    proxy. A password in the URL is never shown.
    """
    url = text.strip()
    if not url or (none_allowed and url.lower() == "none"):
        return url
    problem = _url_problem(url)
    if problem:
        if none_allowed:
            text = _(
                "{where} must be an http:// or https:// URL with a host (or 'none' to connect "
                "directly), not {url}: {problem}; fix it and run again"
            )
        else:
            text = _(
                "{where} must be an http:// or https:// URL with a host, not {url}: {problem}; "
                "fix it and run again"
            )
        raise ConfigError(text.format(where=where, url=repr(masked_url(url)), problem=problem))
    return url


def _url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as an address, or None."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return _("it holds a blank or a control character")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # a port that is no number, or out of range, raises here
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in ("http", "https"):
        return _("the scheme is not http or https")
    if not parts.hostname:
        return _("it names no host")
    if port == 0:
        return _("port 0 is no port")
    if parts.query or parts.fragment:
        return _("an address takes no ?query or #fragment")
    return None
