import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django_q.models import OrmQ
from rest_framework.authtoken.models import Token

from bench.scrape import Sample, parse, queue_table, stage_table
from dedup.models import Video


class Command(BaseCommand):
    help = (
        "Bulk import of a benchmark folder through the REST API, processed by a real worker cluster; "
        "writes the export and runs the evaluator. Use a fresh ASTRADUP_DATA_DIR whose import roots "
        "(ASTRADUP_IMPORT_ROOTS) contain the folder. While the workers drain the import, /metrics is "
        "scraped with ASTRADUP_METRICS_TOKEN as a monitoring system would: the queue, the videos by "
        "status and, at the end, the extraction stages' CPU seconds."
    )

    def add_arguments(self, parser):
        parser.add_argument("bench_dir", type=Path)
        parser.add_argument("--evaluator", type=Path, required=True)
        parser.add_argument("--port", type=int, default=8021)
        parser.add_argument("--timeout", type=int, default=1800)
        parser.add_argument(
            "--scrape-every", type=float, default=10.0, help="Seconds between /metrics scrapes."
        )

    def handle(
        self,
        *args,
        bench_dir: Path,
        evaluator: Path,
        port: int,
        timeout: int,
        scrape_every: float,
        **options,
    ):
        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
        if Video.objects.exists():
            raise CommandError("the library is not empty: use a fresh ASTRADUP_DATA_DIR")
        user, _ = User.objects.get_or_create(username="bench-integrator")
        user.groups.add(Group.objects.get_or_create(name="moderator")[0])
        token = Token.objects.get_or_create(user=user)[0].key
        base = f"http://127.0.0.1:{port}"
        # /metrics answers this token only (as in production), read by the server at start-up
        metrics_token = os.environ.get("ASTRADUP_METRICS_TOKEN") or secrets.token_urlsafe(24)
        procs = [
            subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                env={**os.environ, "ASTRADUP_METRICS_TOKEN": metrics_token},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            ),
            subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            ),
        ]
        try:
            self._wait_for(f"{base}/health")
            start = time.monotonic()
            body = json.dumps({"paths": [str((bench_dir / "videos").absolute())]}).encode()
            created = json.loads(self._call(f"{base}/api/v1/import", token, body))["created"]
            samples: list[Sample] = []
            next_scrape = 0.0
            while True:
                now = time.monotonic() - start
                if now >= next_scrape:
                    samples.append(parse(self._scrape(base, metrics_token), at=now))
                    next_scrape = now + scrape_every
                busy = (
                    Video.objects.exclude(status__in=["ready", "failed"]).count()
                    + Video.objects.filter(status="ready", matched_at__isnull=True).count()
                    + OrmQ.objects.count()
                )
                if busy == 0:
                    break
                if time.monotonic() - start > timeout:
                    raise CommandError("the workers did not finish in time")
                time.sleep(2)
            wall = time.monotonic() - start
            samples.append(parse(self._scrape(base, metrics_token), at=wall))  # drained
            results = bench_dir / "astradup_api_results.csv"
            results.write_bytes(self._call(f"{base}/api/v1/export?as=csv", token))
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:  # a cluster mid-shutdown may linger; the work is done
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        report = subprocess.run(
            [
                sys.executable,
                str(evaluator),
                "--manifest",
                str(bench_dir / "manifest.csv"),
                "--results",
                str(results),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        self.stdout.write(report)
        self.stdout.write("/metrics during the import (queue: tasks waiting; in fl.: taken by a worker)")
        self.stdout.write(queue_table(samples))
        self.stdout.write("extraction stages at the end (astradup_extraction_stage_seconds sum / count)")
        self.stdout.write(stage_table(samples[-1]))
        self.stdout.write(
            f"{len(created)} videos imported through the API and processed by the workers in {wall:.0f} s wall"
        )

    def _call(self, url: str, token: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(
            url, data=body, headers={"Authorization": f"Token {token}", "Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read()

    def _scrape(self, base: str, metrics_token: str) -> str:
        request = urllib.request.Request(
            f"{base}/metrics", headers={"Authorization": f"Bearer {metrics_token}"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read().decode()

    def _wait_for(self, url: str) -> None:
        for _ in range(60):
            try:
                urllib.request.urlopen(url, timeout=5).read()
                return
            except OSError:
                time.sleep(1)
        raise CommandError("the web server did not start")
