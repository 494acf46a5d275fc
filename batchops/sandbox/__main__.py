"""``python -m batchops.sandbox``: the one ``sandbox`` command of :mod:`batchops.cli.main`.

The stand-in itself imports nothing of batchops; this entry point is the single
exception, so both ways of starting it take the same flags.
"""

from batchops.cli import sandbox

sandbox(prog_name="python -m batchops.sandbox")
