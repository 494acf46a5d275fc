"""The message a profile writes into tickets (``default_message``): checked once, from
the file, before anything is sent; shown by ``config show``."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchops.errors import ConfigError
from batchops.i18n import using
from batchops.settings import resolve
from batchops.settings.templates import TEMPLATE_FIELDS, checked_template

from ..helpers import run_cli


@pytest.mark.parametrize(
    "template",
    ["批量操作：{action}", "  ops: {action}  ", "closed by the night shift", "a\tb\n{action}"],
)
def test_a_fit_template_is_kept_trimmed(template: str) -> None:
    """A template with {action} or without a field, tabs and line breaks allowed."""
    assert (
        checked_template(template, TEMPLATE_FIELDS["default_message"], "default_message")
        == template.strip()
    )


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("", "it is blank"),
        ("by {operator}: {action}", "may use only the fields {action}, not {operator}"),
        ("{0} {action}", "{0}"),
        ("stop\x1b[2J{action}", "control character"),
        ("x" * 247 + "{action}", "longer than ITSM's 255 characters"),
    ],
)
def test_an_unfit_template_is_one_error_line(template: str, said: str) -> None:
    with pytest.raises(ConfigError) as info:
        checked_template(
            template, TEMPLATE_FIELDS["default_message"], "default_message (profile ops)"
        )
    text = str(info.value)
    assert text.startswith("default_message (profile ops) is the message written into tickets")
    assert said in text and "\n" not in text


def test_the_error_is_chinese_under_zh() -> None:
    with using("zh"), pytest.raises(ConfigError) as info:
        checked_template(" ", TEMPLATE_FIELDS["default_message"], "default_message")
    assert "写入单据的原因" in str(info.value) and "内容为空" in str(info.value)


def test_a_profile_sets_it_and_config_show_says_so(tmp_path: Path) -> None:
    """The profile's template is merged like any setting, and config show names its source."""
    cfg = tmp_path / "b.toml"
    cfg.write_text('[profiles.ops]\ndefault_message = "运维：{action}"\n', encoding="utf-8")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    resolved = resolve({}, profile="ops", config=cfg, env=env)
    assert resolved.values.default_message == "运维：{action}"
    assert resolve({}, env=env).values.default_message is None
    out = run_cli(["config", "show", "--config", str(cfg), "--profile", "ops"])
    line = next(line for line in out.stdout.splitlines() if "default_message" in line)
    assert "运维：{action}" in line and "profile ops" in line
