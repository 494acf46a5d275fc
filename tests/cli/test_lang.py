"""The command line speaks the user's language: help, usage errors, the exit-code table.

The language comes from ``--lang``, then ``BATCHOPS_LANG``, then the locale variables,
read as text: a machine without a Chinese locale installed still gets Chinese.
"""

from __future__ import annotations

import locale
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from batchops import i18n
from batchops.cli import main
from batchops.cli.words import cells, shown_help
from batchops.exits import Exit, help_text

from ..helpers import host_env, run_cli, write_csv

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _squashed(text: str) -> str:
    """``text`` without whitespace: click wraps help lines wherever it likes."""
    return re.sub(r"\s+", "", text)


def _commands() -> dict[str, click.Command]:
    """Every command, by the words that name it (``config show``), groups included."""
    found: dict[str, click.Command] = {}

    def walk(prefix: str, command: click.Command) -> None:
        found[prefix] = command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)

    walk("", main)
    return found


def _uninstalled_chinese_locale() -> str:
    """A Chinese locale name this machine cannot set (so Python cannot use it)."""
    for name in ("zh_CN.UTF-8", "zh_CN.GB18030", "zh_CN.batchops-no-such-codeset"):
        try:
            before = locale.setlocale(locale.LC_CTYPE)
            locale.setlocale(locale.LC_CTYPE, name)
        except locale.Error:
            return name
        locale.setlocale(locale.LC_CTYPE, before)
    raise AssertionError("every Chinese locale name was accepted")


