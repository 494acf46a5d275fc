"""The house's shape: wings as folders with a face, no circles, one home per rule.

Read from the sources with :mod:`ast` (type-only imports included), so a rule that
drifts back into a second module fails here, not in a review.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "batchops"
TESTS = Path(__file__).resolve().parents[1]
STAND_IN = PACKAGE / "sandbox"


def _modules() -> dict[str, Path]:
    """Every module of batchops but the stand-in's, by dotted name."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if STAND_IN in path.parents or "__pycache__" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()
WINGS = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


def _imports(name: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in ``path``, at any depth."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names]


def _graph() -> dict[str, set[str]]:
    """Module → the batchops modules it imports (a ``from pkg import mod`` names mod)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        deps = set()
        for target, names in _imports(name, path):
            for each in [f"{target}.{n}" for n in names] or [target]:
                if each in MODULES:
                    deps.add(each)
                    break
            else:
                if target in MODULES:
                    deps.add(target)
        deps.discard(name)
        graph[name] = deps
    return graph


def _wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in WINGS) else None


def test_the_package_shows_its_wings() -> None:
    """At most 12 modules directly in batchops/, at least 5 wings, each with a face."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
    assert len([w for w in WINGS if w != "sandbox"]) >= 5, WINGS
    for wing in WINGS:
        face = ast.parse((PACKAGE / wing / "__init__.py").read_text(encoding="utf-8"))
        assert ast.get_docstring(face), f"{wing}/__init__.py says nothing of what it owns"
        declared = [
            n
            for n in face.body
            if isinstance(n, ast.Assign)
            and any(getattr(t, "id", "") == "__all__" for t in n.targets)
        ]
        assert declared, f"{wing}/__init__.py has no explicit __all__"


def test_other_wings_import_only_a_face() -> None:
    """A module imports another wing's face, never a module behind it."""
    behind = []
    for name, path in MODULES.items():
        mine = _wing(name)
        for target, _names in _imports(name, path):
            theirs = _wing(target) if target.startswith("batchops.") else None
            if theirs and theirs != mine and target != f"batchops.{theirs}":
                behind.append(f"{name} imports {target}")
    assert not behind, behind


def test_no_import_goes_in_a_circle() -> None:
    """Type-only imports included: a type lives where both sides can import it."""
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # A face importing its own modules is how a face works, not a circle.
    real = [c for c in cycles if not all(_wing(m) == _wing(c[0]) for m in c) or len(c) > 2]
    faces = {f"batchops.{w}" for w in WINGS}
    real = [c for c in real if not (set(c) & faces)]
    assert not real, real


def _origins() -> dict[tuple[str, str], str]:
    """(module, name) → the module that defines the name, through a face's re-exports."""
    direct: dict[tuple[str, str], str] = {}
    for name, path in MODULES.items():
        for target, names in _imports(name, path):
            for each in names:
                if target in MODULES and f"{target}.{each}" not in MODULES:
                    direct[(name, each)] = target

    def origin(module: str, name: str) -> str:
        seen = {module}
        while (module, name) in direct and direct[(module, name)] not in seen:
            module = direct[(module, name)]
            seen.add(module)
        return module

    return {key: origin(*key) for key in direct}


def test_tests_mirror_the_wings() -> None:
    """A test folder per wing, and at least 90 % of the modules imported by some test
    (directly, or a name of theirs through a face)."""
    folders = {p.name for p in TESTS.iterdir() if (p / "__init__.py").is_file()}
    assert set(WINGS) <= folders, sorted(set(WINGS) - folders)
    origins = _origins()
    imported: set[str] = set()
    for path in TESTS.rglob("*.py"):
        for target, names in _imports("tests.x", path):
            imported.add(target)
            imported.update(f"{target}.{n}" for n in names)
            imported.update(origins.get((target, n), target) for n in names)
    modules = [m for m in MODULES if m.rsplit(".", 1)[-1] not in {"__main__"}]
    untested = sorted(m for m in modules if m not in imported)
    assert len(untested) <= len(modules) // 10, "\n".join(untested)


def _files_with(pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return sorted(
        str(path.relative_to(PACKAGE))
        for path in MODULES.values()
        if regex.search(path.read_text(encoding="utf-8"))
    )


@pytest.mark.parametrize(
    ("rule", "pattern", "home"),
    [
        ("the secret mask", r"\"\*\*\*\"|'\*\*\*'", "secrets.py"),
        ("aiohttp's ClientSession", r"ClientSession\(", "itsm/client.py"),
        # The one printer escapes what came from outside (cli/console.py says which).
        ("the terminal printer", r"click\.s?echo\(", "cli/console.py"),
        ("the one wait a stop ends", r"asyncio\.sleep\(", "stops.py"),
        (
            "exit-code numbers",
            # A constant, an attribute or keyword, a call, a property's return, and the
            # table's own members (named like the constants that were spread around).
            r"EXIT_\w+ *= *\d|exit_code *= *\d|exit\(\d|def exit_code\(.*\n.*return \d"
            r"|(?:INTERRUPTED|STOPPED)\w* *= *\d",
            "exits.py",
        ),
        (
            "process-wide changes",
            r"gc\.set_threshold|setrlimit|os\._exit|signal\.signal\(|os\.umask|pthread_sigmask",
            "process.py",
        ),
    ],
)
def test_one_home_per_rule(rule: str, pattern: str, home: str) -> None:
    """Each rule is written in exactly one module."""
    assert _files_with(pattern) == [home], f"{rule} is not in one home"


def test_no_module_over_600_lines_no_function_over_60() -> None:
    long_modules = []
    long_functions = []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 600:
            long_modules.append(name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long_functions.append(f"{name}.{node.name} ({length})")
    assert not long_modules, long_modules
    assert not long_functions, long_functions
