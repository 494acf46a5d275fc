"""Settings: planted batchops.toml files are not read until trusted; every source is range-checked.

The planted-file tests run the real CLI against an in-test HTTP server on loopback that
records every request, so "sends nothing" is counted, not assumed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from batchops.sandbox import SandboxThread

from ..helpers import APP_CODE, creds_env, run_cli, running, seed, write_csv

#: What the planted file's secret_env points at: a variable the user never meant for ITSM.
FOREIGN_SECRET = "AKIA-foreign-secret-value-0d6b9"


class _Recorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, bytes, str]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(  # type: ignore[attr-defined]
            (self.command, self.path, body, str(self.headers))
        )
        payload = json.dumps({"result": True, "code": 0, "message": "", "data": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def listener() -> Iterator[tuple[str, list[tuple[str, str, bytes, str]]]]:
    """A loopback HTTP server that answers everything and records every request."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _plant(folder: Path, url: str) -> Path:
    """The file a folder handed over by another team might hold."""
    path = folder / "batchops.toml"
    path.write_text(
        "\n".join(
            [
                'default_profile = "evil"',
                "[profiles.evil]",
                f'base_url = "{url}"',
                f'app_code = "{APP_CODE}"',
                'username = "admin"',
                'secret_env = "AWS_SECRET_ACCESS_KEY"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def planted(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    listener: tuple[str, list[tuple[str, str, bytes, str]]],
) -> tuple[Path, Path, list[tuple[str, str, bytes, str]]]:
    """A working folder with a planted batchops.toml and a sheet; the user's own secret set."""
    url, requests = listener
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FOREIGN_SECRET)
    config = _plant(tmp_path, url)
    sheet = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    return config, sheet, requests


def test_planted_config_is_ignored_by_plan(
    planted: tuple[Path, Path, list[tuple[str, str, bytes, str]]],
) -> None:
    """plan in a folder with a planted batchops.toml sends nothing and names the file on stderr."""
    config, sheet, requests = planted
    out = run_cli(["plan", str(sheet)])
    assert out.exit_code == 0, out.stderr
    assert requests == []
    assert f"ignoring {config.resolve()}" in out.stderr
    assert "batchops config trust" in out.stderr
    assert "ignoring" not in out.stdout
    assert "target: none" in out.stdout


def test_planted_config_is_ignored_by_run(
    planted: tuple[Path, Path, list[tuple[str, str, bytes, str]]],
) -> None:
    """run in a folder with a planted batchops.toml sends nothing anywhere: no address known."""
    config, sheet, requests = planted
    out = run_cli(["run", str(sheet), "--yes"], {"BK_USERNAME": "admin"})
    assert out.exit_code == 2
    assert requests == []
    assert f"ignoring {config.resolve()}" in out.stderr
    assert "no ITSM address" in out.stderr
    assert FOREIGN_SECRET not in out.stdout + out.stderr


def test_trusted_config_is_read_and_its_source_shown(
    planted: tuple[Path, Path, list[tuple[str, str, bytes, str]]],
) -> None:
    """Once trusted, the same file is read (proving the tests above could fail), and plan
    says which file and profile chose the target."""
    config, sheet, requests = planted
    trusted = run_cli(["config", "trust", str(config)])
    assert trusted.exit_code == 0, trusted.stderr
    out = run_cli(["plan", str(sheet)])
    assert "ignoring" not in out.stderr
    assert requests, "a trusted profile's address is used"
    assert f"profile evil ({config})" in out.stdout


def test_changed_config_is_untrusted_again(
    planted: tuple[Path, Path, list[tuple[str, str, bytes, str]]],
) -> None:
    """Editing a trusted file withdraws the trust: it is ignored again, with the warning."""
    config, sheet, requests = planted
    assert run_cli(["config", "trust", str(config)]).exit_code == 0
    config.write_text(config.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    out = run_cli(["plan", str(sheet)])
    assert requests == []
    assert f"ignoring {config.resolve()}" in out.stderr


def test_explicit_config_and_user_folder_work_as_before(
    planted: tuple[Path, Path, list[tuple[str, str, bytes, str]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--config PATH is read without trust; so is the file in the user's own config folder."""
    config, _sheet, _requests = planted
    out = run_cli(["config", "show", "--config", str(config)])
    assert "profile: evil" in out.stdout
    assert "ignoring" not in out.stderr
    own = tmp_path / "xdg"
    (own / "batchops").mkdir(parents=True)
    (own / "batchops" / "batchops.toml").write_text(
        '[profiles.mine]\nbase_url = "http://127.0.0.1:9"\n', encoding="utf-8"
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(own))
    shown = run_cli(["config", "show", "--profile", "mine"])
    assert shown.exit_code == 0, shown.stderr
    assert "profile: mine" in shown.stdout
    assert f"ignoring {config.resolve()}" in shown.stderr


def test_confirmation_names_the_target_and_its_source(itsm: SandboxThread, tmp_path: Path) -> None:
    """The confirmation text says where the target came from (here: a profile file)."""
    from batchops import api

    seed(itsm, running("NO1"))
    sheet = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    config = tmp_path / "p.toml"
    config.write_text(f'[profiles.prod]\nbase_url = "{itsm.url}"\n', encoding="utf-8")
    shown: list[str] = []

    def confirm(overview: api.PlanOverview) -> bool:
        shown.append(overview.describe())
        return False

    env = creds_env("")
    del env["BATCHOPS_BASE_URL"]
    options = api.RunOptions(config=config, profile="prod")
    api.run_batch(sheet, options, env=env, hooks=api.Hooks(confirm=confirm))
    (text,) = shown
    assert f"rows to {itsm.url} (esb" in text
    assert f"target chosen by: profile prod ({config})" in text


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--timeout", "inf"),
        ("--timeout", "nan"),
        ("--rate", "nan"),
        ("--rate", "inf"),
        ("--readback-delay", "inf"),
        ("--concurrency", "5000"),
        ("--retries", "500"),
        ("--timeout", "0"),
    ],
)
def test_bad_number_flags_refused_before_anything(
    itsm: SandboxThread, tmp_path: Path, flag: str, value: str
) -> None:
    """Non-finite or out-of-range numbers on the command line: one Error line, exit 2, no send."""
    seed(itsm, running("NO1"))
    sheet = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(sheet), flag, value], creds_env(itsm.url))
    assert out.exit_code == 2
    assert sum(itsm.state.stats.requests.values()) == 0
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"Error: {flag} must be")
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("concurrency", "5000"),
        ("retries", "500"),
        ("timeout", "inf"),
        ("rate", "nan"),
        ("readback_delay", "-inf"),
        ("concurrency", "0"),
    ],
)
def test_bad_profile_numbers_refused_like_the_flag(
    itsm: SandboxThread, tmp_path: Path, key: str, value: str
) -> None:
    """A profile's out-of-range or non-finite number is refused the way the flag is."""
    seed(itsm, running("NO1"))
    sheet = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    config = tmp_path / "p.toml"
    config.write_text(f"[profiles.prod]\n{key} = {value}\n", encoding="utf-8")
    out = run_cli(
        ["run", str(sheet), "--config", str(config), "--profile", "prod"], creds_env(itsm.url)
    )
    assert out.exit_code == 2
    assert sum(itsm.state.stats.requests.values()) == 0
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"Error: {key} (profile prod in {config}) must be")
    flag = run_cli(["run", str(sheet), "--" + key.replace("_", "-"), value], creds_env(itsm.url))
    assert flag.exit_code == 2
    assert line.split(" must be ")[1] == flag.stderr.strip().split(" must be ")[1]


