"""Tests of the batchops.sandbox package as a whole: it stands apart from the client.

The package's modules have test files of their own: ``test_sandbox_<module>.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from batchops import sandbox as sandbox_module


def test_sandbox_imports_nothing_from_batchops() -> None:
    """The stand-in must not share code (or mistakes) with the client: its modules import
    only each other (``__main__``, the ``python -m`` entry to the CLI's command, aside)."""
    package = Path(sandbox_module.__file__).parent
    for source in sorted(package.glob("*.py")):
        if source.name == "__main__.py":
            continue
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level in (0, 1), source.name
                assert not (node.module or "").startswith("batchops"), source.name
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith("batchops") for alias in node.names)
