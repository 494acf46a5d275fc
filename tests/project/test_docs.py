"""The docs stay honest: every command and option the README names exists, every
command's help has an example, and the README's Python example runs as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import batchops
from batchops.exits import Exit

from ..helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _readme_words() -> tuple[set[str], set[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = set(
        re.findall(
            r"batchops (run|plan|sandbox|report|config show|config trust|select|undo|status)\b",
            text,
        )
    )
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text))
    return commands, options


def test_every_command_and_option_in_the_readme_exists() -> None:
    """Each command and option the README names appears in some --help."""
    commands, options = _readme_words()
    assert {
        "run",
        "plan",
        "sandbox",
        "report",
        "select",
        "undo",
        "status",
        "config trust",
    } <= commands
    helps = run_cli(["--help"]).stdout
    for command in [
        "run",
        "plan",
        "sandbox",
        "report",
        "config show",
        "config trust",
        "select",
        "undo",
        "status",
    ]:
        helps += run_cli([*command.split(), "--help"]).stdout
    # The README also names the benchmark's options (python -m benchmarks, from the
    # project's folder: the bench is not installed with the package).
    import subprocess

    helps += subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for command in commands:
        assert command.split()[0] in helps
    missing = sorted(o for o in options if o not in helps)
    assert not missing, f"README names options no --help knows: {missing}"


def test_every_command_help_has_an_example() -> None:
    """Every command's --help teaches by example; --version answers."""
    commands = ["run", "plan", "sandbox", "report", "config show", "config trust", "config"]
    for command in [*commands, "select", "undo", "status"]:
        out = run_cli([*command.split(), "--help"])
        assert out.exit_code == 0
        assert "Example" in out.stdout, command
    version = run_cli(["--version"])
    assert version.stdout.strip() == f"batchops, version {batchops.__version__}"


def test_docs_show_cron_and_airflow() -> None:
    """docs/scheduled-runs.md shows a cron line and an Airflow task calling the Python API."""
    text = (ROOT / "docs" / "scheduled-runs.md").read_text(encoding="utf-8")
    assert re.search(r"^\s*\d+ \d+ \* \* \* .*batchops run", text, re.M)
    assert "run_batch(" in text
    assert "PythonOperator" in text or "@task" in text


def test_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    """The README's Python API example, run in a copy of the project's samples folder,
    sends the sample to the embedded stand-in and prints its counts and exit code."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API") :]
    section = section[: section.index("\n## ", 1)]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the Python API section has no python example"
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    out = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert out.returncode == 0, out.stderr
    assert "'success': 6" in out.stdout and out.stdout.rstrip().endswith(" 1")
    assert (tmp_path / "samples" / "tickets.report.csv").is_file()
    assert (tmp_path / "samples" / "tickets.todo.csv").is_file()


def test_the_readme_layout_names_every_module_and_nothing_that_is_gone() -> None:
    """Every wing (as ``wing/``) and every module, top-level or in a wing, is named in the
    README's Layout, and nothing it names is gone."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_0-9]+/?)`", layout))
    package = Path(batchops.__file__).parent
    wings = {p.name + "/" for p in package.iterdir() if (p / "__init__.py").is_file()}
    modules = {
        p.stem
        for p in package.rglob("*.py")
        if p.stem not in {"__init__", "__main__"} and p.parent.name != "sandbox"
    }
    missing = (modules | wings) - named
    assert not missing, f"README's Layout does not name {sorted(missing)}"
    other_names = {"run_batch", "plan_batch", "report_from_checkpoint"}
    other_names |= {"__all__", "benchmarks/", "_", "ngettext"}
    gone = named - modules - wings - other_names
    assert not gone, f"README's Layout names modules that do not exist: {sorted(gone)}"


def test_the_readme_exit_codes_are_the_table() -> None:
    """The README's "Exit codes" table lists every code of :class:`batchops.exits.Exit`, in
    order, with its long meaning word for word, and no other code."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.*) \|$", section, re.M)
    assert rows == [(str(code.value), code.detail) for code in Exit]


def _code_lines(path: Path) -> list[str]:
    """Every line of ``path``'s fenced code blocks, without its comment and blanks."""
    text = path.read_text(encoding="utf-8")
    lines: list[str] = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            line = re.sub(r"(^|\s)#\s.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


def test_the_chinese_readme_agrees_with_the_readme() -> None:
    """README.zh-CN.md (linked from the top of README.md) has the same set-up commands,
    only commands README.md has too, and the exit codes of :class:`batchops.exits.Exit`."""
    readme, chinese = ROOT / "README.md", ROOT / "README.zh-CN.md"
    top = readme.read_text(encoding="utf-8").split("```", 1)[0]
    assert "[中文说明](README.zh-CN.md)" in top

    def setup(path: Path) -> list[str]:
        block = re.search(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
        assert block, f"{path.name} has no ```sh block"
        return [line.strip() for line in block.group(1).splitlines() if line.strip()]

    assert setup(chinese) == setup(readme)
    english_lines = set(_code_lines(readme))
    commands = [line for line in _code_lines(chinese) if re.search(r"(^|\s|/)batchops ", line)]
    assert len(commands) >= 8, commands
    for step in ("select", "plan", "run", "undo", "status"):
        assert any(f"batchops {step} " in line for line in commands), step
    missing = [line for line in commands if line not in english_lines]
    assert not missing, f"README.zh-CN.md has commands README.md does not: {missing}"
    text = chinese.read_text(encoding="utf-8")
    section = text.split("## 退出码", 1)[1].split("\n## ", 1)[0]
    codes = re.findall(r"^\| (\d+) \| .* \|$", section, re.M)
    assert codes == [str(code.value) for code in Exit]
