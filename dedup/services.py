"""Multi-model logic for videos: ingest, extraction, candidate search, scoring and grouping."""

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.utils import timezone
from pgvector import HalfVector

from .features import FEATURE_VERSION, UNCHANGED_SINCE, ExtractionError
from .features.embed import BACKBONES, get_embedder, pick_device, pick_runtime, resolve_weights
from .features.frames import display_matrix_of, moves_pictures, pick_decode_device, sampling_fps
from .features.probe import probe_video
from .features.projection import PROJECTED_DIM, fit_basis, project, second_moment
from .matching.breakdown import SPEED
from .matching.groups import Link, group_components, group_links, keep_best
from .matching.score import LABELS, FusionArrays, FusionInputs, classify, score_pair
from .matching.signals import ScoringParams, VideoSignals
from .models import AudioHash, DuplicateGroup, Frame, IndexProjection, Pair, ScoringConfig, Video

logger = logging.getLogger(__name__)

# Frames whose near-identical copies sit in at least this many other videos *and* this share of
# the library are boilerplate (test cards, logos, stock intros): they barely vote and, while
# they are a minority of the video, are left out of alignment.
COMMON_FRAME_MIN_VIDEOS = 8
COMMON_FRAME_LIBRARY_SHARE = 0.05
COMMON_FRAME_VOTE = 0.2
COMMON_FRAME_SIMILARITY = 0.9  # only near-identical neighbours make a frame common
# Common frames are left out of alignment only while they are a minority of the video (an intro,
# a logo); a video made of nothing but widely shared frames (one static camera in many uploads)
# keeps them all, and the scorer's static-shot checks decide.
COMMON_FRAME_MAX_SHARE = 0.5


# ---------------------------------------------------------------- ingest


@dataclass
class IngestResult:
    created: list[int] = field(default_factory=list)
    existing: int = 0
    identical: int = 0
    skipped: list[str] = field(default_factory=list)  # "path: why", for files never opened


@dataclass(frozen=True)
class Found:
    """A file met while ingesting: where it was found, the folders its real file must stay inside,
    and why it is refused ("" for a candidate video)."""

    path: Path
    root: Path
    within: tuple[str, ...]
    refused: str = ""


