"""django-q2 tasks: ids in, a service call, nothing else."""

from django.conf import settings
from django.db import transaction

from .services.claims import claim_release, claims_recover
from .services.configs import pairs_rescore
from .services.extraction import video_extract
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
        return video.status

    return outlasting_outages(work, wait=_outage_wait(), again=lambda: claim_release(video_id=video_id))


def recover_extractions() -> dict:
    recovered = claims_recover()
    return {"retried": recovered.retried, "failed": recovered.failed}


def match_video(video_id: int) -> int:
    return outlasting_outages(lambda: len(video_match(video_id=video_id)), wait=_outage_wait())


def rescore_pairs(config_id: int) -> dict:
    return pairs_rescore(config_id=config_id)


def enqueue_match(video_id: int) -> None:
    from django_q.tasks import async_task

    async_task("dedup.tasks.match_video", video_id, task_name=f"match-{video_id}", group="match")
