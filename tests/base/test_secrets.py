"""The one home of every mask: a secret in any form it can come back in leaves as ``***``.

The forms are listed here on their own (not read from the module), so a form the module
forgets fails here.
"""

from __future__ import annotations

import base64
import json
import random
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchops.secrets import (
    MASK,
    SHORTEST_SECRET,
    Scrubber,
    mask_headers,
    mask_text,
    mask_url,
    masked_url,
    notify_label,
    presence,
    scrub,
    without_url_parts,
)

#: Quotes, a backslash, a slash, a plus, a space, non-ASCII and a character past U+FFFF:
#: each is written differently by JSON, URLs and base64.
SECRET = 'p@ss/wörd+"quoted" \\ 🔑-7f1c'


def _u_escaped(secret: str, upper: bool) -> str:
    units = secret.encode("utf-16-be", "surrogatepass")
    codes = [int.from_bytes(units[i : i + 2], "big") for i in range(0, len(units), 2)]
    return "".join(f"\\u{c:04X}" if upper else f"\\u{c:04x}" for c in codes)


def _every_form(secret: str) -> dict[str, str]:
    raw = secret.encode()
    forms = {
        "raw": secret,
        "JSON-escaped": json.dumps(secret)[1:-1],
        "JSON-escaped, non-ASCII kept": json.dumps(secret, ensure_ascii=False)[1:-1],
        "\\u-escaped, lower hex": _u_escaped(secret, upper=False),
        "\\u-escaped, upper hex": _u_escaped(secret, upper=True),
        "URL-encoded (quote)": urllib.parse.quote(secret, safe=""),
        "URL-encoded (quote, / kept)": urllib.parse.quote(secret),
        "URL-encoded (quote_plus)": urllib.parse.quote_plus(secret),
        "base64": base64.b64encode(raw).decode(),
        "base64, no padding": base64.b64encode(raw).decode().rstrip("="),
        "base64 URL-safe": base64.urlsafe_b64encode(raw).decode(),
        "base64 URL-safe, no padding": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return forms


FORMS = _every_form(SECRET)


@pytest.mark.parametrize("form", FORMS, ids=list(FORMS))
def test_every_form_of_a_secret_is_scrubbed_from_text_and_bytes(form: str) -> None:
    scrubber = Scrubber([SECRET])
    said = f"error: {FORMS[form]} was wrong"
    assert scrubber.text(said) == f"error: {MASK} was wrong"
    assert scrubber.raw(said.encode()) == f"error: {MASK} was wrong".encode()
    assert scrub(said, [SECRET]) == f"error: {MASK} was wrong"


def test_forms_that_differ_only_in_padding_or_hex_case_are_masked_whole() -> None:
    """The longest form wins where one contains another: no padding or tail is left."""
    scrubber = Scrubber([SECRET])
    for form in FORMS.values():
        assert scrubber.text(f"<{form}>") == f"<{MASK}>", form


def test_short_and_empty_secrets_are_not_scrubbed() -> None:
    """A value shorter than SHORTEST_SECRET would mask fragments of every message."""
    short = "x" * (SHORTEST_SECRET - 1)
    scrubber = Scrubber(["", short])
    assert not scrubber
    assert scrubber.text(f"{short} and {short}") == f"{short} and {short}"
    assert scrubber.raw(short.encode()) == short.encode()
    assert scrubber.data({"k": short}) == {"k": short}
    assert Scrubber(["y" * SHORTEST_SECRET]).text("y" * SHORTEST_SECRET) == MASK


def test_every_secret_is_scrubbed_the_app_secret_and_the_token() -> None:
    scrubber = Scrubber(["app-secret-1234", "", "user-token-5678"])
    assert scrubber.text("app-secret-1234 / user-token-5678") == f"{MASK} / {MASK}"


def test_parsed_json_is_scrubbed_at_any_depth_keys_included() -> None:
    """What the JSON escapes of a body decode back to is caught after parsing."""
    scrubber = Scrubber([SECRET])
    wire = json.dumps({"items": [{"title": f"t {SECRET}", SECRET: 1, "n": 2}], "ok": True})
    data = scrubber.data(json.loads(scrubber.raw(wire.encode())))
    assert data == {"items": [{"title": f"t {MASK}", MASK: 1, "n": 2}], "ok": True}
    clean = {"items": [{"title": "nothing to hide"}]}
    assert scrubber.data(clean) is clean
    assert scrubber.data(None) is None and scrubber.data(3) == 3
    assert scrubber.data(FORMS["base64"]) == MASK


def test_a_json_body_still_parses_once_scrubbed() -> None:
    """In JSON a form is replaced where a character starts, never inside an escape."""
    scrubber = Scrubber(["0000", SECRET])
    inside = b'{"m": "\\u0030000"}'  # "0" escaped, then "000"
    assert scrubber.raw(inside) == inside  # not '{"m": "\\u003***"}', which would not parse
    assert scrubber.data(json.loads(inside)) == {"m": MASK}
    echoed = json.dumps({"m": f"a {SECRET} b", "n": "0000\\"}).encode()
    assert json.loads(scrubber.raw(echoed)) == {"m": f"a {MASK} b", "n": f"{MASK}\\"}


def _mixed_json(secret: str, pick: random.Random) -> str:
    """``secret`` as a JSON string whose characters are escaped at random, or not."""
    return "".join(
        _u_escaped(c, upper=pick.random() < 0.5) if pick.random() < 0.5 else json.dumps(c)[1:-1]
        for c in secret
    )


secrets_ = st.text(min_size=SHORTEST_SECRET, max_size=40)
around = st.text(max_size=20)


@settings(max_examples=300, deadline=None)
@given(secret=secrets_, before=around, after=around)
def test_no_form_of_any_secret_survives_in_text_or_bytes(
    secret: str, before: str, after: str
) -> None:
    """Property: whatever the secret and whatever text stands around it, none of its forms
    is left in the scrubbed text or bytes."""
    scrubber = Scrubber([secret])
    for form in _every_form(secret).values():
        text = scrubber.text(before + form + after)
        assert MASK in text
        assert all(f not in text for f in _every_form(secret).values())
        # Not JSON (that is the next tests'): a JSON escape before it would change it.
        raw = scrubber.raw(f"x{before}{form}{after}".encode())
        assert all(f.encode() not in raw for f in _every_form(secret).values())


@settings(max_examples=200, deadline=None)
@given(secret=secrets_, seed=st.integers(0, 2**32))
def test_a_body_escaping_the_secret_any_which_way_parses_to_no_secret(
    secret: str, seed: int
) -> None:
    """Property: a JSON answer that writes the secret with some of its characters
    ``\\u``-escaped and some not decodes to the secret; the parsed data is scrubbed."""
    wire = '{"message": "x ' + _mixed_json(secret, random.Random(seed)) + ' y"}'
    assert json.loads(wire)["message"] == f"x {secret} y"
    scrubber = Scrubber([secret])
    data = scrubber.data(json.loads(scrubber.raw(wire.encode())))
    assert isinstance(data, dict)
    assert secret not in data["message"]


def test_credential_fields_headers_and_queries_are_masked_by_name() -> None:
    """Credential fields by name in JSON, queries and headers; any secret value wherever it
    is left, also URL-encoded or JSON-escaped."""
    secret = 'p@ss/word "quoted"'
    body = json.dumps({"bk_app_secret": secret, "nested": [{"bk_token": "t0k"}], "sn": "1"})
    masked = json.loads(mask_text(body, [secret]))
    assert masked == {"bk_app_secret": MASK, "nested": [{"bk_token": MASK}], "sn": "1"}
    echoed = mask_text(f"error: secret {json.dumps(secret)} was wrong", [secret])
    assert "word" not in echoed
    query = urllib.parse.urlencode({"sn": "1", "bk_app_secret": secret, "note": secret})
    url = mask_url(f"http://u:pw@h/x?{query}", [secret])
    assert "word" not in url and "pw" not in url and "sn=1" in url
    assert url.startswith(f"http://u:{MASK}@h/x?")
    headers = mask_headers(
        {
            "X-Bkapi-Authorization": json.dumps({"bk_app_code": "a", "bk_app_secret": secret}),
            "Authorization": "Bearer abc",
            "Accept": "application/json",
        },
        [secret],
    )
    assert json.loads(headers["X-Bkapi-Authorization"]) == {
        "bk_app_code": "a",
        "bk_app_secret": MASK,
    }
    assert headers["Authorization"] == MASK and headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:pw@proxy:3128", f"http://u:{MASK}@proxy:3128"),
        ("u:pw@proxy:3128/x", f"u:{MASK}@proxy:3128/x"),
        ("http://u@proxy:3128", "http://u@proxy:3128"),
        ("http://proxy:3128/a@b", "http://proxy:3128/a@b"),
    ],
)
def test_a_url_shows_its_user_but_never_its_password(url: str, shown: str) -> None:
    """One rule for a proxy URL in ``config show`` and a request URL in ``-vv``."""
    assert masked_url(url) == shown
    assert mask_url(url) == shown


def test_a_notification_url_shows_only_its_scheme() -> None:
    assert notify_label("wecombot://KEY123456") == "wecombot://…"
    assert notify_label("not a url") == "(not a URL)"
    said = "POST to https://hooks.example/T0KEN42x/abc failed"
    assert without_url_parts(said, "json://hooks.example/T0KEN42x/abc") == (
        "POST to https://…/…/abc failed"
    )


def test_a_secret_is_shown_only_as_set_or_not() -> None:
    assert (presence("s3cr3t"), presence(""), presence(None)) == ("(set)", "(not set)", "(not set)")