def _child_help(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``batchops run --help`` in a child process (its own locale, as a terminal has)."""
    base = {k: v for k, v in host_env().items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG")}
    return subprocess.run(
        [sys.executable, "-m", "batchops", "run", *args, "--help"],
        env={**base, "PYTHONIOENCODING": "utf-8", **env},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def test_lang_zh_cn_run_help_is_chinese_without_a_chinese_locale_installed() -> None:
    """The usage line, the options' help and the exit-code table are Chinese; the option
    names, choices and exit codes stay as they are."""
    name = _uninstalled_chinese_locale()
    out = _child_help({"LANG": name})
    assert out.returncode == 0, out.stderr
    with i18n.using("zh"):
        usage, table = i18n._("Usage:"), help_text()
        retries = i18n._("Keep no checkpoint (no safe resume).")
    assert out.stdout.startswith(f"{usage} python -m batchops run [OPTIONS] INPUT")
    assert usage != "Usage:"
    assert _squashed(retries) in _squashed(out.stdout) and _CJK.search(retries)
    assert _squashed(table) in _squashed(out.stdout)
    assert table.startswith("退出码：0 ")
    for code in Exit:
        with i18n.using("zh"):
            assert _squashed(f"{code.value} {code.meaning}") in _squashed(out.stdout)
    # Machine words stay: option names, choices, --only's values.
    for word in ("--only STATUS[,STATUS]", "--notify-on [problems|always]", "failed,unknown"):
        assert word in out.stdout
    assert "Exit codes:" not in out.stdout and "Validate INPUT" not in out.stdout


def test_lang_en_wins_over_a_chinese_lang() -> None:
    out = _child_help({"LANG": "zh_CN.UTF-8"}, "--lang", "en")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: python -m batchops run [OPTIONS] INPUT")
    assert _squashed(help_text()) in _squashed(out.stdout)
    assert "Exit codes: 0 every row success or skipped" in " ".join(out.stdout.split())
    assert not _CJK.search(out.stdout.split("Examples:")[0])


def test_batchops_lang_zh_speaks_chinese_over_an_english_locale() -> None:
    out = run_cli(["run", "--help"], env={"BATCHOPS_LANG": "zh", "LANG": "en_US.UTF-8"})
    assert out.exit_code == 0
    assert "退出码：" in out.stdout and "Exit codes" not in out.stdout


def test_a_usage_error_under_lang_zh_is_click_s_own_words_in_chinese() -> None:
    out = run_cli(["run", "--lang", "zh", "--bogus"])
    assert out.exit_code == Exit.NOTHING_SENT == 2
    with i18n.using("zh"):
        error = i18n._("Error: {message}").format(
            message=i18n._("No such option {name!r}.").format(name="--bogus")
        )
        hint = i18n._("Try '{command} {option}' for help.").format(
            command="main run", option="--help"
        )
    assert "No such option" not in out.stderr and "Error:" not in out.stderr
    assert error in out.stderr and _CJK.search(error)
    assert hint in out.stderr


def test_an_unknown_language_is_a_usage_error_naming_the_two() -> None:
    out = run_cli(["run", "--lang", "fr", "--help"])
    assert out.exit_code == 2
    assert "use zh or en" in out.stderr


@pytest.mark.parametrize("words", sorted(_commands(), key=len))
def test_every_command_s_help_is_chinese_under_zh(words: str) -> None:
    """Every command's --help under zh: its text and every option's help are the
    Chinese ones (no English sentence left: each has Chinese in it and differs from the
    English), as shown; the English help is shown under en."""
    command = _commands()[words]
    args = [*words.split(), "--help"]
    chinese = _squashed(run_cli([*args, "--lang", "zh"]).stdout)
    english = _squashed(run_cli([*args, "--lang", "en"]).stdout)
    ctx = click.Context(command, info_name=words or "batchops")
    params = [p for p in command.get_params(ctx) if getattr(p, "help", None)]
    assert command.help and params
    with i18n.using("zh"):
        texts = [(i18n._(command.help), command.help)]
        texts += [(shown_help(p), p.help) for p in params]
    for zh, en in texts:
        assert en is not None
        assert zh != en and _CJK.search(zh), f"{words}: no Chinese for {en!r}"
        first = _squashed(click.unstyle(zh)).split("\b")[0][:40]
        assert first in chinese, f"{words}: {first!r} is not shown"
        assert _squashed(en).split("\b")[0][:40] not in chinese
    if command.epilog:
        assert "退出码" in chinese or "上手试试" in chinese
    with i18n.using("en"):
        for param in params:
            assert _squashed(shown_help(param))[:40] in english, param.name


def test_the_lang_choice_does_not_outlive_its_command() -> None:
    """A command's language is chosen anew each time: zh, then the environment's."""
    assert "退出码" in run_cli(["plan", "--help", "--lang", "zh"]).stdout
    assert "Exit codes" in run_cli(["plan", "--help"], env={"LANG": os.environ["LANG"]}).stdout


def test_python_m_batchops_sandbox_chooses_its_language_too() -> None:
    """The stand-in's own entry point speaks as the group does: --lang, then the locale."""
    base = {k: v for k, v in host_env().items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG")}
    env = {**base, "PYTHONIOENCODING": "utf-8", "LANG": "zh_CN.UTF-8"}
    run = [sys.executable, "-m", "batchops.sandbox"]
    helped = subprocess.run(
        [*run, "--help"], env=env, capture_output=True, text=True, encoding="utf-8", timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    assert "启动一个模拟 ITSM" in helped.stdout and "0 表示自动选一个空闲端口" in helped.stdout
    wrong = subprocess.run(
        [*run, "--lang", "en", "--bogus"],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert wrong.returncode == 2
    assert "No such option '--bogus'" in wrong.stderr


@pytest.mark.parametrize("words", sorted(_commands(), key=len))
def test_chinese_help_is_wrapped_to_the_width_and_english_help_is_as_click_writes_it(
    words: str,
) -> None:
    """A Chinese character takes two columns and a line may break between two: no line
    of Chinese help is wider than the help's width, nor split inside a word of ASCII."""
    args = [*words.split(), "--help"]
    chinese = run_cli([*args, "--lang", "zh"]).stdout
    width = click.formatting.FORCED_WIDTH or 80
    assert "用法" in chinese
    text = chinese.split("\n选项:\n", 1)[0]
    examples = text.split("示例：")[-1] if "示例：" in text else ""
    for line in chinese.splitlines():
        if line.startswith("用法") or len(line.split()) == 1 or line in examples:
            continue  # click's usage line; a word alone; examples are shown as written
        assert cells(line) <= width, line
    assert "（\n" not in chinese and "\n  ，" not in chinese
    english = run_cli([*args, "--lang", "en"]).stdout
    assert not _CJK.search(english.split("Example")[0])
    assert max(len(line) for line in english.splitlines()) <= 100


def test_a_batchops_lang_that_names_no_language_is_refused_unless_lang_is_given(
    tmp_path: Path,
) -> None:
    """A cron job's BATCHOPS_LANG=fr is said (exit 2, nothing written), not silently
    replaced by the locale's language; --lang on the command line decides instead."""
    src = write_csv(tmp_path / "t.csv", [["A1", "admin", "SUSPEND", "x"]])
    refused = run_cli(["run", str(src), "--sandbox", "--yes"], {"BATCHOPS_LANG": "fr"})
    assert refused.exit_code == Exit.NOTHING_SENT
    assert "BATCHOPS_LANG is 'fr', not a language batchops speaks" in refused.stderr
    assert not (tmp_path / "t.report.csv").exists()
    chosen = run_cli(
        ["run", str(src), "--sandbox", "--yes", "--lang", "en"], {"BATCHOPS_LANG": "fr"}
    )
    assert chosen.exit_code == Exit.OK, chosen.stderr