def shown_path(path: str | Path) -> str:
    """A path as text that JSON and the database take: bytes that are not UTF-8 as \\xff escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


NOT_TEXT = "file name is not valid UTF-8 (rename the file to import it)"


def _is_text(path: Path) -> bool:
    # a name that is not UTF-8 arrives as lone surrogates, which PostgreSQL cannot store
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def import_roots() -> list[Path]:
    return [Path(root).resolve() for root in settings.ASTRADUP["IMPORT_ROOTS"]]


def upload_folder() -> Path:
    return Path(settings.MEDIA_ROOT) / "uploads"


def video_open(*, video: Video) -> BinaryIO:
    """The recorded video's file, open for reading, where it still resolves inside the folder it was
    ingested from or a configured root (import roots, uploads); FileRefused otherwise, so that a
    symlink swapped in after ingest is never followed out."""
    from .features.probe import open_regular

    within = [*import_roots(), upload_folder()]
    if video.root:  # "" (no root recorded) must not mean the working directory
        within.append(Path(video.root))
    return open_regular(video.path, within=within)


def iter_candidate_files(paths: list[Path], *, within: list[Path] | None = None):
    """Yield a `Found` for every file under the given files/folders that could be a video, and for
    every one that cannot be examined safely (with the reason). Every file must resolve inside one
    of `within` (None: inside the file or folder given, as the CLI's admin named it), so a symlink
    leading out of an import root is refused and never opened."""
    from .features.probe import FileRefused, has_video_extension, looks_like_video, refusal_of, regular_file

    def folders_refused():
        while unreadable:
            error = unreadable.pop(0)
            yield Found(Path(error.filename), given, bounds, f"folder: {refusal_of(error.filename, error)}")

    unreadable: list[OSError] = []
    for given in paths:
        given = Path(given).absolute()
        bounds = tuple(map(str, within)) if within is not None else (os.path.realpath(given),)
        if not os.path.isdir(given):
            # a file named outright is recorded whatever its name says (and fails with a reason if
            # it is no video); one named through a symlink is recorded as its target
            try:
                real, _ = regular_file(given, within=bounds)
            except FileRefused as exc:
                yield Found(given, given.parent, bounds, str(exc))
                continue
            file = Path(real) if os.path.islink(given) else given
            yield Found(file, file.parent, bounds, "" if _is_text(file) else NOT_TEXT)
            continue
        for dirpath, dirnames, filenames in os.walk(given, onerror=unreadable.append):
            yield from folders_refused()
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                file = Path(dirpath) / name
                try:
                    real, _ = regular_file(file, within=bounds)
                except FileRefused as exc:
                    yield Found(file, given, bounds, str(exc))
                    continue
                # by content, not by extension alone: a video-named non-video is recorded (and
                # fails with a reason); an unnamed video is still found by its signature
                if has_video_extension(file) or looks_like_video(Path(real)):
                    yield Found(file, given, bounds, "" if _is_text(file) else NOT_TEXT)
        yield from folders_refused()


def video_ingest(
    *, paths: list[Path], enqueue: bool = True, within: list[Path] | None = None
) -> IngestResult:
    """Record each video once and enqueue extraction after commit. Re-running does no duplicate
    work, and neither do concurrent runs over the same files. Files that resolve outside `within`
    (see `iter_candidate_files`), that are no regular files or cannot be read are skipped with the
    reason, never opened."""
    from .features.probe import FileRefused, open_regular, sha256_file

    result = IngestResult()
    for found in iter_candidate_files(paths, within=within):
        file = found.path
        if found.refused:
            result.skipped.append(f"{shown_path(file)}: {found.refused}")
            continue
        try:
            fh = open_regular(file, within=found.within)
        except FileRefused as exc:  # changed since it was found
            result.skipped.append(f"{shown_path(file)}: {exc}")
            continue
        with fh:
            stat = os.fstat(fh.fileno())
            abs_path = str(file)
            existing = Video.objects.filter(path=abs_path).first()
            if existing is not None:
                if existing.size == stat.st_size and existing.mtime == stat.st_mtime:
                    result.existing += 1
                # conditional, so that of two runs meeting the same change only one re-queues it
                elif Video.objects.filter(pk=existing.pk, size=existing.size, mtime=existing.mtime).update(
                    size=stat.st_size,
                    mtime=stat.st_mtime,
                    sha256="",
                    status=Video.Status.PENDING,
                    error="",
                    attempts=0,  # a new file: earlier crashes were another file's
                    updated_at=timezone.now(),
                ):
                    result.created.append(existing.pk)
                else:
                    result.existing += 1
                continue
            try:
                rel = str(file.relative_to(found.root))
            except ValueError:
                rel = file.name
            video = Video(
                path=abs_path,
                root=str(found.root),
                rel_path=rel,
                file_name=file.name,
                size=stat.st_size,
                mtime=stat.st_mtime,
            )
            try:
                video.sha256 = sha256_file(fh) if stat.st_size > 0 else ""
            except OSError:
                video.sha256 = ""
        if video.sha256:
            video.identical_to = (
                Video.objects.filter(sha256=video.sha256, identical_to__isnull=True).order_by("pk").first()
            )
        try:
            # a savepoint: a concurrent run that recorded this path first makes ours "existing"
            # (its row is visible once the unique index let us through), not a 500
            with transaction.atomic():
                video.save()
        except IntegrityError:
            if not Video.objects.filter(path=abs_path).exists():
                raise
            result.existing += 1
            continue
        result.identical += video.identical_to is not None
        result.created.append(video.pk)
    if enqueue and result.created:
        ids = list(result.created)
        transaction.on_commit(lambda: enqueue_extraction(ids))
    return result


class UploadRefused(Exception):
    pass


# most file systems allow 255 bytes a name; room is left for the "-N" that keeps names apart
UPLOAD_NAME_BYTES = 240


def video_upload(*, upload) -> IngestResult:
    """Store an uploaded file under MEDIA_ROOT/uploads (never overwriting) and ingest it."""
    limit_mb = settings.ASTRADUP["UPLOAD_MAX_MB"]
    if upload.size > limit_mb * 1024 * 1024:
        raise UploadRefused(f"file is larger than {limit_mb} MB")
    folder = upload_folder()
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(upload.name).name
    if name in ("", ".", ".."):
        name = "upload.bin"
    stem, suffix = Path(name).stem, Path(name).suffix
    if len(name.encode()) > UPLOAD_NAME_BYTES:
        suffix = suffix if len(suffix.encode()) <= 16 else ""
        stem = stem.encode()[: UPLOAD_NAME_BYTES - len(suffix.encode())].decode(errors="ignore")
    target, n = folder / f"{stem}{suffix}", 1
    while True:
        try:
            # "x": created here or not at all, so two uploads of one name never share a file
            fh = open(target, "xb")
            break
        except FileExistsError:
            target = folder / f"{stem}-{n}{suffix}"
            n += 1
    with fh:
        for chunk in upload.chunks():
            fh.write(chunk)
    os.chmod(target, 0o644)
    with transaction.atomic():
        return video_ingest(paths=[target], within=[folder])


def enqueue_extraction(video_ids: list[int]) -> None:
    from django_q.tasks import async_task

    for video_id in video_ids:
        async_task("dedup.tasks.extract_video", video_id, task_name=f"extract-{video_id}", group="extract")


# ---------------------------------------------------------------- extraction


def backbone_weights(name: str) -> Path:
    conf = settings.ASTRADUP
    explicit = {
        "efficientnet_lite0": conf["LITE0_WEIGHTS"],
        "resnet50": conf["RESNET50_WEIGHTS"],
        "clip_vit_b32": conf["CLIP_WEIGHTS"],
    }.get(name, "")
    return resolve_weights(name, explicit=explicit, weights_dir=conf["WEIGHTS_DIR"])


def _embedder_choice() -> tuple[str, Path, str, str]:
    """(backbone, weights, device, runtime) from the settings."""
    conf = settings.ASTRADUP
    name = conf["BACKBONE"]
    device = pick_device(conf["DEVICE"])
    return name, backbone_weights(name), device, pick_runtime(conf["EMBED_RUNTIME"], device)


def current_embedder():
    conf = settings.ASTRADUP
    name, weights, device, runtime = _embedder_choice()
    return get_embedder(
        name,
        str(weights),
        device,
        conf["TORCH_THREADS"],
        runtime,
        conf["EMBED_PRECISION"],
        conf["MODEL_CACHE"],
    )


def decode_device(embedder) -> str:
    """Where this worker decodes videos (ASTRADUP_DECODE_DEVICE; `auto` follows the embedder)."""
    embeds_on = embedder.device.type if embedder.device is not None else "cpu"
    return pick_decode_device(settings.ASTRADUP["DECODE_DEVICE"], embeds_on)


def statistics_refresh() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dedup_video")
        cursor.execute("ANALYZE dedup_frame")
        cursor.execute("ANALYZE dedup_audiohash")


def embedder_prepare() -> None:
    """Make what workers load (the converted model) before starting them, so a pool of fresh
    processes does not convert it once each."""
    from .features.embed import openvino_ir

    name, weights, _, runtime = _embedder_choice()
    if runtime == "openvino":
        openvino_ir(BACKBONES[name], weights, Path(settings.ASTRADUP["MODEL_CACHE"]))


def embed_batch(embedder) -> int:
    """Frames per inference call: small on CPUs (`make bench-embed`, 240 frames: OpenVINO bf16 at
    2 frames 200 images/s and +91 MB, at 8 frames 185 and +160 MB, at 32 frames 164 and +374 MB),
    large on a GPU."""
    configured = settings.ASTRADUP["EMBED_BATCH"]
    if configured > 0:
        return configured
    if embedder.runtime == "openvino":
        return 2
    return 256 if embedder.half else 32


# ---------------------------------------------------------------- claims
# A video is extracted by the process that claims it (a conditional UPDATE). That process marks the
# claim alive from a thread (`_heartbeat`); when it dies (a native crash, kill -9, the OOM killer, a
# lost machine) the claim is dead once its process is gone from this host or it has been silent
# for four heartbeats, and the video is tried again, or failed once EXTRACT_ATTEMPTS processes
# have died on it. Who notices: the next claim of the video, `claims_recover` (every minute and at
# each worker start under the cluster, and for its own videos at the start of `ingest --sync`),
# and the parent of a pool of extraction processes, which sees its child die (`video_crash_settle`).

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


# Errors of a database that went away (server killed or restarted, network lost), as against
# errors of a statement: the same work succeeds once it is back.
OUTAGE_ERRORS = (OperationalError, InterfaceError)


def database_wait(*, timeout: float) -> bool:
    """After an outage error: this thread's broken connection dropped, then a new one tried (every
    0.5 s, backing off to 5 s) until the database answers (True) or `timeout` seconds pass."""
    deadline, delay = time.monotonic() + timeout, 0.5
    while True:
        try:
            connection.close()
        except OUTAGE_ERRORS:
            pass  # closing a dead connection can fail; it is dropped either way
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except OUTAGE_ERRORS:
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 5)


def outlasting_outages(work, *, wait: float, again=lambda: None, tries: int = 3):
    """`work()`, run again after a database outage it meets (for worker tasks: a long-lived worker
    process keeps its broken connection, and django-q2 acknowledges a failed task, so a task failing
    on the outage would be lost: a video left pending with nothing queued, a match never made).
    Waits up to `wait` seconds for the database, then calls `again()` (to undo what the interrupted
    `work` left) and `work()`; raises the error if the database stays away, or at the `tries`-th
    (a deadlock or a cancelled statement is an OperationalError too, and may come back each time)."""
    for tried in range(1, tries + 1):
        try:
            return work()
        except OUTAGE_ERRORS as exc:
            logger.warning("database error (%s): waiting up to %d s to carry on", exc, wait)
            if tried == tries or not database_wait(timeout=wait):
                raise
            again()


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
def _heartbeat(video_id: int, claimed_by: str):
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


# Column: binary COPY type, for the rows video_extract writes. Every column without a database
# default is listed (Django's `default=` is applied by the ORM only).
FRAME_COLUMNS = {
    "video_id": "int8",
    "idx": "int4",
    "t": "float8",
    "informative": "bool",
    "indexed": "bool",
    "phash": "int8",
    "phash_b0": "int2",
    "phash_b1": "int2",
    "phash_b2": "int2",
    "phash_b3": "int2",
    "thumb": "bytea",
    "model": "varchar",
    "embedding": "halfvec",
    "index_embedding": "halfvec",
}
AUDIOHASH_COLUMNS = {"video_id": "int8", "value": "int4"}


def copy_rows(table: str, columns: dict[str, str], rows) -> None:
    """Binary COPY of `rows` (lists in the order of `columns`, column: COPY type) into `table` on
    Django's connection, inside the caller's transaction. For one video's 61 frames against
    bulk_create: 1.4 against 50 ms of app CPU and 20 against 82 ms in all (the embeddings' text
    form, 78,000 numbers written and parsed, was most of it)."""
    from pgvector.psycopg.halfvec import register_halfvec_info
    from psycopg.types import TypeInfo

    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        if "halfvec" in columns.values():
            # for this cursor only: the app's binary reads on the connection expect raw bytes
            register_halfvec_info(cursor, TypeInfo.fetch(raw, "halfvec"))
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(list(columns.values()))
            for row in rows:
                copy.write_row(row)


def video_extract(*, video_id: int, force: bool = False) -> Video:
    """Extract every signal of one video and write them in one transaction (never half-written)."""
    if force:
        Video.objects.filter(pk=video_id).update(status=Video.Status.PENDING, attempts=0)
    if not video_claim(video_id=video_id):
        return Video.objects.get(pk=video_id)
    video = Video.objects.get(pk=video_id)
    with _heartbeat(video_id, video.claimed_by):
        return _extract_claimed(video)


def _source_checked(video: Video) -> Path:
    """The file to extract, checked as the media views check it: a regular file that still resolves
    inside the folder it was ingested from (or a configured root), so a symlink or FIFO swapped in
    after ingest is never opened. A file changed since ingest loses its ingest-time hash (its
    features come from what is there now) and has its size and time read again."""
    from .features.probe import FileRefused, regular_file

    within = [*import_roots(), upload_folder()]
    if video.root:
        within.append(Path(video.root))
    else:  # a row made by hand, not by ingest: only the file itself is checked
        within.append(Path(video.path).parent.resolve())
    try:
        real, found = regular_file(video.path, within=within)
    except FileRefused as exc:
        raise ExtractionError(str(exc)) from None
    if (video.size, video.mtime) != (found.st_size, found.st_mtime):
        video.sha256 = ""
        video.size, video.mtime = found.st_size, found.st_mtime
        video.identical_to = None
        Video.objects.filter(pk=video.pk).update(
            sha256="", identical_to=None, size=found.st_size, mtime=found.st_mtime
        )
    return Path(real)


def _extract_claimed(video: Video) -> Video:
    from .features.extract import extract_features
    from .features.frames import one_per_second
    from .features.phash import bands

    video_id = video.pk
    try:
        source = _source_checked(video)
        embedder = current_embedder()
        features = extract_features(
            source,
            embedder,
            embed_batch=embed_batch(embedder),
            dense_min_frames=settings.ASTRADUP["DENSE_MIN_FRAMES"],
            max_frames=settings.ASTRADUP["MAX_FRAMES"],
            frame_memory_mb=settings.ASTRADUP["FRAME_MEMORY_MB"],
            sha256=not video.sha256,
            decode_device=decode_device(embedder),
        )
    except ExtractionError as exc:
        video.mark_failed(str(exc))
        return video
    except OUTAGE_ERRORS:
        raise  # the database went away (`_source_checked` writes): no fault of the video's
    except Exception as exc:  # an unexpected failure still leaves a readable reason
        logger.exception("extraction of video %s failed", video_id)
        video.mark_failed(f"internal error: {type(exc).__name__}: {exc}")
        return video
    probe, frames, hashes, thumbs = features.probe, features.frames, features.hashes, features.thumbs
    embeddings, audio, timings = features.embeddings, features.audio, dict(features.cpu)
    video.sha256 = video.sha256 or features.sha256

    start = time.process_time()
    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=video_id)
        if locked.status != Video.Status.PROCESSING or locked.claimed_by != video.claimed_by:
            return locked  # this claim was ended meanwhile (taken for dead): another attempt writes
        Frame.objects.filter(video_id=video_id).delete()
        AudioHash.objects.filter(video_id=video_id).delete()
        indexed = one_per_second(frames.times)
        basis = projection_basis(embedder.name)
        projected = project(embeddings, basis) if basis is not None else None
        copy_rows(
            "dedup_frame",
            FRAME_COLUMNS,
            [
                [
                    video_id,
                    i,
                    float(frames.times[i]),
                    bool(frames.informative[i]),
                    bool(indexed[i]),
                    h,
                    *bands(h),
                    thumbs[i],
                    embedder.name,
                    HalfVector(embeddings[i]),
                    HalfVector(projected[i]) if projected is not None else None,
                ]
                for i, h in enumerate(hashes)
            ],
        )
        informative = embeddings[frames.informative] if frames.informative.any() else embeddings
        pooled = informative.mean(axis=0)
        pooled = pooled / (np.linalg.norm(pooled) + 1e-9)
        for name in (
            "container",
            "duration",
            "width",
            "height",
            "sar",
            "fps",
            "video_codec",
            "audio_codec",
            "bitrate",
            "has_audio",
        ):
            setattr(locked, name, getattr(probe, name))
        locked.size = probe.size
        if locked.sha256 != video.sha256 and video.sha256:  # hashed here: the file changed since ingest
            locked.identical_to = (
                Video.objects.filter(sha256=video.sha256, identical_to__isnull=True)
                .exclude(pk=video_id)
                .order_by("pk")
                .first()
            )
        locked.sha256 = video.sha256
        locked.crop = list(frames.crop)
        locked.embedding = pooled.tolist()
        locked.backbone = embedder.name
        locked.feature_version = FEATURE_VERSION
        locked.audio_fingerprint = None
        locked.mfcc = None
        locked.audio_silent = False
        if audio is not None:
            locked.audio_silent = audio.silent
            if audio.fingerprint is not None:
                locked.audio_fingerprint = audio.fingerprint.astype("<u4").tobytes()
                values = np.unique(audio.fingerprint.astype(np.uint32).view(np.int32))
                copy_rows("dedup_audiohash", AUDIOHASH_COLUMNS, [[video_id, int(v)] for v in values])
            if audio.mfcc is not None:
                locked.mfcc = audio.mfcc.astype("<f4").tobytes()
        locked.status = Video.Status.READY
        locked.error = ""
        locked.heartbeat_at = None
        locked.finished_at = timezone.now()
        locked.matched_at = None
        timings["database"] = round(time.process_time() - start, 4)
        locked.timings = timings
        locked.save()
    return locked


def videos_under(paths: list[Path]):
    """Videos at or below the given files/folders."""
    query = Q(pk__in=[])
    for path in paths:
        if not _is_text(Path(path)):  # nothing is recorded under a name PostgreSQL cannot store
            continue
        # a file named through a symlink is recorded as its target (see `iter_candidate_files`)
        for root in {str(Path(path).absolute()), os.path.realpath(path)}:
            query |= Q(path=root) | Q(path__startswith=root.rstrip("/") + "/")
    return Video.objects.filter(query)


def stale_videos():
    """Ready videos whose features were made by another feature version or backbone."""
    return Video.objects.filter(status=Video.Status.READY).filter(
        ~Q(feature_version=FEATURE_VERSION) | ~Q(backbone=settings.ASTRADUP["BACKBONE"])
    )


def carry_forward_unchanged() -> int:
    """Bring ready videos of version `UNCHANGED_SINCE` to this version where re-extracting them
    would give the same features: their pictures need no turning (one picture decoded per file,
    instead of the whole video) and their seconds fit the frame budget. (A long portrait video
    would now be sampled more sparsely, to fit `ASTRADUP_FRAME_MEMORY_MB`; the denser sampling it
    has is kept, being the same features at more seconds.) Returns how many were carried forward;
    the others (and files gone or unreadable) stay stale for `reextract`."""
    conf = settings.ASTRADUP
    carried = []
    older = Video.objects.filter(
        status=Video.Status.READY, feature_version=UNCHANGED_SINCE, backbone=conf["BACKBONE"]
    )
    for pk, path, duration in older.values_list("pk", "path", "duration").iterator():
        rate = sampling_fps(duration or 0.0, conf["DENSE_MIN_FRAMES"])
        if sampling_fps(duration or 0.0, conf["DENSE_MIN_FRAMES"], conf["MAX_FRAMES"]) != rate:
            continue  # now sampled over its whole length, not its first MAX_FRAMES seconds
        try:
            if not moves_pictures(display_matrix_of(Path(path))):
                carried.append(pk)
        except ExtractionError:
            continue
    for start in range(0, len(carried), 1000):
        Video.objects.filter(pk__in=carried[start : start + 1000], feature_version=UNCHANGED_SINCE).update(
            feature_version=FEATURE_VERSION
        )
    return len(carried)


def pixel_aspects_refresh() -> tuple[int, int]:
    """Read the pixel aspect of ready videos extracted before it was probed (`sar` empty): one probe
    per file and no re-extraction, as no picture feature depends on it (every network, hash and
    thumbnail input is squashed to a square). The pairs of the anamorphic ones are scored again,
    their metadata score having changed. Returns (videos read, anamorphic among them); a file gone
    or unreadable is left for `reextract`."""
    square, anamorphic = [], []
    unread = Video.objects.filter(status=Video.Status.READY, sar__isnull=True)
    for pk, path, width, height in unread.values_list("pk", "path", "width", "height").iterator():
        try:
            probe = probe_video(Path(path))
        except ExtractionError:
            continue
        if (width, height) == (probe.height, probe.width) and width != height:
            probe = probe.turned()  # stored as players show it turned (see extract_features)
        if probe.sar == 1.0:
            square.append(pk)
        else:
            Video.objects.filter(pk=pk).update(sar=probe.sar)
            anamorphic.append(pk)
    for start in range(0, len(square), 1000):
        Video.objects.filter(pk__in=square[start : start + 1000]).update(sar=1.0)
    if anamorphic:
        touching = Pair.objects.filter(Q(video_a__in=anamorphic) | Q(video_b__in=anamorphic))
        pairs_score_again(touching, ScoringConfig.active())
        groups_refresh()
    return len(square) + len(anamorphic), len(anamorphic)


# ---------------------------------------------------------------- index projection


@lru_cache(maxsize=4)
def _basis(projection_id: int) -> np.ndarray:
    return IndexProjection.objects.get(pk=projection_id).matrix()


def projection_basis(backbone: str) -> np.ndarray | None:
    """The backbone's index projection, fitted or being filled; None when there is none. A new
    fit is a new row (a new id), so the cached basis never goes stale."""
    pk = IndexProjection.objects.filter(backbone=backbone).values_list("pk", flat=True).first()
    return _basis(pk) if pk is not None else None


def frame_embeddings(sql: str, params: list) -> tuple[list[int], np.ndarray]:
    """(first column, L2-normalised embeddings) of the (id, embedding) rows a query selects."""
    rows = _binary_rows(sql, params)
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float32)
    emb = _halfvecs([r[1] for r in rows])
    return [r[0] for r in rows], emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9)


def index_projection_fit(
    *,
    backbone: str,
    max_frames: int = 200_000,
    min_frames: int = PROJECTED_DIM,
    batch: int = 5000,
    maintenance_work_mem: str = "2GB",
    log=None,
) -> IndexProjection:
    """Fit the backbone's index projection on (up to `max_frames`, evenly spread) of its indexed
    frames, store every frame's projection, then mark it ready so candidate search uses it.

    A refit replaces the old projection; until the new one is ready, candidate search uses the
    full embeddings. Frames written meanwhile by workers are projected as they are written;
    passes repeat until no frame is left without a projection.

    The backbone's HNSW indexes are dropped before the column is touched and built again after:
    updating rows under a 1280-d HNSW index costs an index insert per row (≈ 300 rows/s at 1 M
    vectors, an hour per million); building the projected index afresh takes ≈ 3 minutes per
    million frames, and the full one comes back empty (it holds only frames without a projection,
    migration 0009). Meanwhile candidate search scans, so run it with the workers stopped; a run
    that stopped half-way is repaired by running it again."""
    import psycopg
    from pgvector import HalfVector
    from pgvector.psycopg.halfvec import register_halfvec_info
    from psycopg.types import TypeInfo

    log = log or (lambda message: None)
    frames = Frame.objects.filter(model=backbone, informative=True, indexed=True)
    total = frames.count()
    if total < min_frames:
        raise ValueError(
            f"{total} indexed frames of {backbone}; fitting a projection needs at least {min_frames} "
            "(a library this small is searched fast enough without one)"
        )
    step = max(1, -(-total // max_frames))
    moment, used, last = None, 0, 0
    while True:
        ids, emb = frame_embeddings(
            "SELECT id, embedding FROM dedup_frame WHERE model = %s AND informative AND indexed "
            "AND id > %s ORDER BY id LIMIT %s",
            [backbone, last, batch * step],
        )
        if not ids:
            break
        last = ids[-1]
        block = second_moment(emb[::step])
        moment = block if moment is None else moment + block
        used += len(emb[::step])
    basis = fit_basis(moment)
    log(f"fitted a {PROJECTED_DIM}-d basis on {used} of {total} indexed frames")

    with connection.cursor() as cursor:
        for name, _ in frame_hnsw_indexes(backbone):
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
    with transaction.atomic():
        IndexProjection.objects.filter(backbone=backbone).delete()
        Frame.objects.filter(model=backbone).exclude(index_embedding=None).update(index_embedding=None)
        projection = IndexProjection.objects.create(
            backbone=backbone, dim=PROJECTED_DIM, basis=basis.astype("<f4").tobytes(), frames=used
        )

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as writer:
        # binary halfvecs for this cursor only: other reads on the connection expect raw bytes
        register_halfvec_info(writer, TypeInfo.fetch(connection.connection, "halfvec"))
        while True:
            written, last = 0, 0
            while True:
                ids, emb = frame_embeddings(
                    "SELECT id, embedding FROM dedup_frame WHERE model = %s AND index_embedding IS NULL "
                    "AND id > %s ORDER BY id LIMIT %s",
                    [backbone, last, batch],
                )
                if not ids:
                    break
                last = ids[-1]
                with transaction.atomic():
                    writer.executemany(
                        "UPDATE dedup_frame SET index_embedding = %s WHERE id = %s",
                        [(HalfVector(v), i) for v, i in zip(project(emb, basis), ids, strict=True)],
                    )
                written += len(ids)
                log(f"projected {written} frames")
            if not written:
                break
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = %s", [maintenance_work_mem])
        for name, ddl in frame_hnsw_indexes(backbone):
            log(f"building {name}")
            cursor.execute(ddl)
        cursor.execute("RESET maintenance_work_mem")
    IndexProjection.objects.filter(pk=projection.pk).update(ready=True)
    projection.ready = True
    statistics_refresh()
    return projection


def frame_hnsw_indexes(backbone: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX) of a backbone's two frame indexes, as migrations 0007 and 0009 make
    them: the full embeddings of frames without a projection, and the projections."""
    dim = BACKBONES[backbone].dim
    where = f"WHERE model = '{backbone}' AND informative AND indexed"
    hnsw = "halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
    return [
        (
            f"frame_emb_hnsw_{backbone}",
            f"CREATE INDEX IF NOT EXISTS frame_emb_hnsw_{backbone} ON dedup_frame "
            f"USING hnsw ((embedding::halfvec({dim})) {hnsw} {where} AND index_embedding IS NULL",
        ),
        (
            f"frame_proj_hnsw_{backbone}",
            f"CREATE INDEX IF NOT EXISTS frame_proj_hnsw_{backbone} ON dedup_frame "
            f"USING hnsw ((index_embedding::halfvec({PROJECTED_DIM})) {hnsw} "
            f"{where} AND index_embedding IS NOT NULL",
        ),
    ]


