"""The rule for an option's word from a fixed set: the closest word, and the refusal."""

from __future__ import annotations

from batchops.errors import ConfigError
from batchops.i18n import using
from batchops.model import ticket_status
from batchops.settings.choices import closest, refused


def test_the_closest_word_is_found_in_any_case_and_width() -> None:
    known = ("RUNNING", "SUSPENDED", "处理中")
    assert closest("RUNNNING", known) == "RUNNING"
    assert closest("ｓｕｓｐｅｎｄ", known) == "SUSPENDED"
    assert closest("处里中", known) == "处理中"
    assert closest("xyz", known) is None


def test_the_refusal_is_one_line_naming_what_is_taken() -> None:
    error = refused("--gateway", "apigww", "esb or apigw", ("esb", "apigw"))
    assert isinstance(error, ConfigError)
    assert str(error) == "--gateway takes esb or apigw, not 'apigww'; did you mean apigw?"
    with using("zh"):
        text = str(refused("--gateway", "x", "esb or apigw", ("esb", "apigw")))
    assert text.startswith("--gateway 只接受 esb or apigw，不接受 'x'")


def test_ticket_statuses_are_read_as_itsm_codes() -> None:
    assert ticket_status(" running ") == "RUNNING"
    assert ticket_status("ＲＥＳＯＬＶＥＤ") == "RESOLVED"
    assert ticket_status("待确认") == "CONFIRMED"
    assert ticket_status("已撤单") == "REVOKED"
    assert ticket_status("RUNNNING") is None
    assert ticket_status("") is None
