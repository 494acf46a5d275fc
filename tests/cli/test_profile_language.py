"""End to end: a profile's ``lang`` chooses the language, after ``--lang`` and
``BATCHOPS_LANG`` and before the locale; a broken profile file never breaks the choice
(issue 22, the language's order)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchops.cli.words import flag_value, profile_lang

from ..helpers import run_cli

CHINESE = "--status 只接受"
ENGLISH = "--status takes"


def profile_file(tmp_path: Path, lang: str = "zh") -> Path:
    path = tmp_path / "batchops.toml"
    path.write_text(
        f'default_profile = "cn"\n[profiles.cn]\nlang = "{lang}"\n[profiles.plain]\n',
        encoding="utf-8",
    )
    return path


def refusal(tmp_path: Path, *args: str, **env: str) -> str:
    """The one line a typo in --status gets (nothing is sent: no ITSM is needed)."""
    out = run_cli(
        ["select", "--status", "RUNNNING", "-o", str(tmp_path / "s.csv"), *args],
        {"BATCHOPS_CONFIG": str(profile_file(tmp_path)), **env},
    )
    assert out.exit_code == 2
    return out.stderr


def test_the_profiles_lang_makes_messages_chinese(tmp_path: Path) -> None:
    said = refusal(tmp_path)
    assert CHINESE in said
    assert "RUNNING" in said  # the codes stay as ITSM writes them


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--lang", "en"], {}, ENGLISH),
        (["--lang=en"], {}, ENGLISH),
        ([], {"BATCHOPS_LANG": "en"}, ENGLISH),
        ([], {"LANG": "en_US.UTF-8"}, CHINESE),  # the profile beats the locale
        (["--profile", "plain"], {"LANG": "zh_CN.UTF-8"}, CHINESE),  # no lang: the locale
        (["--profile", "plain"], {}, ENGLISH),
        ([], {"BATCHOPS_PROFILE": "plain"}, ENGLISH),
    ],
)
def test_the_order_is_flag_env_profile_locale(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    assert expected in refusal(tmp_path, *args, **env)


def test_a_broken_profile_file_falls_back_and_the_command_reports_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[profiles.cn\nlang = "zh"\n', encoding="utf-8")
    out = run_cli(
        ["select", "--status", "RUNNING", "-o", str(tmp_path / "s.csv")],
        {"BATCHOPS_CONFIG": str(broken), "BATCHOPS_BASE_URL": "http://127.0.0.1:9"},
    )
    assert out.exit_code == 2
    assert f"cannot read config file {broken}" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "s.csv").exists()


def test_a_lang_batchops_does_not_speak_is_refused_by_the_profile_check(tmp_path: Path) -> None:
    config = profile_file(tmp_path, lang="fr")
    out = run_cli(["config", "show", "--config", str(config)])
    assert out.exit_code == 2
    assert "lang (profile cn" in out.stderr and "'zh' or 'en'" in out.stderr


def test_config_show_shows_the_profiles_lang(tmp_path: Path) -> None:
    out = run_cli(["config", "show", "--config", str(profile_file(tmp_path)), "--lang", "en"])
    assert out.exit_code == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.strip().startswith("lang"))
    assert "zh" in line and "[profile cn" in line


def test_the_options_are_read_before_parsing(tmp_path: Path) -> None:
    words = ["run", "t.csv", "--profile", "a", "--config=c.toml", "--", "--profile", "b"]
    assert flag_value(words, "--profile") == "a"
    assert flag_value(words, "--config") == "c.toml"
    assert profile_lang(["--config", str(profile_file(tmp_path))]) == "zh"
    assert profile_lang(["--config", str(tmp_path / "missing.toml")]) is None
