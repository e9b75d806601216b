"""How ingest is going: videos per status, the rate, and whether anything is working on them.

Read by the library's status bar (polled) and by `manage.py ingest --wait`."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from .models import Video

NO_WORKER = "No worker is running: start `manage.py qcluster`"


@dataclass(frozen=True)
class IngestProgress:
    queued: int
    processing: int
    ready: int
    failed: int
    per_minute: int  # videos that became ready in the last minute
    live_claims: int  # videos being extracted by a process that is still heard from
    clusters: int  # worker clusters reporting (django-q2 Stat)

    @property
    def busy(self) -> int:
        return self.queued + self.processing

    @property
    def done(self) -> int:
        return self.ready + self.failed

    @property
    def total(self) -> int:
        return self.busy + self.done

    @property
    def no_worker(self) -> bool:
        """Work is waiting and nothing is doing it: no cluster reports, and no claim has a recent
        heartbeat (`ingest --sync` extracts without a cluster, its claims beat)."""
        return self.busy > 0 and not self.clusters and not self.live_claims


def worker_clusters() -> int:
    """Worker clusters alive now: each saves its Stat every few seconds to the cache (the
    database cache here, so every process sees it), which forgets it seconds after it stops."""
    from django_q.status import Stat

    try:
        return len(Stat.get_all())
    except Exception:  # a broker or cache not reachable: no cluster can be counted on
        return 0


def ingest_progress(*, videos: QuerySet[Video] | None = None, now=None) -> IngestProgress:
    """Counts for `videos` (default: the whole library) in one aggregate query."""
    now = now or timezone.now()
    videos = Video.objects.all() if videos is None else videos
    fresh = now - timedelta(seconds=4 * settings.ASTRADUP["HEARTBEAT_SECONDS"])
    status = Video.Status
    row = videos.order_by().aggregate(
        queued=Count("pk", filter=Q(status=status.PENDING)),
        processing=Count("pk", filter=Q(status=status.PROCESSING)),
        ready=Count("pk", filter=Q(status=status.READY)),
        failed=Count("pk", filter=Q(status=status.FAILED)),
        per_minute=Count("pk", filter=Q(status=status.READY, finished_at__gte=now - timedelta(minutes=1))),
        live_claims=Count("pk", filter=Q(status=status.PROCESSING, heartbeat_at__gte=fresh)),
    )
    # the cache is asked only when it matters: an idle library needs no worker
    clusters = worker_clusters() if row["queued"] or row["processing"] else 0
    return IngestProgress(**row, clusters=clusters)