def test_resolved_settings_are_typed_whatever_the_source(tmp_path: Path) -> None:
    """The merged settings come out typed: a profile's whole number for a float setting
    is a float, a number given as text (a Python caller) a number, a profile's single
    notify URL a tuple, and a gateway that is neither esb nor apigw a ConfigError."""
    from batchops.errors import ConfigError
    from batchops.settings.sources import resolve

    config = tmp_path / "p.toml"
    config.write_text(
        '[profiles.p]\ntimeout = 12\nnotify = "json://localhost/x"\nrate = 5\n',
        encoding="utf-8",
    )
    resolved = resolve({"concurrency": "7"}, profile="p", config=config, env={})
    values = resolved.values
    assert (values.concurrency, values.timeout, values.rate) == (7, 12.0, 5.0)
    assert isinstance(values.timeout, float) and isinstance(values.concurrency, int)
    assert values.notify == ("json://localhost/x",) and values.gateway == "esb"
    assert resolved.sources["concurrency"] == "flag"
    with pytest.raises(ConfigError, match="'esb' or 'apigw'"):
        resolve({"gateway": "ftp"}, env={})


def test_planted_config_warning_survives_quiet(
    planted: tuple[Path, Path, list[tuple[str, str, bytes, str]]],
) -> None:
    """--quiet silences progress and the summary, never the warning about an ignored file."""
    config, sheet, requests = planted
    out = run_cli(["run", str(sheet), "--quiet", "--sandbox"])
    assert out.exit_code == 0, out.stderr
    assert requests == []
    assert f"ignoring {config.resolve()}" in out.stderr
    assert out.stdout == ""
