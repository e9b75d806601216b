import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum

from dedup.exports import write_matches
from dedup.models import Pair, Video


def _cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU-seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime


class Command(BaseCommand):
    help = "Run the development benchmark end to end: ingest --sync, export_matches, evaluate, throughput."

    def add_arguments(self, parser):
        parser.add_argument(
            "bench_dir", type=Path, help="Output folder of make_bench.py (videos/, manifest.csv)."
        )
        parser.add_argument(
            "--evaluator", type=Path, required=True, help="Path to ../shared/bench/evaluate.py"
        )
        parser.add_argument("--workers", type=int, default=None)
        parser.add_argument("--results", type=Path, default=None, help="Where to write the results CSV.")

    def handle(
        self, *args, bench_dir: Path, evaluator: Path, workers: int | None, results: Path | None, **options
    ):
        videos_dir = bench_dir / "videos"
        manifest = bench_dir / "manifest.csv"
        if not manifest.exists():
            raise CommandError(f"{manifest} not found: run make_bench.py first")
        results = results or bench_dir / "astradup_results.csv"
        call_command("migrate", verbosity=0)
        extra = ["--workers", str(workers)] if workers else []
        wall0, cpu0 = time.monotonic(), _cpu_seconds()
        call_command("ingest", str(videos_dir), "--sync", *extra)
        (user1, sys1), (user0, sys0) = _cpu_seconds(), cpu0
        wall, user, system = time.monotonic() - wall0, user1 - user0, sys1 - sys0
        cpu = user + system
        with open(results, "w", newline="") as fh:
            rows = write_matches(fh, fmt="csv")
        report = subprocess.run(
            [
                sys.executable,
                str(evaluator),
                "--manifest",
                str(manifest),
                "--results",
                str(results),
                "--show-errors",
                "10",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ready = Video.objects.filter(status=Video.Status.READY)
        n = ready.count()
        minutes = (ready.aggregate(s=Sum("duration"))["s"] or 0.0) / 60
        stages: dict[str, float] = {}
        for timings in ready.values_list("timings", flat=True):
            for stage, seconds in (timings or {}).items():
                stages[stage] = stages.get(stage, 0.0) + seconds
        self.stdout.write(report)
        self.stdout.write(f"results: {results} ({rows} rows, {Pair.objects.count()} scored pairs)")
        self.stdout.write(
            f"throughput: {n} videos, {minutes:.1f} min of video in {wall:.0f} s wall, {cpu:.0f} CPU-s "
            f"-> {n / wall * 3600:.0f} videos/hour, {cpu / max(minutes, 1e-9):.1f} CPU-s per minute of video "
            f"({user:.0f} s user, {system:.0f} s system)"
        )
        per_stage = {k: round(v / max(minutes, 1e-9), 2) for k, v in sorted(stages.items())}
        self.stdout.write(
            f"extraction CPU-s per minute of video, by stage (worker side): {json.dumps(per_stage)}"
        )
