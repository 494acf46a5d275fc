"""Every wing's face (``__init__.py``) exports exactly what its ``__all__`` says, each name
defined behind it, and the package's own face does the same (httpx keeps the same check)."""

from __future__ import annotations

import pkgutil
from types import ModuleType

import pytest

import batchops
from batchops import checkpoint, cli, commands, i18n, itsm, report, run, send, settings, sheet

FACES = {
    m.__name__: m
    for m in (checkpoint, cli, commands, i18n, itsm, report, run, send, settings, sheet)
}


def test_every_wing_is_checked_here() -> None:
    wings = {f"batchops.{m.name}" for m in pkgutil.iter_modules(batchops.__path__) if m.ispkg}
    assert wings - {"batchops.sandbox"} == set(FACES)


@pytest.mark.parametrize("face", sorted(FACES))
def test_a_face_exports_what_its_all_says(face: str) -> None:
    module: ModuleType = FACES[face]
    exported = list(module.__all__)
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{face} names {missing} in __all__ but has no such attribute"
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", face).startswith(face)
        and not isinstance(value, type(module))
    }
    assert public <= set(exported), f"{face} exposes {sorted(public - set(exported))} unlisted"


def test_the_package_face() -> None:
    """``batchops`` itself: the API records and functions, and the version, lazily."""
    for name in batchops.__all__:
        assert getattr(batchops, name) is not None
    assert batchops.__version__
