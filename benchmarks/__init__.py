"""batchops' benchmarks, kept out of the runtime package (the wheel carries ``batchops`` only).

``python -m benchmarks`` (from the project's folder) is the full bench, :mod:`benchmarks.bench`;
``python -m benchmarks.report_time`` times the XLSX report alone;
``python -m benchmarks.phases`` runs one command with its steps timed. The full bench needs
the ``bench`` extra (openpyxl, for pandas' XLSX reader it is compared with); the other two
need batchops only.
"""
