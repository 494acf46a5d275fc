"""Every mask, scrub and redaction of batchops: the one place that writes :data:`MASK`.

Two kinds of rule live here, so that no second copy can drift:

- **Scrubbing known values.** A server (or a proxy) that echoes the request would carry
  the app secret or the token into messages, request ids, ticket fields, stop reasons,
  reports, the checkpoint and the terminal. :class:`Scrubber` replaces every form a secret
  can come back in (:func:`forms_of`): as sent, JSON-escaped, ``\\u``-escaped character by
  character, URL-encoded and base64-encoded, in text, in raw bytes and in parsed JSON.
  The client scrubs every answer with it before anything else sees it; the recorder, the
  notifications and ``--verbose`` scrub again before they write.
- **Masking by shape.** Where the value is not known but its place is: credential fields
  of a JSON body, a query or a header (:func:`mask_text`, :func:`mask_url`,
  :func:`mask_headers`), the password of a proxy URL (:func:`masked_url`), the key of a
  notification URL (:func:`notify_label`, :func:`without_url_parts`), and whether a
  secret is set at all (:func:`presence`). A command line shown as advice masks nothing:
  it leaves a secret-bearing option out or names its variable (:mod:`batchops.run.prompts`).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping

from batchops.i18n import N_, _

#: What a secret, or a credential's place, is shown as.
MASK = "***"
#: Shorter values are not scrubbed: masking a two-letter "secret" wherever its letters
#: stand would wreck every message (and its base64 is a few common characters), and a
#: value that short keeps nothing secret anyway. Real app secrets and tokens are 32+.
SHORTEST_SECRET = 4

#: Field names whose values are credentials, in bodies, the auth header and queries.
CREDENTIAL_KEYS = frozenset(
    {
        "bk_app_secret",
        "app_secret",
        "bk_token",
        "access_token",
        "bk_ticket",
        "secret",
        "token",
        "password",
    }
)
#: Headers whose whole value is a credential.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def _u_escaped(secret: str, digits: str) -> str:
    """Every character as JSON's ``\\uXXXX`` (characters past U+FFFF as surrogate pairs)."""
    units = secret.encode("utf-16-be", "surrogatepass")
    return "".join(
        f"\\u{int.from_bytes(units[i : i + 2], 'big'):04{digits}}" for i in range(0, len(units), 2)
    )


def _lower_percent(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def forms_of(secret: str) -> frozenset[str]:
    """Every form in which ``secret`` may come back: none for a short or empty one.

    As sent; JSON-escaped (ASCII-only and not); every character ``\\u``-escaped (lower and
    upper hex); URL-encoded (``quote`` with and without ``/`` kept, ``quote_plus``; upper
    and lower hex); base64 of its UTF-8 (standard and URL-safe, with and without padding).
    """
    if len(secret) < SHORTEST_SECRET:
        return frozenset()
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        _u_escaped(secret, "x"),
        _u_escaped(secret, "X"),
    }
    for quoted in (
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
    ):
        forms.update((quoted, _lower_percent(quoted)))
    raw = secret.encode("utf-8", "surrogatepass")
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        forms.update((encoded.decode(), encoded.decode().rstrip("=")))
    return frozenset(forms)


