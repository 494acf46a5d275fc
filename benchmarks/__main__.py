"""``python -m benchmarks``: the bench of :mod:`benchmarks.bench`."""

import sys

from benchmarks.bench import main

sys.exit(main())
