"""``python -m batchops`` runs the CLI."""

from batchops.cli import entry

entry()
