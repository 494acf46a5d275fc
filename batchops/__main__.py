"""``python -m batchops`` runs the CLI."""

from .cli import entry

entry()