# ---------------------------------------------------------------- candidates


def _binary_rows(sql: str, params: list) -> list[tuple]:
    """Rows in binary: through the ORM each halfvec arrives as text and is parsed float by float
    in Python, which was most of the scoring time."""
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def _frame_rows(video_id: int) -> list[tuple]:
    """(idx, t, informative, phash, halfvec bytes, thumbnail bytes) of one video's frames."""
    return _binary_rows(
        "SELECT idx, t, informative, phash, embedding, thumb FROM dedup_frame WHERE video_id = %s ORDER BY idx",
        [video_id],
    )


def _halfvecs(blobs: list[bytes]) -> np.ndarray:
    # pgvector's binary halfvec: int16 dimension, int16 unused, then big-endian float16 values
    return np.stack([np.frombuffer(b, dtype=">f2", offset=4) for b in blobs]).astype(np.float32)


def load_signals(video: Video, *, common: set[int] | None = None) -> VideoSignals:
    rows = _frame_rows(video.pk)
    if rows:
        emb = _halfvecs([r[4] for r in rows])
        emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9
    else:
        emb = np.zeros((0, BACKBONES[settings.ASTRADUP["BACKBONE"]].dim), dtype=np.float32)
    informative = np.array([r[2] and (common is None or r[0] not in common) for r in rows], dtype=bool)
    fingerprint = (
        np.frombuffer(bytes(video.audio_fingerprint), dtype="<u4") if video.audio_fingerprint else None
    )
    mfcc = np.frombuffer(bytes(video.mfcc), dtype="<f4") if video.mfcc else None
    # frames extracted before thumbnails existed (feature version < 5) have none
    thumbs = (
        np.stack([np.frombuffer(r[5], dtype=np.uint8) for r in rows])
        if rows and all(r[5] is not None for r in rows)
        else None
    )
    return VideoSignals(
        id=video.pk,
        times=np.array([r[1] for r in rows], dtype=np.float32),
        embeddings=emb,
        phashes=np.array([r[3] for r in rows], dtype=np.int64),
        informative=informative,
        thumbs=thumbs,
        duration=video.duration or 0.0,
        width=video.width or 0,
        height=video.height or 0,
        sar=video.sar or 1.0,
        fps=video.fps or 0.0,
        size=video.size or 0,
        bitrate=video.bitrate or 0,
        sha256=video.sha256,
        fingerprint=fingerprint,
        mfcc=mfcc,
        has_audio=bool(video.has_audio) and not video.audio_silent,
    )


