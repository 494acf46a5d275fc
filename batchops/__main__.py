"""``python -m batchops`` runs the CLI."""

from .cli import main

main()
