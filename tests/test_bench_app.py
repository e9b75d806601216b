"""The benchmarks' commands are an app of their own, installed only when ASTRADUP_BENCH asks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH_COMMANDS = {
    "bench",
    "bench_api_import",
    "bench_calibrate",
    "bench_embed",
    "bench_index",
    "bench_perf",
    "bench_projection",
    "bench_review",
}


def _commands(tmp_path: Path, **env: str) -> set[str]:
    """`manage.py help --commands` in a fresh process, as an install with `env` sees it."""
    environ = {k: v for k, v in os.environ.items() if k not in ("ASTRADUP_BENCH", "DJANGO_SETTINGS_MODULE")}
    # a database URL that is never connected to: help reads no table, and no embedded server starts
    environ |= {"ASTRADUP_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none"}
    done = subprocess.run(
        [sys.executable, "manage.py", "help", "--commands"],
        cwd=ROOT,
        env=environ | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("value", [None, "0"])
def test_a_default_install_lists_no_benchmark_command(tmp_path, value):
    commands = _commands(tmp_path, **({} if value is None else {"ASTRADUP_BENCH": value}))
    assert "ingest" in commands and "calibrate" in commands
    assert not {c for c in commands if c.startswith("bench")}


def test_asking_for_the_benchmarks_lists_every_one_of_them(tmp_path):
    commands = _commands(tmp_path, ASTRADUP_BENCH="1")
    assert BENCH_COMMANDS <= commands
    assert "ingest" in commands


def test_every_make_bench_target_installs_the_benchmarks():
    targets = ["bench", "bench-perf", "bench-embed", "bench-gpu", "bench-index", "bench-calibrate"]
    targets += ["bench-review", "bench-api", "bench-hard"]
    for target in targets:
        done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.replace("\\\n", " ").splitlines()  # continued lines joined
        runs = [line for line in lines if "manage.py" in line or "gpu_bench.py" in line]
        assert runs, (target, done.stdout)
        assert all("ASTRADUP_BENCH=1" in line for line in runs), (target, runs)