@dataclass
class Candidates:
    votes: dict[int, float]
    reasons: dict[int, set]
    common_frames: set[int]  # idx of this video's frames that match too much of the library


# Candidate search through a projected index re-ranks this many neighbours per wanted one by their
# full cosine: on the benchmark's real embeddings (held-out source videos, exact search, 256-d)
# 1x keeps 0.957 of the exact neighbours' videos, 2x 0.996 (manage.py bench_projection); at 1 M
# vectors 2x costs p95 157-179 ms per new video (make bench-index, docs/benchmarks.md).
PROJECTED_RERANK = 2


def frame_neighbours_sql(backbone: str, *, source: str = "full", groups: int = 1) -> str:
    """The k nearest library frames of each informative frame of one video (params: k, video id;
    source "projected": k × PROJECTED_RERANK, k, video id; with `groups` > 1 one more, the group:
    only the frames whose number modulo `groups` is that group query).

    The backbone and its dimension are literals, not a join condition or a parameter: only then
    can the planner match the backbone's partial HNSW index (`WHERE model = '…' AND informative
    AND indexed …`); otherwise it sorts the whole frame table once per query frame. Every
    informative frame queries; only the indexed ones (one per second of video) are found.

    source: "full", the full-embedding index, which holds the frames without a projection (in a
    library without one, all of them); "projected", the projected index (IndexProjection), its
    neighbours re-ranked by full cosine; "all", every frame's full embedding, while a fit fills
    the projection (its indexes are dropped then, so this scans)."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}")
    if source not in ("full", "projected", "all"):
        raise ValueError(f"unknown source {source!r}")
    dim = BACKBONES[backbone].dim
    vec = f"::halfvec({dim})"
    group = f" AND q.idx %% {int(groups)} = %s" if groups > 1 else ""
    if source == "projected":
        small = f"::halfvec({PROJECTED_DIM})"
        return f"""
        SELECT q.idx, n.video_id, n.dist
        FROM dedup_frame q
        CROSS JOIN LATERAL (
            SELECT c.video_id, c.dist FROM (
                SELECT f.video_id, (f.embedding{vec}) <=> (q.embedding{vec}) AS dist
                FROM dedup_frame f
                WHERE f.model = '{backbone}' AND f.informative AND f.indexed
                  AND f.index_embedding IS NOT NULL AND f.video_id <> q.video_id
                ORDER BY (f.index_embedding{small}) <=> (q.index_embedding{small})
                LIMIT %s
            ) c
            ORDER BY c.dist
            LIMIT %s
        ) n
        WHERE q.video_id = %s AND q.informative AND q.model = '{backbone}' AND q.index_embedding IS NOT NULL{group}
    """
    unprojected = " AND f.index_embedding IS NULL" if source == "full" else ""
    return f"""
        SELECT q.idx, n.video_id, n.dist
        FROM dedup_frame q
        CROSS JOIN LATERAL (
            SELECT f.video_id, (f.embedding{vec}) <=> (q.embedding{vec}) AS dist
            FROM dedup_frame f
            WHERE f.model = '{backbone}' AND f.informative AND f.indexed AND f.video_id <> q.video_id{unprojected}
            ORDER BY (f.embedding{vec}) <=> (q.embedding{vec})
            LIMIT %s
        ) n
        WHERE q.video_id = %s AND q.informative AND q.model = '{backbone}'{group}
    """


# At a fixed search breadth the HNSW search's recall falls as the library grows. Measured recall@40
# of videos against exact search (make bench-index, docs/benchmarks.md): ef_search 100 0.975 at
# 1 M frames, 0.959 at 2 M and 0.945 at 3 M; 200 0.976 at 3 M, 0.959 at 5 M and 0.937 at 10 M; 400
# 0.970 at 10 M. Each row: up to this many frames, the breadth that keeps it at 0.95 or more (its
# p95 at the row's end, one connection: 197 ms at 2 M with 100, 617 ms at 5 M with 200, 1.12 s at
# 10 M with 400).
SEARCH_BREADTH = ((2_000_000, 100), (5_000_000, 200), (None, 400))
# From this many frames a video's search is split over two connections, which halves its latency
# (the same neighbours, no less CPU). On a CPU without AVX-512 (an AMD Zen 3) the search at ef 100
# takes p95 280 ms at 500,000 frames and 543 ms at 1 M on one connection, 144 and 175 ms on two;
# at 10 M, ef 400, where the library no longer fits in memory, 1.12 s on one connection and 0.67 s
# on two (a Zen 4): a second connection keeps a second read from disk in flight.
SPLIT_SEARCH_FRAMES = 500_000


def library_frames() -> int:
    """Frames in the library, as the planner estimates them (ANALYZE, which autovacuum runs as the
    table grows, keeps the estimate): a catalogue read, where count(*) would read 10 M rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'dedup_frame'::regclass")
        return max(0, int(cursor.fetchone()[0]))  # -1 until the table is first analysed


