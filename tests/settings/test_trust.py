"""The trust store cannot be injected: a path with a control character is refused, and
the store's format (JSON) cannot be broken by any path."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from batchops.errors import ConfigError
from batchops.sandbox import SandboxThread
from batchops.settings import trust_config
from batchops.settings.sources import find_config
from batchops.settings.trust import (
    TRUST_FORMAT,
    control_characters,
    is_trusted,
    read_store,
    trust_store_path,
)

from ..helpers import APP_CODE, run_cli, running, seed, total_requests, write_csv


def _evil_folder(root: Path, url: str) -> Path:
    """A handed-over folder whose batchops.toml sends to ``url``."""
    folder = root / "evil"
    folder.mkdir()
    (folder / "batchops.toml").write_text(
        f'default_profile = "evil"\n[profiles.evil]\nbase_url = "{url}"\n'
        f'app_code = "{APP_CODE}"\nusername = "admin"\n',
        encoding="utf-8",
    )
    return folder


def test_a_newline_in_the_path_cannot_trust_a_second_file(
    itsm: SandboxThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``config trust`` on "a\\n<sha256> /evil/batchops.toml": refused in one line, the
    store trusts nothing new, and the evil folder's file is still ignored by a run."""
    seed(itsm, running("NO1"))
    evil = _evil_folder(tmp_path, itsm.url)
    digest = hashlib.sha256((evil / "batchops.toml").read_bytes()).hexdigest()
    crafted = Path(f"{tmp_path}/a\n{digest} {evil}/batchops.toml")
    crafted.parent.mkdir(parents=True)
    crafted.write_text("[profiles.harmless]\n", encoding="utf-8")

    out = run_cli(["config", "trust", str(crafted)])

    assert out.exit_code == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("Error: cannot trust ") and "U+000A" in line
    store = trust_store_path(os.environ)  # the test's own XDG_CONFIG_HOME (conftest)
    assert not store.exists() or str(evil / "batchops.toml") not in store.read_text("utf-8")
    assert not store.with_name("trusted.txt").exists()

    monkeypatch.chdir(evil)
    sheet = write_csv(evil / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    run = run_cli(["run", str(sheet), "--yes"], {"BK_APP_SECRET": "x"})
    assert run.exit_code == 2
    assert f"ignoring {(evil / 'batchops.toml').resolve()}" in run.stderr
    assert total_requests(itsm) == 0


@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\x1b", "\x85", "\u2028", "\u202e", "\x7f"])
def test_control_characters_in_a_path_are_refused(tmp_path: Path, char: str) -> None:
    """Line breaks of every kind, escapes, tabs and bidi overrides: refused, not recorded."""
    assert control_characters(f"a{char}b") == [f"U+{ord(char):04X}"]
    path = tmp_path / f"x{char}y" / "batchops.toml"
    path.parent.mkdir()
    path.write_text("", encoding="utf-8")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    with pytest.raises(ConfigError, match="control characters"):
        trust_config(path, env)
    assert not trust_store_path(env).exists()


def test_the_store_is_json_and_an_odd_but_honest_path_round_trips(tmp_path: Path) -> None:
    """Blanks, quotes and non-Latin letters are kept as they are, one JSON string each."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    path = tmp_path / 'ops "team" 运维 folder' / "batchops.toml"
    path.parent.mkdir()
    path.write_text("[profiles.p]\n", encoding="utf-8")
    trusted = trust_config(path, env)
    document = json.loads(trusted.record.read_text(encoding="utf-8"))
    assert document["format"] == TRUST_FORMAT
    assert list(document["files"]) == [str(path.resolve())]
    assert is_trusted(path, env)
    path.write_text("[profiles.p]\n# changed\n", encoding="utf-8")
    assert not is_trusted(path, env)


def test_the_old_line_store_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trusted.txt of earlier versions may hold injected lines: it is not read, so its
    files are ignored (with the usual warning) until trusted again."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    folder = tmp_path / "work"
    folder.mkdir()
    config = folder / "batchops.toml"
    config.write_text("[profiles.p]\n", encoding="utf-8")
    digest = hashlib.sha256(config.read_bytes()).hexdigest()
    old = trust_store_path(env).with_name("trusted.txt")
    old.parent.mkdir(parents=True)
    old.write_text(f"{digest} {config.resolve()}\n", encoding="utf-8")
    monkeypatch.chdir(folder)
    found, warnings = find_config(None, env)
    assert found is None
    assert any("batchops config trust" in w for w in warnings)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"format": "something-else", "files": {}}',
        json.dumps({"format": TRUST_FORMAT, "files": {"/a\n" + "0" * 64 + " /evil": "0" * 64}}),
        json.dumps({"format": TRUST_FORMAT, "files": {"/a": "not-a-digest"}}),
    ],
)
def test_an_unreadable_store_is_empty_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    """A store batchops did not write trusts nothing; the warning says which file and
    why, and the next ``trust`` replaces it (and says so)."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    store = trust_store_path(env)
    store.parent.mkdir(parents=True)
    store.write_text(content, encoding="utf-8")
    assert read_store(env).files == {}
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "batchops.toml").write_text("[profiles.p]\n", encoding="utf-8")
    monkeypatch.chdir(folder)
    found, warnings = find_config(None, env)
    assert found is None
    assert any(str(store) in w and "taken as empty" in w for w in warnings)
    trusted = trust_config(folder / "batchops.toml", env)
    assert trusted.replaced_problem is not None
    assert is_trusted(folder / "batchops.toml", env)
