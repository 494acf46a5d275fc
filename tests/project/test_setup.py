"""The README's set-up, as a new user runs it: its first command in a fresh copy of the
project, with a fresh virtual environment made by ``python3 -m venv``.

The copy holds the files git tracks (and new ones not yet added), as a fresh clone
would, so uncommitted edits are tested too. ``python3`` is the interpreter running the
tests (its base installation, not this virtual environment), or ``README_PYTHON3`` when
set: CI uses that to try the command on other Pythons. The command installs from the
package index, so this test is slow (about a minute, mostly pip; pip's cache keeps the
downloads out of the repeat runs) and is marked ``slow``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """The command lines of the README's first ``sh`` block (its set-up commands)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no ```sh block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def _fresh_copy(dest: Path) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to copy as a fresh clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def _python3() -> str:
    chosen = os.environ.get("README_PYTHON3")
    if chosen:
        return chosen
    base = getattr(sys, "_base_executable", sys.executable)
    return str(Path(base).resolve())


def test_readme_commands_are_what_ci_runs() -> None:
    """.ci/run installs and tests with the README's second command, verbatim."""
    commands = readme_commands()
    assert len(commands) >= 2
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for part in commands[1].split("&&"):
        assert part.strip() in ci, f"{part.strip()!r} is not run by .ci/run"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_first_command_works_in_a_fresh_clone(tmp_path: Path) -> None:
    """The first command, extracted from README.md, run verbatim by a shell in a fresh
    copy: it makes .venv, installs batchops and runs the sample against the stand-in,
    which writes the sample report (exit 1: the sample holds a failing row on purpose)."""
    command = readme_commands()[0]
    assert command.startswith("python3 -m venv .venv && "), command
    clone = _fresh_copy(tmp_path / "clone")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(_python3())
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
        and not k.startswith(("BK_", "BATCHOPS_", "PYENV_"))
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "9 rows: 6 success, 1 failed, 2 invalid" in done.stdout, done.stdout[-3000:]
    report = clone / "samples" / "tickets.report.csv"
    assert report.exists()
    assert report.read_text(encoding="utf-8-sig").count("\n") == 10
    assert (clone / ".venv" / "pyvenv.cfg").exists()


@pytest.mark.slow
def test_the_wheel_carries_the_compiled_catalogs(tmp_path: Path) -> None:
    """A wheel (what ``pipx install .`` and ``pip install .`` install) holds both
    languages' compiled catalogs: without them an installed batchops speaks only English."""
    import zipfile

    clone = _fresh_copy(tmp_path / "clone")
    out = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(clone)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = out.glob("batchops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for locale in ("zh_CN", "en"):
        assert f"batchops/i18n/locale/{locale}/LC_MESSAGES/batchops.mo" in names, sorted(names)