def search_plan(frames: int) -> tuple[int, int]:
    """(ef_search, connections) for a library of `frames` frames: ASTRADUP_HNSW_EF_SEARCH and
    ASTRADUP_CANDIDATE_SEARCH_CONNECTIONS where set, otherwise by the library's size."""
    conf = settings.ASTRADUP
    ef_search = conf["HNSW_EF_SEARCH"] or next(
        ef for most, ef in SEARCH_BREADTH if most is None or frames <= most
    )
    connections = conf["CANDIDATE_SEARCH_CONNECTIONS"] or (2 if frames >= SPLIT_SEARCH_FRAMES else 1)
    return ef_search, connections


def frame_neighbours(
    backbone: str, source: str, params: list, ef_search: int, groups: int = 1
) -> list[tuple]:
    """Rows of `frame_neighbours_sql`. With `groups` N > 1, the video's frames are split into N
    groups searched at once, each on a connection of its own: one video's search then uses N
    cores and keeps N reads from disk in flight, which is what a library larger than memory waits
    on. Inside a transaction the frames may not be committed yet, and other connections could not
    see them: there it searches on this connection alone."""
    if groups <= 1 or connection.in_atomic_block:
        return _frame_neighbours_group(backbone, source, params, ef_search)

    def one(group: int) -> list[tuple]:
        try:
            return _frame_neighbours_group(backbone, source, params, ef_search, groups=groups, group=group)
        finally:
            connection.close()  # this thread's own connection

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(groups) as pool:
        return [row for rows in pool.map(one, range(groups)) for row in rows]


