"""Which language batchops speaks, and that both catalogs hold every message."""

from __future__ import annotations

import pytest

from batchops import i18n
from batchops.i18n import catalog


@pytest.mark.parametrize(
    ("flag", "env", "profile", "want"),
    [
        ("en", {"BATCHOPS_LANG": "zh", "LANG": "zh_CN.UTF-8"}, "zh", ("en", "--lang")),
        (None, {"BATCHOPS_LANG": "zh_CN", "LANG": "en_US.UTF-8"}, "en", ("zh", "BATCHOPS_LANG")),
        (None, {"LANG": "zh_CN.UTF-8"}, "en", ("en", "profile")),
        (None, {"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, None, ("zh", "LC_ALL")),
        (None, {"LC_MESSAGES": "zh_CN.GB18030"}, None, ("zh", "LC_MESSAGES")),
        # POSIX: the first variable set decides, even when it names no language we speak.
        (None, {"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, None, ("en", "LC_ALL")),
        (None, {"LANG": "fr_FR.UTF-8"}, None, ("en", "LANG")),
        (None, {}, None, ("en", "default")),
        # A value that is no language is no choice: the next source decides.
        ("xx", {"BATCHOPS_LANG": "？", "LANG": "zh_CN.UTF-8"}, None, ("zh", "LANG")),
        ("ＺＨ", {}, None, ("zh", "--lang")),
    ],
)
def test_the_language_is_chosen_in_order(
    flag: str | None, env: dict[str, str], profile: str | None, want: tuple[str, str]
) -> None:
    assert i18n.choose(flag, profile, env) == want


def test_the_language_in_use_follows_the_environment_until_a_command_chooses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.current() == "zh"
    assert i18n.blueking_language() == "zh-cn"
    with i18n.using("en"):
        assert i18n.current() == "en"
        assert i18n.blueking_language() == "en"
    assert i18n.current() == "zh"


def test_a_message_is_shown_in_the_language_in_use() -> None:
    with i18n.using("zh"):
        chinese = i18n._("Usage:")
    with i18n.using("en"):
        english = i18n._("Usage:")
    assert english == "Usage:"
    assert chinese != english and chinese.strip()


def test_every_message_has_a_translation_in_both_catalogs() -> None:
    """The catalogs hold every message of the source and of click, translated, with the
    English message's fields, and the compiled files are up to date
    (``python -m batchops.i18n.catalog`` fixes what it can; a translator the rest)."""
    problems = catalog.check()
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} problems)"
