"""batchops: bulk operations on BlueKing ITSM tickets from a CSV or Excel file.

The Python API mirrors the CLI::

    from batchops import run_batch
    summary = run_batch("tickets.xlsx", base_url="https://paas.example.com")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = ["__version__", "plan_batch", "run_batch"]

if TYPE_CHECKING:
    from .api import plan_batch, run_batch


def __getattr__(name: str) -> Any:
    # Importing the API pulls in pandas and aiohttp; `batchops --version` should not pay that.
    if name in {"run_batch", "plan_batch"}:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