class Scrubber:
    """Takes known secrets out of text, raw bytes and parsed JSON, in every form."""

    __slots__ = ("_bytes", "_dumped", "_in_json", "_texts")

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            forms |= forms_of(secret)
        # Longest first, so a form that contains another is replaced whole.
        self._texts = tuple(sorted(forms, key=len, reverse=True))
        self._bytes = tuple(form.encode("utf-8", "surrogatepass") for form in self._texts)
        # Scanned left to right, a JSON escape is taken whole unless a form starts there.
        forms_first = b"|".join(re.escape(form) for form in self._bytes) or b"(?!)"
        self._in_json = re.compile(b"(" + forms_first + rb")|\\(?:u[0-9a-fA-F]{4}|.)", re.DOTALL)
        # How each form reads inside a JSON dump: one search of a dump tells whether any
        # string of a parsed answer holds one, without walking it.
        self._dumped = tuple({json.dumps(form, ensure_ascii=False)[1:-1] for form in forms})

    def __bool__(self) -> bool:
        return bool(self._texts)

    # A replacement can join what is left into a form again (a secret holding the mask
    # itself); each one shortens the value, as no form is shorter than SHORTEST_SECRET
    # and the mask is, so going over it again until nothing changes ends.

    def text(self, value: str) -> str:
        again = True
        while again:
            again = False
            for form in self._texts:
                if form in value:
                    value, again = value.replace(form, MASK), True
        return value

    def raw(self, value: bytes) -> bytes:
        """An answer's body as received. In JSON, a form is replaced only where a character
        starts, never from the middle of an escape (``\\u0030000`` does not hold "0000"),
        so that the body still parses; what its escapes decode to is :meth:`data`'s."""
        if not any(form in value for form in self._bytes):
            return value
        if value.lstrip()[:1] in (b"{", b"["):
            scrubbed = self._in_json.sub(self._unless_escape, value)
            while scrubbed != value:
                value, scrubbed = scrubbed, self._in_json.sub(self._unless_escape, scrubbed)
            return value
        again = True
        while again:
            again = False
            for form in self._bytes:
                if form in value:
                    value, again = value.replace(form, MASK.encode()), True
        return value

    @staticmethod
    def _unless_escape(match: re.Match[bytes]) -> bytes:
        return MASK.encode() if match.group(1) is not None else match.group(0)

    def data(self, value: object) -> object:
        """Parsed JSON (dicts, lists, strings, numbers) with every string scrubbed."""
        if not self._texts or not value or isinstance(value, bool | int | float):
            # Nearly every answer of a run: an operation's empty data needs no dump.
            return value
        if isinstance(value, str):
            return self.text(value)
        dumped = json.dumps(value, ensure_ascii=False, default=str)
        if not any(form in dumped for form in self._dumped):
            return value
        return self._walk(value)

    def _walk(self, value: object) -> object:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self._walk(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        return value


def _scrubber(secrets: Scrubber | Iterable[str]) -> Scrubber:
    return secrets if isinstance(secrets, Scrubber) else Scrubber(secrets)


def scrub(text: str, secrets: Scrubber | Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by :data:`MASK`."""
    return _scrubber(secrets).text(text)


def mask_fields(value: object) -> object:
    """Parsed JSON with the value of every credential field (by name, at any depth) masked."""
    if isinstance(value, dict):
        return {
            k: (MASK if str(k).lower() in CREDENTIAL_KEYS and v else mask_fields(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_fields(v) for v in value]
    return value


def mask_text(text: str, secrets: Scrubber | Iterable[str] = ()) -> str:
    """``text`` with credentials masked: JSON fields by name, then every secret's value."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            document = json.loads(stripped)
        except ValueError:
            pass
        else:
            text = json.dumps(mask_fields(document), ensure_ascii=False)
    return scrub(text, secrets)


def mask_url(url: str, secrets: Scrubber | Iterable[str] = ()) -> str:
    """A URL with credential query parameters, its password and any secret's value masked."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if query:
        masked = [(k, MASK if k.lower() in CREDENTIAL_KEYS and v else v) for k, v in query]
        url = urllib.parse.urlunsplit(
            parts._replace(query=urllib.parse.urlencode(masked, safe="*"))
        )
    return scrub(masked_url(url), secrets)


def mask_headers(
    headers: Mapping[str, str], secrets: Scrubber | Iterable[str] = ()
) -> dict[str, str]:
    """Headers as they may be shown: credential headers masked whole or field by field."""
    scrubber = _scrubber(secrets)
    return {
        name: MASK if name.lower() in SECRET_HEADERS else mask_text(value, scrubber)
        for name, value in headers.items()
    }


def presence(secret: str | None) -> str:
    """How a secret is shown anywhere: never its value, only whether it is set."""
    # Marked for the catalogs: config show says it in the language in use (``_(…)``).
    return N_("(set)") if secret else N_("(not set)")


def masked_url(url: str) -> str:
    """A URL as it may be shown: a password in it masked (``http://u:***@proxy:3128``)."""
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    prefix = f"{head}://" if sep else ""
    return f"{prefix}{user}{':' + MASK if colon else ''}@{host}{slash}{path}"


def notify_label(url: str) -> str:
    """A notification URL as it may be shown: its scheme only, since the rest (a webhook
    key, a bot token, a mail password) is what lets anyone post there."""
    scheme, sep, _rest = url.partition("://")
    return f"{scheme}://…" if sep else _("(not a URL)")


def without_url_parts(text: str, url: str) -> str:
    """``text`` (a library's message about ``url``) without the parts of the URL past its
    scheme that could be a key: every one of 6 characters or more, shown as ``…``."""
    _scheme, sep, rest = url.partition("://")
    if sep:
        for part in rest.replace("@", "/").replace(":", "/").replace("?", "/").split("/"):
            if len(part) >= 6:
                text = text.replace(part, "…")
    return text


#: Command-line options whose value holds a credential, and how that value is shown.
