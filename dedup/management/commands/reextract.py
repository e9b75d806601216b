import os

from django.core.management.base import BaseCommand
from django.db import transaction

from dedup.models import Job, Video
from dedup.services.extraction import carry_forward_unchanged, pixel_aspects_refresh, stale_videos
from dedup.services.groups import groups_refresh
from dedup.services.ingest import enqueue_extraction
from dedup.services.jobs import job_progress, job_videos_follow, jobs_videos_refresh
from dedup.services.scoring import video_match
from dedup.workers import extract_many


class Command(BaseCommand):
    help = "Re-extract videos whose features are stale (feature version or backbone changed)."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Re-extract every video, stale or not.")
        parser.add_argument("--failed", action="store_true", help="Also retry failed videos.")
        parser.add_argument(
            "--sync", action="store_true", help="Work in this process instead of the workers."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=os.cpu_count() or 1,
            help="Extraction processes with --sync (default: one per CPU core).",
        )

    def handle(self, *args, all: bool, failed: bool, sync: bool, workers: int, **options):
        if not all:
            carried = carry_forward_unchanged()
            if carried:
                self.stdout.write(f"{carried} videos kept: re-extracting them would change nothing")
            read, anamorphic = pixel_aspects_refresh()
            if read:
                self.stdout.write(
                    f"{read} videos: pixel aspect read ({anamorphic} anamorphic, their pairs scored again)"
                )
        videos = Video.objects.all() if all else stale_videos()
        ids = set(videos.values_list("pk", flat=True))
        if failed:
            ids |= set(Video.objects.filter(status=Video.Status.FAILED).values_list("pk", flat=True))
        todo = sorted(ids)
        with transaction.atomic():
            Video.objects.filter(pk__in=ids).update(status=Video.Status.PENDING, matched_at=None, attempts=0)
            # the jobs page follows it (done when each video is failed, or ready and matched)
            job = job_videos_follow(
                kind=Job.Kind.REEXTRACT, video_ids=todo, params={"all": all, "failed": failed}
            )
            if not sync:
                transaction.on_commit(lambda: enqueue_extraction(todo))
        self.stdout.write(f"{len(ids)} videos to re-extract (job #{job.pk})")
        if sync:
            extract_many(todo, workers=workers, progress=self._progress(job.pk, len(todo)))
            for video_id in self._progress(job.pk, len(todo))(todo, "match"):
                video_match(video_id=video_id, refresh_groups=False)
            groups_refresh()
            jobs_videos_refresh(video_ids=todo)

    @staticmethod
    def _progress(job_id: int, total: int):
        """extract_many's progress (items, stage name): the job's message says how far this process is."""

        def follow(items, stage: str):
            for n, item in enumerate(items, 1):
                yield item
                done = n if stage == "match" else 0  # a video counts once it is matched too
                job_progress(job_id=job_id, done=done, total=total, message=f"{stage}: {n} of {total} videos")

        return follow
