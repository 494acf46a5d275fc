"""batchops: bulk operations on BlueKing ITSM tickets from a CSV or Excel file.

The Python API mirrors the CLI, its options grouped in frozen records::

    from batchops import RunOptions, run_batch
    summary = run_batch("tickets.xlsx", RunOptions(base_url="https://paas.example.com"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .version import __version__

__all__ = [
    "Files",
    "Hooks",
    "RunChoices",
    "RunOptions",
    "__version__",
    "plan_batch",
    "run_batch",
]

if TYPE_CHECKING:
    from .api import Files, Hooks, RunChoices, RunOptions, plan_batch, run_batch

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> object:
    # Importing the API pulls in pandas and aiohttp; `batchops --version` should not pay that.
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
