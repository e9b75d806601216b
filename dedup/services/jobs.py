"""Background jobs (issue 28): created with what to do, enqueued after commit, claimed by one worker,
their progress written as they go, and finished or failed with the reason.

Two shapes of job:
- One task runs the work (`job_run`): a calibration, a re-score. The work is a function of the job
  and a progress callback; dedup's kinds name theirs in `dedup.tasks`, other apps register a
  runner by kind (`job_runner_register`, from their AppConfig.ready: review's calibration), so
  dedup never imports them.
- A job follows the extraction of a set of videos (`job_videos_follow`): an import, a re-extraction.
  Extraction is one task per video, so the job is counted from the videos themselves
  (`jobs_videos_refresh`, after each video's task), and counting twice does no harm."""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from ..models import Job, Video

logger = logging.getLogger(__name__)

# done(n, total, message): how far the work is; message empty keeps the last one
Progress = Callable[[int, int, str], None]
Runner = Callable[[Job, Progress], dict]

RUNNERS: dict[str, Runner] = {}

# a video is settled for its job when nothing more happens to it without a new request
SETTLED = Q(status=Video.Status.FAILED) | Q(status=Video.Status.READY, matched_at__isnull=False)


def acting_user(user):
    """The user to record as having acted: None for a command (no user) or an anonymous request."""
    return user if user is not None and user.is_authenticated else None


def job_runner_register(kind: str, runner: Runner) -> None:
    """The work of a job of `kind`, run by `dedup.tasks.run_job` in a worker."""
    RUNNERS[kind] = runner


def job_create(*, kind: str, user=None, params: dict | None = None, total: int = 0, message: str = "") -> Job:
    return Job.objects.create(
        kind=kind,
        params=params or {},
        total=total,
        message=message or "waiting for a worker",
        created_by=acting_user(user),
    )


def job_enqueue(job: Job, func: str = "dedup.tasks.run_job", *args) -> Job:
    """Hand the job to the workers once the row is committed: `func(*args, job_id=job.pk)`, through
    the configured broker (ORM or Redis); only ids go through the queue."""
    from django_q.tasks import async_task

    job_id = job.pk
    transaction.on_commit(
        lambda: async_task(func, *args, job_id=job_id, task_name=f"job-{job_id}", group=f"job-{job.kind}")
    )
    return job


def job_start(*, kind: str, user=None, params: dict | None = None) -> Job:
    """A job run by its registered runner, enqueued after commit."""
    if kind not in RUNNERS:
        raise LookupError(f"no runner for jobs of kind {kind!r}")
    return job_enqueue(job_create(kind=kind, user=user, params=params))


def _stale_before():
    # a running job whose task is re-delivered after `retry` was killed with its worker at `timeout`
    return timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"])


def job_claim(*, job_id: int) -> bool:
    """Mark the job running, once: a task delivered twice (a broker re-delivering it) finds it taken
    and does nothing; one whose worker was killed mid-run may take it again after the timeout."""
    now = timezone.now()
    return bool(
        Job.objects.filter(
            Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, updated_at__lt=_stale_before()),
            pk=job_id,
        ).update(status=Job.Status.RUNNING, started_at=now, updated_at=now, error="", message="running")
    )


def job_progress(*, job_id: int, done: int, total: int, message: str = "") -> None:
    fields: dict = {"done": done, "total": total, "updated_at": timezone.now()}
    if message:
        fields["message"] = message[:500]
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(**fields)


def job_finish(*, job_id: int, result: dict | None = None) -> None:
    now = timezone.now()
    Job.objects.filter(pk=job_id, status__in=Job.LIVE).update(
        status=Job.Status.DONE, finished_at=now, updated_at=now, result=result or {}
    )


def job_fail(*, job_id: int, error: str) -> None:
    now = timezone.now()
    Job.objects.filter(pk=job_id, status__in=Job.LIVE).update(
        status=Job.Status.FAILED, error=error, message="failed", finished_at=now, updated_at=now
    )


def job_run(*, job_id: int, work: Callable[[Job, Progress], dict] | None = None) -> dict:
    """Claim the job and run its work (default: the runner registered for its kind), recording
    progress, the result, or the error. An exception fails the job and is not raised: the worker
    goes on with its next task, and the page says why."""
    if not job_claim(job_id=job_id):
        return {"skipped": f"job {job_id} is not waiting"}
    job = Job.objects.get(pk=job_id)
    if work is None:
        work = RUNNERS.get(job.kind)
    if work is None:
        job_fail(job_id=job_id, error=f"no runner for jobs of kind {job.kind!r} in this process")
        return {"failed": job.kind}

    def progress(done: int, total: int, message: str = "") -> None:
        job_progress(job_id=job_id, done=done, total=total, message=message)

    try:
        result = work(job, progress)
    except Exception as exc:
        logger.exception("job %s (%s) failed", job_id, job.kind)
        job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        return {"failed": str(exc)}
    job_finish(job_id=job_id, result=result)  # the message stays the runner's last progress report
    return result


# ---------------------------------------------------------------- jobs that follow videos


def job_videos_follow(*, kind: str, video_ids: list[int], user=None, params: dict | None = None) -> Job:
    """A job that is done when each of these videos is failed, or ready and matched. Running from
    the start (the videos' tasks are its work); with no videos it is done at once."""
    job = job_create(kind=kind, user=user, params=params, total=len(video_ids))
    job.videos.add(*video_ids)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=now, updated_at=now)
    _refresh(job.pk)
    job.refresh_from_db()
    return job


def jobs_videos_refresh(*, video_ids: list[int] | None = None) -> None:
    """Count the running jobs that follow any of these videos (all running ones when None) again,
    and finish those whose videos are all settled. Called after each video's extraction or match."""
    jobs = Job.objects.filter(status=Job.Status.RUNNING, kind__in=[Job.Kind.IMPORT, Job.Kind.REEXTRACT])
    if video_ids is not None:
        jobs = jobs.filter(videos__in=video_ids)
    for job_id in set(jobs.values_list("pk", flat=True)):
        _refresh(job_id)


def _refresh(job_id: int) -> None:
    counts = Video.objects.filter(jobs=job_id).aggregate(
        total=Count("pk"),
        settled=Count("pk", filter=SETTLED),
        failed=Count("pk", filter=Q(status=Video.Status.FAILED)),
    )
    total, settled, failed = counts["total"], counts["settled"], counts["failed"]
    message = f"{settled - failed} of {total} videos extracted and matched" + (
        f", {failed} failed" if failed else ""
    )
    if settled >= total:
        now = timezone.now()
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
            status=Job.Status.DONE,
            done=settled,
            total=total,
            message=message if total else "nothing to extract",
            result={"ready": settled - failed, "failed": failed},
            finished_at=now,
            updated_at=now,
        )
    else:
        job_progress(job_id=job_id, done=settled, total=total, message=message)


def jobs_running() -> int:
    return Job.objects.filter(status__in=Job.LIVE).count()
