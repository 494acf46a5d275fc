"""Every number has both bounds, held alike whatever its source (flag, environment,
profile, Python keyword), and refused in one line before anything is sent.

The CLI tests run against the stand-in ITSM and count its requests, so "nothing sent" is
counted, not assumed.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from batchops.errors import ConfigError
from batchops.sandbox import SandboxThread
from batchops.settings import RANGES, check_setting, resolve
from batchops.settings.ranges import MAX_WAIT_S
from batchops.settings.sources import SETTINGS, Setting

from ..helpers import creds_env, run_cli, running, seed, total_requests, write_csv

#: Every setting that is a time, as its flag names it.
TIME_FLAGS = ("--timeout", "--server-timeout", "--readback-delay", "--outage-wait")


def _sheet(itsm: SandboxThread, tmp_path: Path) -> Path:
    seed(itsm, running("NO1"))
    return write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])


def _refused_in_one_line(out_stderr: str, start: str) -> str:
    (line,) = out_stderr.strip().splitlines()
    assert line.startswith(start), line
    assert "Traceback" not in out_stderr
    return line


# --------------------------------------------------------------------------- the table


def test_every_number_a_profile_may_set_has_both_bounds() -> None:
    """Each numeric setting is in RANGES, with a finite lower and upper bound; every
    time is at most an hour."""
    numeric = {key for key, setting in SETTINGS.items() if setting.kind in (int, float)}
    assert numeric <= RANGES.keys()
    assert {"max_failures", "canary", "limit"} <= RANGES.keys()
    for key, bounds in RANGES.items():
        assert math.isfinite(bounds.low) and math.isfinite(bounds.high), key
        assert bounds.low < bounds.high, key
        assert "at most" in bounds.rule() and (
            "at least" in bounds.rule() or "more than" in bounds.rule()
        )
        if "seconds" in bounds.unit:
            assert bounds.high <= MAX_WAIT_S == 3600, key


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("timeout", 1e308),
        ("server_timeout", 1e308),
        ("readback_delay", 1e308),
        ("outage_wait", 1e308),
        ("rate", 1e-300),
        ("rate", 1e308),
        ("server_timeout", 0),
        ("server_timeout", 0.5),
        ("concurrency", 10**400),
        ("retries", "1e400"),
        ("canary", 10**9),
        ("limit", 0),
    ],
)
def test_check_setting_refuses_what_is_out_of_range(key: str, value: float | str) -> None:
    """Huge, tiny and past-float values are a ConfigError naming the rule, never an
    OverflowError or a pass."""
    with pytest.raises(
        ConfigError, match=r" must be a (whole|finite) number (at least|more than) .* and at most "
    ):
        check_setting(key, value, "flag")


def test_server_timeout_floor_and_default() -> None:
    """1 s is the least --server-timeout; the default is 300 s (ITSM outlives the gateway)."""
    assert resolve({}, env={}).values.server_timeout == 300.0
    assert resolve({"server_timeout": 1}, env={}).values.server_timeout == 1.0
    with pytest.raises(ConfigError, match="--server-timeout must be a finite number at least 1 "):
        resolve({"server_timeout": 0.99}, env={})


def test_a_number_from_the_environment_is_held_to_the_same_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The merge checks an environment variable's number through RANGES like a flag's
    (no number has a variable today; this one is planted to prove the path)."""
    monkeypatch.setitem(SETTINGS, "rate", Setting(float, None, "BATCHOPS_TEST_RATE"))
    with pytest.raises(ConfigError) as from_env:
        resolve({}, env={"BATCHOPS_TEST_RATE": "1e-300"})
    with pytest.raises(ConfigError) as from_flag:
        resolve({"rate": "1e-300"}, env={})
    assert str(from_env.value).startswith("rate (env BATCHOPS_TEST_RATE) must be ")
    assert str(from_env.value).split(" must be ")[1] == str(from_flag.value).split(" must be ")[1]


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        *((flag, "1e308") for flag in TIME_FLAGS),
        *((flag, "nan") for flag in TIME_FLAGS),
        ("--rate", "1e-300"),
        ("--rate", "nan"),
        ("--rate", "1e308"),
        ("--server-timeout", "0"),
        ("--canary", "0"),
        ("--canary", "100000000"),
    ],
)
def test_run_refuses_a_number_out_of_range_before_any_request(
    itsm: SandboxThread, tmp_path: Path, flag: str, value: str
) -> None:
    """A wait of 1e308 s, a rate of 1e-300, nan: exit 2, one line, no request at all."""
    sheet = _sheet(itsm, tmp_path)
    out = run_cli(["run", str(sheet), "--yes", flag, value], creds_env(itsm.url))
    assert out.exit_code == 2, out.stdout + out.stderr
    _refused_in_one_line(out.stderr, f"Error: {flag} must be a ")
    assert total_requests(itsm) == 0


def test_run_refuses_a_failure_count_past_any_sheet(itsm: SandboxThread, tmp_path: Path) -> None:
    """--max-failures N has an upper bound too (its percentage form always had one)."""
    sheet = _sheet(itsm, tmp_path)
    out = run_cli(["run", str(sheet), "--yes", "--max-failures", "100000000"], creds_env(itsm.url))
    assert out.exit_code == 2, out.stdout + out.stderr
    line = _refused_in_one_line(out.stderr, "Error: --max-failures takes ")
    assert "at most 10,000,000 rows" in line
    assert total_requests(itsm) == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("timeout", "1e308"),
        ("server_timeout", "1e308"),
        ("readback_delay", "1e308"),
        ("outage_wait", "1e308"),
        ("rate", "1e-300"),
        ("server_timeout", "nan"),
        ("server_timeout", "0.5"),
    ],
)
def test_a_profile_number_is_refused_as_the_flag_is(
    itsm: SandboxThread, tmp_path: Path, key: str, value: str
) -> None:
    """The same value in a profile: exit 2, one line with the same rule, no request."""
    sheet = _sheet(itsm, tmp_path)
    config = tmp_path / "p.toml"
    config.write_text(f"[profiles.prod]\n{key} = {value}\n", encoding="utf-8")
    args = ["run", str(sheet), "--yes", "--config", str(config), "--profile", "prod"]
    out = run_cli(args, creds_env(itsm.url))
    assert out.exit_code == 2, out.stdout + out.stderr
    line = _refused_in_one_line(out.stderr, f"Error: {key} (profile prod in {config}) must be ")
    flag = run_cli(
        ["run", str(sheet), "--yes", "--" + key.replace("_", "-"), value], creds_env(itsm.url)
    )
    assert flag.exit_code == 2
    assert line.split(" must be ")[1] == flag.stderr.strip().split(" must be ")[1]
    assert total_requests(itsm) == 0


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--timeout", "1e308"),
        ("--rate", "1e-300"),
        ("--retries", "100"),
        ("--limit", "0"),
        ("--limit", "100000000"),
    ],
)
def test_select_refuses_a_number_out_of_range_before_any_request(
    itsm: SandboxThread, tmp_path: Path, flag: str, value: str
) -> None:
    """select's numbers are held to the same table: exit 2, one line, no request."""
    out = run_cli(
        ["select", "--all", "-o", str(tmp_path / "s.csv"), flag, value], creds_env(itsm.url)
    )
    assert out.exit_code == 2, out.stdout + out.stderr
    _refused_in_one_line(out.stderr, f"Error: {flag} must be a ")
    assert total_requests(itsm) == 0
    assert not (tmp_path / "s.csv").exists()
