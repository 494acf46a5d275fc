"""batchops' benchmarks, kept out of the runtime package (the wheel carries ``batchops`` only).

``python -m benchmarks`` (from the project's folder) is the full bench, :mod:`benchmarks.bench`;
``python -m benchmarks.report_time`` times the XLSX report alone. Both need the ``test``
extra (openpyxl is a dependency anyway; psutil and friends come with the extra).
"""
