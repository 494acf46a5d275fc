"""Every bad URL is one clear line (exit 2, no traceback), whichever command and source
gave it, and nothing is sent: the checks run where the settings are merged."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchops.errors import ConfigError
from batchops.sandbox import SandboxThread
from batchops.settings import resolve

from ..helpers import creds_env, run_cli, running, seed, total_requests, write_csv

#: URLs nothing can be sent to, each for its own reason.
BAD_URLS = [
    "http://[::1",  # an IPv6 address never closed
    "http://",  # no host
    "http:///itsm",  # no host, a path
    "https://user:pw@",  # a user, no host
    "ftp://paas.example.com",  # not http(s)
    "paas.example.com",  # no scheme
    "http://paas.example.com:99999",  # port out of range
    "http://paas.example.com:https",  # port not a number
    "http://paas example.com",  # a blank
    "http://paas.example.com/\x1b]0;owned\x07",  # a terminal escape
]


def _sheet(itsm: SandboxThread, tmp_path: Path) -> Path:
    seed(itsm, running("NO1"))
    return write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])


def _one_line(stderr: str, start: str) -> str:
    assert "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(start), line
    assert "\x1b" not in line and "\x07" not in line
    return line


@pytest.mark.parametrize("url", BAD_URLS)
def test_run_refuses_a_bad_base_url_in_one_line(
    itsm: SandboxThread, tmp_path: Path, url: str
) -> None:
    """run --base-url BAD: exit 2, one ``Error:`` line saying what is wrong, no request."""
    sheet = _sheet(itsm, tmp_path)
    out = run_cli(["run", str(sheet), "--yes", "--base-url", url], creds_env(itsm.url))
    assert out.exit_code == 2, out.stdout + out.stderr
    _one_line(out.stderr, "Error: --base-url must be an http:// or https:// URL with a host")
    assert total_requests(itsm) == 0


@pytest.mark.parametrize("suffix", ["/a b", "?tenant=1", "#top", "/\x00"])
def test_a_url_to_the_server_that_is_still_bad_sends_nothing(
    itsm: SandboxThread, tmp_path: Path, suffix: str
) -> None:
    """The stand-in's own address spoiled by a blank, a query, a fragment or a NUL: it
    would have reached the server; it is refused and the server sees nothing."""
    sheet = _sheet(itsm, tmp_path)
    out = run_cli(["run", str(sheet), "--yes", "--base-url", itsm.url + suffix], creds_env(""))
    assert out.exit_code == 2, out.stdout + out.stderr
    _one_line(out.stderr, "Error: --base-url must be ")
    assert total_requests(itsm) == 0


@pytest.mark.parametrize("command", ["plan", "select"])
def test_plan_and_select_refuse_a_bad_base_url_alike(
    itsm: SandboxThread, tmp_path: Path, command: str
) -> None:
    """plan (which reads tickets) and select check the address the same way run does."""
    sheet = _sheet(itsm, tmp_path)
    args = [str(sheet)] if command == "plan" else ["--all", "-o", str(tmp_path / "s.csv")]
    out = run_cli([command, *args, "--base-url", "http://[::1"], creds_env(itsm.url))
    assert out.exit_code == 2, out.stdout + out.stderr
    _one_line(out.stderr, "Error: --base-url must be ")
    assert total_requests(itsm) == 0


def test_env_and_profile_bad_urls_are_refused_as_the_flag_is(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """BATCHOPS_BASE_URL and a profile's base_url: the same rule, their source named."""
    sheet = _sheet(itsm, tmp_path)
    bad = "http://paas.example.com:99999"
    flag = run_cli(["run", str(sheet), "--yes", "--base-url", bad], creds_env(itsm.url))
    env = run_cli(["run", str(sheet), "--yes"], creds_env(bad))
    config = tmp_path / "p.toml"
    config.write_text(f'[profiles.prod]\nbase_url = "{bad}"\n', encoding="utf-8")
    env_without_url = creds_env(itsm.url)
    del env_without_url["BATCHOPS_BASE_URL"]
    profile = run_cli(
        ["run", str(sheet), "--yes", "--config", str(config), "--profile", "prod"],
        env_without_url,
    )
    lines = [
        _one_line(flag.stderr, "Error: --base-url must be "),
        _one_line(env.stderr, "Error: base_url (env BATCHOPS_BASE_URL) must be "),
        _one_line(profile.stderr, f"Error: base_url (profile prod in {config}) must be "),
    ]
    assert {out.exit_code for out in (flag, env, profile)} == {2}
    assert len({line.split(" must be ")[1] for line in lines}) == 1
    assert total_requests(itsm) == 0


def test_a_bad_proxy_url_is_one_line_and_its_password_is_not_shown(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """--proxy with an unclosed IPv6 address and a password: one line, the password masked."""
    sheet = _sheet(itsm, tmp_path)
    out = run_cli(
        ["run", str(sheet), "--yes", "--proxy", "http://u:hunter2secret@[::1"],
        creds_env(itsm.url),
    )
    assert out.exit_code == 2, out.stdout + out.stderr
    line = _one_line(out.stderr, "Error: --proxy must be ")
    assert "hunter2secret" not in out.stdout + out.stderr
    assert "u:***@" in line
    assert total_requests(itsm) == 0


def test_the_merge_refuses_a_bad_url_for_python_callers_too() -> None:
    """resolve() is where the check lives: a Python caller gets the same ConfigError;
    good addresses, a gateway stage path and a blank (not given) pass."""
    with pytest.raises(ConfigError, match="Invalid IPv6 URL"):
        resolve({"base_url": "http://[::1"}, env={})
    for good in ("https://paas.example.com", "http://[::1]:8080/api/bk-itsm/prod/", ""):
        assert resolve({"base_url": good}, env={}).values.base_url == good
    assert resolve({"proxy": "none"}, env={}).values.proxy == "none"