def _frame_neighbours_group(
    backbone: str, source: str, params: list, ef_search: int, *, groups: int = 1, group: int = 0
) -> list[tuple]:
    # SET LOCAL takes effect only inside a transaction block (outside one PostgreSQL ignores it)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [ef_search])
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        sql = frame_neighbours_sql(backbone, source=source, groups=groups)
        cursor.execute(sql, [*params, group] if groups > 1 else params)
        return cursor.fetchall()


def find_candidates(
    video: Video, *, neighbours: int | None = None, min_similarity: float | None = None
) -> Candidates:
    """Index lookups only (HNSW, pHash bands, audio hashes, SHA-256): never a scan of all pairs."""
    conf = settings.ASTRADUP
    k = neighbours or conf["CANDIDATE_NEIGHBOURS"]
    min_sim = min_similarity if min_similarity is not None else conf["CANDIDATE_MIN_SIMILARITY"]
    votes: dict[int, float] = {}
    reasons: dict[int, set] = {}

    def add(vid: int, weight: float, why: str) -> None:
        votes[vid] = votes.get(vid, 0.0) + weight
        reasons.setdefault(vid, set()).add(why)

    for other in (
        Video.objects.filter(sha256=video.sha256, status=Video.Status.READY)
        .exclude(pk=video.pk)
        .values_list("pk", flat=True)
        if video.sha256
        else []
    ):
        add(other, 100.0, "sha256")

    library = Video.objects.filter(status=Video.Status.READY).count()
    common_cutoff = max(COMMON_FRAME_MIN_VIDEOS, int(COMMON_FRAME_LIBRARY_SHARE * library))
    common: set[int] = set()
    with connection.cursor() as cursor:
        # no projection: every frame is in the full index (none carries a projection); ready: the
        # projected index; a fit filling it: every frame, scanned (the fit dropped the indexes)
        ready = (
            IndexProjection.objects.filter(backbone=video.backbone).values_list("ready", flat=True).first()
        )
        source = "full" if ready is None else "projected" if ready else "all"
        projected = source == "projected"
        fetched = PROJECTED_RERANK * k if projected else k  # neighbours each frame takes from the index
        params = [fetched, k, video.pk] if projected else [k, video.pk]
        ef_search, connections = search_plan(library_frames())
        per_frame: dict[int, dict[int, float]] = {}
        rows = frame_neighbours(video.backbone, source, params, max(ef_search, fetched), connections)
        for idx, vid, dist in rows:
            sim = 1.0 - float(dist)
            if sim >= min_sim:
                best = per_frame.setdefault(idx, {})
                best[vid] = max(best.get(vid, 0.0), sim)
        for idx, hits in per_frame.items():
            weight = 1.0
            if sum(1 for sim in hits.values() if sim >= COMMON_FRAME_SIMILARITY) >= common_cutoff:
                common.add(idx)
                weight = COMMON_FRAME_VOTE
            for vid, sim in hits.items():
                add(vid, weight * sim, "embedding")

        # pHash: any hash within Hamming distance 3 shares one of the four 16-bit bands exactly
        cursor.execute(
            """
            SELECT DISTINCT f.video_id, q.idx
            FROM dedup_frame q JOIN dedup_frame f
              ON (f.phash_b0 = q.phash_b0 OR f.phash_b1 = q.phash_b1 OR f.phash_b2 = q.phash_b2 OR f.phash_b3 = q.phash_b3)
            WHERE q.video_id = %s AND q.informative AND f.informative AND f.video_id <> q.video_id
              AND bit_count((f.phash # q.phash)::bit(64)) <= 6
            """,
            [video.pk],
        )
        phash_hits: dict[int, int] = {}
        for vid, idx in cursor.fetchall():
            if idx not in common:
                phash_hits[vid] = phash_hits.get(vid, 0) + 1
        for vid, n in phash_hits.items():
            add(vid, 0.5 * n, "phash")

        if video.audio_fingerprint:
            cursor.execute(
                """
                SELECT o.video_id, count(*) FROM dedup_audiohash q JOIN dedup_audiohash o ON o.value = q.value
                WHERE q.video_id = %s AND o.video_id <> q.video_id
                GROUP BY o.video_id HAVING count(*) >= 8
                """,
                [video.pk],
            )
            for vid, n in cursor.fetchall():
                add(vid, 0.05 * n, "audio")
    ready = set(
        Video.objects.filter(pk__in=votes.keys(), status=Video.Status.READY).values_list("pk", flat=True)
    )
    informative = Frame.objects.filter(video_id=video.pk, informative=True).count()
    if len(common) > COMMON_FRAME_MAX_SHARE * informative:
        common = set()
    return Candidates(
        votes={v: w for v, w in votes.items() if v in ready},
        reasons={v: r for v, r in reasons.items() if v in ready},
        common_frames=common,
    )


