"""Benchmarks of AstraDup: management commands that measure the product (`make bench*`).

Installed only when ASTRADUP_BENCH is set (every `make bench*` target sets it), so that a
production `manage.py help` lists product commands alone. They call the product's public
functions: a benchmark measures the product's own code, not a copy of it.
"""
