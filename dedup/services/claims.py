"""Extraction claims. A video is extracted by the process that claims it (a conditional UPDATE).
That process marks the claim alive from a thread (`claim_heartbeat`); when it dies (a native crash,
kill -9, the OOM killer, a lost machine) the claim is dead once its process is gone from this host
or it has been silent for four heartbeats, and the video is tried again, or failed once
EXTRACT_ATTEMPTS processes have died on it. Who notices: the next claim of the video,
`claims_recover` (every minute and at each worker start under the cluster, and for its own videos
at the start of `ingest --sync`), and the parent of a pool of extraction processes, which sees its
child die (`video_crash_settle`)."""

import logging
import os
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import Video
from .ingest import enqueue_extraction

logger = logging.getLogger(__name__)

CLAIM_FIELDS = ("status", "attempts", "claimed_by", "heartbeat_at", "started_at")


@lru_cache(maxsize=1)
def process_host() -> str:
    """The machine and process namespace this process runs in: whether a claimant's process id
    can be looked up here (containers sharing the host's name, as with host networking, each
    number their processes apart)."""
    try:
        namespace = f"/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}{namespace}"


def claimant() -> str:
    """This process, as a claim names it: host:pid."""
    return f"{process_host()}:{os.getpid()}"


def _process_gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def claim_dead_cause(claim: dict, *, now=None, stale_after: timedelta | None = None) -> str:
    """Why a `processing` claim (`CLAIM_FIELDS`) is dead, or "" while its process may still be
    extracting. `stale_after` is for claims made before heartbeats (none recorded): the task
    timeout by default."""
    now = now or timezone.now()
    claimed_by = claim["claimed_by"]
    host, _, pid = claimed_by.rpartition(":")
    if host == process_host() and pid.isdigit() and _process_gone(int(pid)):
        return f"process {claimed_by} ended"
    if claim["heartbeat_at"] is not None:
        silent = now - claim["heartbeat_at"]
        if silent > timedelta(seconds=4 * settings.ASTRADUP["HEARTBEAT_SECONDS"]):
            return f"no sign of life from {claimed_by or 'its process'} for {round(silent.total_seconds())} s"
        return ""
    stale_after = stale_after or timedelta(seconds=settings.Q_CLUSTER["timeout"])
    if claim["started_at"] is None or now - claim["started_at"] > stale_after:
        return "claimed long ago and never heard from"
    return ""


def _claim_end(video_id: int, claim: dict, *, cause: str) -> str:
    """A dead claim ended: the video pending again or, once `EXTRACT_ATTEMPTS` processes have died
    on it, failed with `cause`. Conditional on the claim being the one read, so that of several
    processes noticing it one ends it. Returns the new status ("" when another did it first)."""
    now = timezone.now()
    limit = settings.ASTRADUP["EXTRACT_ATTEMPTS"]
    attempts = claim["attempts"]
    same = Video.objects.filter(
        pk=video_id,
        status=Video.Status.PROCESSING,
        claimed_by=claim["claimed_by"],
        started_at=claim["started_at"],
    )
    if attempts >= limit:
        status = Video.Status.FAILED
        error = f"the extraction process crashed {attempts} times ({cause})"
    else:
        status = Video.Status.PENDING
        error = (
            f"the extraction process crashed on attempt {attempts} of {limit} ({cause}); to be tried again"
        )
    ended = same.update(
        status=status,
        error=error,
        heartbeat_at=None,
        finished_at=now if status == Video.Status.FAILED else None,
        updated_at=now,
    )
    if not ended:
        return ""
    log = logger.error if status == Video.Status.FAILED else logger.warning
    log("video %s: %s", video_id, error)
    return status