# ---------------------------------------------------------------- scoring


def scoring_params(config: ScoringConfig) -> ScoringParams:
    return ScoringParams(
        visual_weight=config.visual_weight,
        audio_weight=config.audio_weight,
        metadata_weight=config.metadata_weight,
        exact_threshold=config.exact_threshold,
        near_threshold=config.near_threshold,
        similar_threshold=config.similar_threshold,
        partial_threshold=config.partial_threshold,
        frame_match_threshold=config.frame_match_threshold,
    )


def pair_score(*, a: Video, b: Video, config: ScoringConfig) -> Pair:
    """Score one pair and upsert it."""
    return pairs_save([pair_scored(a=a, b=b, config=config)])[0]


def pair_scored(
    *,
    a: Video,
    b: Video,
    config: ScoringConfig,
    loaded: dict[int, VideoSignals] | None = None,
    reasons: set | None = None,
) -> Pair:
    """The scored pair, not saved yet (see `pairs_save`). `loaded` holds signals already read (the
    video being matched against all its candidates is read once, not once per candidate)."""
    if a.pk > b.pk:
        a, b = b, a
    loaded = loaded or {}
    result = score_pair(
        loaded.get(a.pk) or load_signals(a), loaded.get(b.pk) or load_signals(b), scoring_params(config)
    )
    return Pair(
        video_a=a,
        video_b=b,
        score=result.score,
        label=result.label,
        visual=result.visual,
        audio=result.audio,
        metadata=result.metadata,
        breakdown=dict(result.breakdown.as_json(), candidate_reasons=sorted(reasons or [])),
        segments=result.segments.as_json(),
        config=config,
    )


PAIR_UPDATE_FIELDS = [
    "score",
    "label",
    "visual",
    "audio",
    "metadata",
    "breakdown",
    "segments",
    "config",
    "updated_at",
]


def pairs_save(pairs: list[Pair]) -> list[Pair]:
    """Insert or update scored pairs in one statement (INSERT ... ON CONFLICT): a video with a few
    hundred candidates was a few hundred round trips of select-for-update and update."""
    if not pairs:
        return []
    return Pair.objects.bulk_create(
        pairs,
        update_conflicts=True,
        unique_fields=["video_a", "video_b"],
        update_fields=PAIR_UPDATE_FIELDS,
        batch_size=500,
    )


