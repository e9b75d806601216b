import os
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from dedup import workers as worker_entry
from dedup.models import Video
from dedup.progress import NO_WORKER, ingest_progress, worker_clusters
from dedup.services.claims import claims_recover
from dedup.services.db import statistics_refresh
from dedup.services.groups import groups_refresh
from dedup.services.ingest import shown_path, video_ingest, videos_under
from dedup.services.scoring import video_match


class Command(BaseCommand):
    help = "Record every video under the given files/folders and extract (and match) them."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Extract and match in this process (no worker cluster); return when done.",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Without --sync: wait until the worker cluster has extracted and matched every video "
            "(a progress bar on a terminal).",
        )
        parser.add_argument(
            "--poll",
            type=float,
            default=1.0,
            help="Seconds between looks at the workers' progress with --wait.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=os.cpu_count() or 1,
            help="Extraction processes with --sync (default: one per CPU core).",
        )

    def handle(
        self,
        *args,
        paths: list[Path],
        sync: bool,
        wait: bool,
        poll: float,
        workers: int,
        verbosity: int,
        **options,
    ):
        missing = [shown_path(p) for p in paths if not os.path.lexists(p)]
        if missing:
            raise CommandError(f"no such file or folder: {', '.join(missing)}")
        result = video_ingest(paths=paths, enqueue=not sync)
        self.stdout.write(
            f"{len(result.created)} new, {result.existing} already known, {result.identical} byte-identical copies"
            + (f", {len(result.skipped)} skipped" if result.skipped else "")
        )
        for line in result.skipped:
            self.stdout.write(f"  skipped: {line}")
        if not sync:
            self.stdout.write(
                "extraction enqueued; a running worker cluster (manage.py qcluster) processes it"
            )
            if wait:
                videos = videos_under(paths)
                try:
                    self._wait(videos, poll=poll)
                except KeyboardInterrupt:
                    self.stderr.write("stopped waiting; the workers go on with what is queued")
                self._report(videos)
            return
        videos = videos_under(paths)
        # left in `processing` by an earlier run or worker that died: tried again now (or failed at
        # the attempt limit), not when the claim times out; live claims are left to their process
        claims_recover(videos=videos, enqueue=False)
        todo = list(videos.filter(status=Video.Status.PENDING).order_by("pk").values_list("pk", flat=True))
        try:
            worker_entry.extract_many(todo, workers=workers, progress=self._progress)
        except worker_entry.ExtractionAborted as exc:
            raise CommandError(f"extraction stopped (run the command again to go on):\n{exc}") from exc
        if len(todo) >= 100:
            # a large batch changes the tables' size a lot: without fresh statistics the planner may
            # scan the frame table per query frame instead of walking the HNSW index
            statistics_refresh()
        to_match = list(
            videos.filter(status=Video.Status.READY, matched_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for video_id in self._progress(to_match, "match"):
            video_match(video_id=video_id, refresh_groups=False)
        groups_refresh()
        self._report(videos)

    def _report(self, videos) -> None:
        ready = videos.filter(status=Video.Status.READY).count()
        failed = videos.filter(status=Video.Status.FAILED).order_by("pk")
        busy = videos.filter(status__in=[Video.Status.PENDING, Video.Status.PROCESSING]).order_by("pk")
        line = f"{ready} ready, {failed.count()} failed"
        if busy:
            line += f", {busy.count()} not done"
        self.stdout.write(line)
        for video in failed:
            self.stdout.write(f"  failed: {video.rel_path}: {video.error}")
        now = timezone.now()
        for video in busy:
            if video.status == Video.Status.PROCESSING:
                seen = video.heartbeat_at or video.started_at
                ago = f", last heard from {round((now - seen).total_seconds())} s ago" if seen else ""
                self.stdout.write(
                    f"  still processing: {video.rel_path}: claimed by {video.claimed_by or '?'}{ago}"
                )
            else:
                self.stdout.write(f"  pending: {video.rel_path}{': ' + video.error if video.error else ''}")

    def _wait(self, videos, *, poll: float) -> None:
        """Until every video is failed, or ready and matched, by the worker cluster: a progress bar
        on a terminal, and a warning (once each time it happens) while nothing is working on them."""
        from tqdm import tqdm

        finished = Q(status=Video.Status.FAILED) | Q(status=Video.Status.READY, matched_at__isnull=False)
        total = videos.count()
        bar = tqdm(total=total, desc="workers", unit="video", disable=not sys.stderr.isatty())
        warned = False
        try:
            while True:
                done = videos.filter(finished).count()
                bar.update(done - bar.n)
                if done >= total:
                    return
                progress = ingest_progress(videos=videos)
                bar.set_postfix(
                    queued=progress.queued,
                    processing=progress.processing,
                    failed=progress.failed,
                    refresh=False,
                )
                # matching is queued work too: a cluster is needed until the last video is matched
                idle = not progress.live_claims and not worker_clusters()
                if idle and not warned:
                    bar.clear()
                    self.stderr.write(f"{NO_WORKER}; waiting (Ctrl-C stops waiting, the work stays queued).")
                warned = idle
                time.sleep(poll)
        finally:
            bar.close()

    def _progress(self, items, desc):
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit="video", disable=not sys.stderr.isatty())
