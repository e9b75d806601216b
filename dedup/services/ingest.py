"""Ingest: find video files under the given paths, record each once, store uploads, queue extraction."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Video


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
    from ..features.probe import open_regular

    within = [*import_roots(), upload_folder()]
    if video.root:  # "" (no root recorded) must not mean the working directory
        within.append(Path(video.root))
    return open_regular(video.path, within=within)


def iter_candidate_files(paths: list[Path], *, within: list[Path] | None = None):
    """Yield a `Found` for every file under the given files/folders that could be a video, and for
    every one that cannot be examined safely (with the reason). Every file must resolve inside one
    of `within` (None: inside the file or folder given, as the CLI's admin named it), so a symlink
    leading out of an import root is refused and never opened."""
    from ..features.probe import FileRefused, has_video_extension, looks_like_video, refusal_of, regular_file

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
    from ..features.probe import FileRefused, open_regular, sha256_file

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