def video_match(*, video_id: int, refresh_groups: bool = True) -> list[Pair]:
    """Find and score every candidate of a ready video, then refresh the duplicate groups it touches."""
    video = Video.objects.get(pk=video_id)
    if video.status != Video.Status.READY:
        return []
    config = ScoringConfig.active()
    started = time.process_time()
    candidates = find_candidates(video)
    searched = time.process_time()
    others = Video.objects.in_bulk(list(candidates.votes))
    loaded = {video.pk: load_signals(video, common=candidates.common_frames)}
    pairs = pairs_save(
        [
            pair_scored(
                a=video,
                b=others[other_id],
                config=config,
                loaded=loaded,
                reasons=candidates.reasons.get(other_id),
            )
            for other_id in sorted(candidates.votes, key=lambda v: -candidates.votes[v])
        ]
    )
    # pairs scored on this video's earlier features, and not found again, would otherwise linger;
    # pairs another video's search found since then are current (candidate search is not symmetric)
    stale = Pair.objects.filter(
        Q(video_a=video) | Q(video_b=video), updated_at__lt=video.finished_at
    ).exclude(pk__in=[p.pk for p in pairs])
    had_duplicates = stale.filter(label__in=Pair.DUPLICATE_LABELS).exists()
    stale.delete()
    # CPU of this process only: the database's own work on the index lookups is not in it
    timings = dict(
        video.timings or {},
        candidates=round(searched - started, 4),
        scoring=round(time.process_time() - searched, 4),
    )
    Video.objects.filter(pk=video_id).update(matched_at=timezone.now(), timings=timings)
    if refresh_groups and (had_duplicates or any(p.is_duplicate for p in pairs)):
        groups_refresh()
    return pairs


# ---------------------------------------------------------------- config versions


def config_activate(*, config: ScoringConfig, rescore: str = "enqueue") -> ScoringConfig:
    """Make `config` the active one (the others stay as history) and re-score every pair under it:
    in a background task (`enqueue`), right here (`sync`) or not at all (`none`). Moderators'
    verdicts are keyed by the videos, so no decision is touched."""
    with transaction.atomic():
        ScoringConfig.objects.filter(is_active=True).exclude(pk=config.pk).update(is_active=False)
        config.is_active = True
        config.activated_at = timezone.now()
        config.save(update_fields=["is_active", "activated_at"])
    if rescore == "sync":
        pairs_rescore(config_id=config.pk)
    elif rescore == "enqueue":
        transaction.on_commit(lambda: _enqueue_rescore(config.pk))
    return config


def _enqueue_rescore(config_id: int) -> None:
    from django_q.tasks import async_task

    async_task("dedup.tasks.rescore_pairs", config_id, task_name=f"rescore-{config_id}", group="rescore")


RESCORE_CHUNK = 2000


def pairs_rescore(*, config_id: int) -> dict:
    """Re-label every pair under a config. Pairs carry their fusion inputs, so this is arithmetic,
    not video reading; pairs scored before fusion inputs were stored are scored again in full."""
    config = ScoringConfig.objects.get(pk=config_id)
    if not config.is_active:
        return {"skipped": "config is no longer active"}
    params = scoring_params(config)
    counts = {"rescored": 0, "rescored_in_full": 0, "changed_label": 0}
    full: list[int] = []
    last_pk = 0
    while True:
        chunk = list(Pair.objects.filter(pk__gt=last_pk).order_by("pk")[:RESCORE_CHUNK])
        if not chunk:
            break
        last_pk = chunk[-1].pk
        stored = [p for p in chunk if (p.breakdown or {}).get("fusion")]
        full.extend(p.pk for p in chunk if not (p.breakdown or {}).get("fusion"))
        if not stored:
            continue
        scores, labels = classify(
            FusionArrays.stack([FusionInputs.from_dict(p.breakdown["fusion"]) for p in stored]), params
        )
        now = timezone.now()
        for p, score, code in zip(stored, scores, labels, strict=True):
            label = LABELS[int(code)]
            counts["changed_label"] += label != p.label
            p.score, p.label, p.config, p.updated_at = float(score), label, config, now
        Pair.objects.bulk_update(stored, ["score", "label", "config", "updated_at"])
        counts["rescored"] += len(stored)
    scored, changed = pairs_score_again(Pair.objects.filter(pk__in=full), config)
    counts["rescored_in_full"] += scored
    counts["changed_label"] += changed
    groups_refresh()
    logger.info("re-scored pairs under config %s: %s", config.pk, counts)
    return counts


def pairs_score_again(pairs, config: ScoringConfig) -> tuple[int, int]:
    """Score these pairs again in full, their videos' signals read anew (pairs of a video that is
    not ready are left); returns (scored, how many changed label)."""
    scored = changed = 0
    for pair in pairs.select_related("video_a", "video_b"):
        if pair.video_a.status == Video.Status.READY and pair.video_b.status == Video.Status.READY:
            scored += 1
            changed += pair_score(a=pair.video_a, b=pair.video_b, config=config).label != pair.label
    return scored, changed


# ---------------------------------------------------------------- groups


def groups_refresh() -> None:
    """Recompute duplicate groups from confident pairs and moderators' verdicts; a moderator's
    canonical choice is kept while that video stays in the group."""
    # moderators' verdicts win over scores (the review app owns them; imported here because it depends on us)
    from review.services import verdict_edges

    confirmed, rejected = verdict_edges()
    scored = Pair.objects.filter(label__in=Pair.DUPLICATE_LABELS).values_list(
        "video_a_id", "video_b_id", "score", "label"
    )
    edges = [e for e in scored if (e[0], e[1]) not in rejected] + confirmed
    components = group_components(edges)
    videos = Video.objects.in_bulk([v for comp in components for v in comp])
    links = group_links(scored_links(list(videos)), components)
    with transaction.atomic():
        old_groups = {g.pk: g for g in DuplicateGroup.objects.all()}
        old_members: dict[int, set[int]] = {}
        for pk, group_id in Video.objects.filter(group__isnull=False).values_list("pk", "group_id"):
            old_members.setdefault(group_id, set()).add(pk)
        used: set[int] = set()
        assigned: set[int] = set()
        for comp in components:
            members = [videos[v] for v in comp]
            previous = [m.group_id for m in members if m.group_id in old_groups and m.group_id not in used]
            group = (
                old_groups[max(set(previous), key=previous.count)]
                if previous
                else DuplicateGroup.objects.create()
            )
            used.add(group.pk)
            assigned.update(comp)
            best = keep_best([m.keep_facts() for m in members], links[tuple(comp)])
            canonical = group.canonical_id if group.canonical_id in comp else None
            # most groups are unchanged by one new pair or decision: write only what changed
            if old_members.get(group.pk) == set(comp) and (group.suggested_keep_id, group.canonical_id) == (
                best,
                canonical,
            ):
                continue
            group.suggested_keep_id, group.canonical_id = best, canonical
            group.save()
            Video.objects.filter(pk__in=comp).exclude(group=group).update(group=group)
        Video.objects.filter(group__isnull=False).exclude(pk__in=assigned).update(group=None)
        DuplicateGroup.objects.exclude(pk__in=used).delete()


def scored_links(video_ids: list[int]) -> list[Link]:
    """The scored pairs among these videos, as keep_choice reads them (label and matched speed)."""
    rows = Pair.objects.filter(video_a__in=video_ids, video_b__in=video_ids).values_list(
        "video_a_id", "video_b_id", "label", KT(f"segments__{SPEED}")
    )
    return [Link(a, b, label, float(speed) if speed else 1.0) for a, b, label, speed in rows]
