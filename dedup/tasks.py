"""django-q2 tasks: ids in, a service call, nothing else."""

from django.conf import settings
from django.db import transaction

from .services.claims import claim_release, claims_recover
from .services.configs import pairs_rescore, rescore_work
from .services.extraction import video_extract
from .services.jobs import job_run, jobs_videos_refresh
from .services.outages import outlasting_outages
from .services.scoring import video_match


def _outage_wait() -> float:
    # a database away longer than the task may run: the task fails (and a dead claim is recovered)
    return settings.Q_CLUSTER["timeout"]


def extract_video(video_id: int) -> str:
    def work() -> str:
        video = video_extract(video_id=video_id)
        if video.status == video.Status.READY:
            transaction.on_commit(lambda: enqueue_match(video_id))
        elif video.status == video.Status.FAILED:
            jobs_videos_refresh(video_ids=[video_id])  # settled: an import or re-extraction counts it
        return video.status

    return outlasting_outages(work, wait=_outage_wait(), again=lambda: claim_release(video_id=video_id))


def recover_extractions() -> dict:
    recovered = claims_recover()
    # videos failed here at the attempt limit had no task of their own to count them for their job
    jobs_videos_refresh()
    return {"retried": recovered.retried, "failed": recovered.failed}


def match_video(video_id: int) -> int:
    def work() -> int:
        pairs = len(video_match(video_id=video_id))
        jobs_videos_refresh(video_ids=[video_id])
        return pairs

    return outlasting_outages(work, wait=_outage_wait())


def rescore_pairs(config_id: int, job_id: int | None = None) -> dict:
    if job_id is None:  # enqueued before jobs existed (a queue carried over an upgrade)
        return pairs_rescore(config_id=config_id)
    return job_run(job_id=job_id, work=rescore_work(config_id))


def run_job(job_id: int) -> dict:
    """A job by the runner registered for its kind (a calibration, from review)."""
    return job_run(job_id=job_id)


def enqueue_match(video_id: int) -> None:
    from django_q.tasks import async_task

    async_task("dedup.tasks.match_video", video_id, task_name=f"match-{video_id}", group="match")
