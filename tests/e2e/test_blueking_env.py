"""End to end: BlueKing's own variables find ITSM when nothing else names it (issue 22,
part 7): ``BK_COMPONENT_API_URL`` for the ESB, ``BK_API_URL_TMPL`` for the API gateway;
a flag, ``BATCHOPS_BASE_URL`` and a profile still win, and ``config show`` names the
variable that chose the address."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from batchops.sandbox import SandboxThread

from ..helpers import APP_CODE, SECRET, report_of, rows_for, run_cli, tickets, write_csv


def _dead_url() -> str:
    """An address where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def blueking_env(**variables: str) -> dict[str, str]:
    """A BlueKing app's environment: credentials and the given variables, no BATCHOPS_*."""
    return {"BK_APP_CODE": APP_CODE, "BK_APP_SECRET": SECRET, "BK_USERNAME": "admin", **variables}


@pytest.fixture
def server(stand_in: Callable[..., SandboxThread]) -> SandboxThread:
    return stand_in(tickets("BK", 3))


def run(src: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    out = run_cli(["run", str(src), "--yes", "--readback-delay", "0", *args], env)
    return out.exit_code, out.stdout + out.stderr


def suspended(server: SandboxThread) -> list[str]:
    return sorted(sn for sn, t in server.state.tickets.items() if t.status == "SUSPENDED")


def test_bk_component_api_url_alone_reaches_the_esb(server: SandboxThread, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "t.csv", rows_for(["BK0", "BK1", "BK2"]))
    code, said = run(src, blueking_env(BK_COMPONENT_API_URL=server.url))
    assert code == 0, said
    assert suspended(server) == ["BK0", "BK1", "BK2"]
    assert {r["status"] for r in report_of(src)} == {"success"}
    assert server.state.stats.requests.get("operate_ticket") == 3


@pytest.mark.parametrize("winner", ["--base-url", "BATCHOPS_BASE_URL", "profile"])
def test_a_flag_batchops_base_url_and_a_profile_win_over_it(
    server: SandboxThread, tmp_path: Path, winner: str
) -> None:
    """BK_COMPONENT_API_URL points at a dead port; whatever names ITSM otherwise wins."""
    src = write_csv(tmp_path / "t.csv", rows_for(["BK0"]))
    env = blueking_env(BK_COMPONENT_API_URL=_dead_url())
    args: list[str] = []
    if winner == "--base-url":
        args = ["--base-url", server.url]
    elif winner == "BATCHOPS_BASE_URL":
        env["BATCHOPS_BASE_URL"] = server.url
    else:
        config = tmp_path / "batchops.toml"
        config.write_text(f'[profiles.p]\nbase_url = "{server.url}"\n', encoding="utf-8")
        args = ["--config", str(config), "--profile", "p"]
    code, said = run(src, env, *args)
    assert code == 0, said
    assert suspended(server) == ["BK0"]


def test_the_gateway_comes_from_bk_api_url_tmpl_with_the_prod_stage(
    server: SandboxThread, tmp_path: Path
) -> None:
    """``{api_name}`` becomes bk-itsm and the stage prod follows: the stand-in answers the
    API gateway only at /api/bk-itsm/prod/v2/itsm/ (or /v2/itsm/ at the root), so a
    wrong URL would fail. The ESB variable, pointing nowhere, is not used for apigw."""
    src = write_csv(tmp_path / "t.csv", rows_for(["BK0", "BK1"]))
    env = blueking_env(
        BK_API_URL_TMPL=f"{server.url}/api/{{api_name}}/", BK_COMPONENT_API_URL=_dead_url()
    )
    code, said = run(src, env, "--gateway", "apigw", "-vv")
    assert code == 0, said
    assert suspended(server) == ["BK0", "BK1"]
    assert "/api/bk-itsm/prod/v2/itsm/" in said


def test_config_show_names_the_variable_that_chose_the_address(tmp_path: Path) -> None:
    config = tmp_path / "batchops.toml"
    config.write_text('[profiles.gw]\ngateway = "apigw"\n', encoding="utf-8")
    env = blueking_env(
        BK_COMPONENT_API_URL="http://paas.example.com",
        BK_API_URL_TMPL="http://bkapi.example.com/api/{api_name}/",
    )
    esb = run_cli(["config", "show", "--config", str(config)], env)
    assert esb.exit_code == 0, esb.stderr
    line = next(x for x in esb.stdout.splitlines() if x.strip().startswith("base_url"))
    assert "http://paas.example.com" in line and "[env BK_COMPONENT_API_URL]" in line
    gateway = run_cli(["config", "show", "--config", str(config), "--profile", "gw"], env)
    line = next(x for x in gateway.stdout.splitlines() if x.strip().startswith("base_url"))
    assert "http://bkapi.example.com/api/bk-itsm/prod" in line
    assert "[env BK_API_URL_TMPL]" in line
    env["BATCHOPS_BASE_URL"] = "http://mine.example.com"
    own = run_cli(["config", "show", "--config", str(config)], env)
    line = next(x for x in own.stdout.splitlines() if x.strip().startswith("base_url"))
    assert "http://mine.example.com" in line and "[env BATCHOPS_BASE_URL]" in line


def test_a_template_without_api_name_is_refused(server: SandboxThread, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "t.csv", rows_for(["BK0"]))
    env = blueking_env(BK_API_URL_TMPL=f"{server.url}/api/bk-itsm/")
    code, said = run(src, env, "--gateway", "apigw")
    assert code == 2
    assert "BK_API_URL_TMPL must hold {api_name}" in said
    assert suspended(server) == []
    assert sum(server.state.stats.requests.values()) == 0
