"""The AstraDup Django project.

Set before numpy loads (this package is imported with the settings, before any app): OpenBLAS's
threads. Parallelism here is one process per core (the extraction workers, the qcluster), so
OpenBLAS's own threads only oversubscribe the cores, and between two calls they spin: with two
workers on two cores, the MFCC's and the scorer's matrix products cost twice their CPU time
(`make bench-perf`, docs/benchmarks.md). An `OPENBLAS_NUM_THREADS` already set is kept.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