def video_claim(*, video_id: int, stale_after: timedelta | None = None) -> bool:
    """Claim a video for extraction (and count the attempt). A claim whose process died is ended
    first (`claim_dead_cause`): the video is claimed again, or failed at the attempt limit."""
    claim = Video.objects.filter(pk=video_id).values(*CLAIM_FIELDS).first()
    if claim is None:
        return False
    if claim["status"] == Video.Status.PROCESSING:
        cause = claim_dead_cause(claim, stale_after=stale_after)
        if not cause or _claim_end(video_id, claim, cause=cause) != Video.Status.PENDING:
            return False
    elif claim["status"] != Video.Status.PENDING:
        return False
    now = timezone.now()
    return bool(
        Video.objects.filter(pk=video_id, status=Video.Status.PENDING).update(
            status=Video.Status.PROCESSING,
            started_at=now,
            heartbeat_at=now,
            claimed_by=claimant(),
            attempts=F("attempts") + 1,
            error="",
            updated_at=now,
        )
    )


def video_crash_settle(*, video_id: int, claimed_by: str, cause: str) -> str:
    """The extraction process `claimed_by` died working on the video (its parent saw it: `cause`
    is its exit signal): the video pending again or failed at the attempt limit. Returns the
    video's status."""
    claim = Video.objects.filter(pk=video_id).values(*CLAIM_FIELDS).first()
    if claim is None:
        return ""
    if claim["status"] == Video.Status.PROCESSING and claim["claimed_by"] == claimed_by:
        return _claim_end(video_id, claim, cause=cause) or Video.objects.get(pk=video_id).status
    return claim["status"]


@dataclass
class Recovered:
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def claims_recover(*, videos=None, enqueue: bool = True) -> Recovered:
    """End every dead claim among `videos` (all by default): each video pending again (and its
    extraction enqueued when `enqueue`) or failed at the attempt limit."""
    result = Recovered()
    claims = (Video.objects.all() if videos is None else videos).filter(status=Video.Status.PROCESSING)
    now = timezone.now()
    for claim in claims.values("pk", *CLAIM_FIELDS):
        cause = claim_dead_cause(claim, now=now)
        status = _claim_end(claim["pk"], claim, cause=cause) if cause else ""
        if status == Video.Status.PENDING:
            result.retried.append(claim["pk"])
        elif status == Video.Status.FAILED:
            result.failed.append(claim["pk"])
    if enqueue and result.retried:
        ids = list(result.retried)
        transaction.on_commit(lambda: enqueue_extraction(ids))
    return result


RECOVERY_TASK = "dedup.tasks.recover_extractions"


def claims_recovery_schedule() -> None:
    """The cluster's scheduler runs `claims_recover` every minute (made at each worker start, so a
    flushed or restored database gets it back)."""
    from django_q.models import Schedule

    if not Schedule.objects.filter(func=RECOVERY_TASK).exists():
        Schedule.objects.create(
            name="recover extractions whose process died",
            func=RECOVERY_TASK,
            schedule_type=Schedule.MINUTES,
            minutes=1,
            repeats=-1,
        )


def claim_release(*, video_id: int) -> bool:
    """This process's claim of the video given back, its attempt uncounted: the extraction met a
    database outage, no fault of the video's (`outlasting_outages`). A claim ended meanwhile (its
    heartbeat silent through a long outage) is no longer this process's: nothing to do."""
    now = timezone.now()
    return bool(
        Video.objects.filter(pk=video_id, status=Video.Status.PROCESSING, claimed_by=claimant()).update(
            status=Video.Status.PENDING,
            attempts=F("attempts") - 1,
            heartbeat_at=None,
            error="",
            updated_at=now,
        )
    )


@contextmanager
def claim_heartbeat(video_id: int, claimed_by: str):
    """Mark the claim alive every `HEARTBEAT_SECONDS` from a thread while the caller extracts: a
    long extraction stays claimed, and a dead process's claim goes silent. A database that is away
    skips beats (the claim may then be ended and the video extracted again: the write checks the
    claim is still its own)."""
    from django.db import DatabaseError
    from django.db import connection as thread_connection

    every = max(1, settings.ASTRADUP["HEARTBEAT_SECONDS"])
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                try:
                    Video.objects.filter(
                        pk=video_id, status=Video.Status.PROCESSING, claimed_by=claimed_by
                    ).update(heartbeat_at=timezone.now())
                except DatabaseError as exc:
                    logger.warning("video %s: heartbeat not recorded: %s", video_id, exc)
                    thread_connection.close()  # a new one at the next beat
        finally:
            thread_connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat-{video_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every)
