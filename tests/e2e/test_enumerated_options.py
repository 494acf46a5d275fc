"""End to end: every option that takes a word from a fixed set refuses an unknown one
with exit 2 and one line naming the valid words, before anything is written or sent
(issue 22, part 6)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchops.sandbox import SandboxThread

from ..helpers import creds_env, rows_for, run_cli, tickets, total_requests, write_csv

ALL_STATUSES = "success, failed, invalid, skipped, unknown, pending"

CASES = [
    (["run", "{src}", "--gateway", "apigww"], "'esb', 'apigw'"),
    (["run", "{src}", "--notify-on", "sometimes"], "'problems', 'always'"),
    (["run", "{src}", "--only", "faild"], f"--only takes {ALL_STATUSES}, not 'faild'"),
    (["run", "{src}", "--only", "faild"], "did you mean failed?"),
    (["run", "{src}", "--max-failures", "lots"], "a count (10), a percentage (5%) or 'off'"),
    (["run", "{src}", "--lang", "fr"], "use zh or en"),
    (["plan", "{src}", "--gateway", "ESB2"], "'esb', 'apigw'"),
    (["select", "--creator", "x", "-o", "{out}", "--gateway", "x"], "'esb', 'apigw'"),
    (["select", "--creator", "x", "-o", "{out}", "--action", "SUSPNED"], "did you mean SUSPEND?"),
    (["select", "--status", "RUNNNING", "-o", "{out}"], "did you mean RUNNING?"),
    (["select", "--status", "RUNNING", "-o", "{out}", "--lang", "ja"], "use zh or en"),
]


@pytest.mark.parametrize(("words", "names"), CASES, ids=[" ".join(w[2:]) for w, _n in CASES])
def test_an_unknown_word_is_refused_before_anything_is_written_or_sent(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, words: list[str], names: str
) -> None:
    server = stand_in(tickets("EN", 2))
    src = write_csv(tmp_path / "t.csv", rows_for(["EN0", "EN1"]))
    args = [w.format(src=src, out=tmp_path / "s.csv") for w in words]
    out = run_cli(args, creds_env(server.url))
    assert out.exit_code == 2, out.stdout + out.stderr
    assert names in out.stderr
    assert [line for line in out.stderr.splitlines() if line.startswith("Error:")] != []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]  # nothing written
    assert total_requests(server) == 0
    assert {t.status for t in server.state.tickets.values()} == {"RUNNING"}


def test_a_profiles_words_are_held_to_the_same_sets(tmp_path: Path) -> None:
    """gateway, notify_on and lang in a profile are refused like their flags."""
    for key, value, names in (
        ("gateway", "apigww", "'esb' or 'apigw'"),
        ("notify_on", "sometimes", "'problems' or 'always'"),
        ("lang", "fr", "'zh' or 'en'"),
    ):
        config = tmp_path / f"{key}.toml"
        config.write_text(f'[profiles.p]\n{key} = "{value}"\n', encoding="utf-8")
        out = run_cli(["config", "show", "--config", str(config), "--profile", "p"])
        assert out.exit_code == 2, key
        assert names in out.stderr, out.stderr
