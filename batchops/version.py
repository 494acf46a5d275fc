"""batchops' version: the one place it is written (the package metadata reads it here)."""

__version__ = "0.1.0"
