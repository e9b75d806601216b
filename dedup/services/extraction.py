"""Extraction: the embedder the settings choose, one claimed video's signals extracted and written
in one transaction, stale features found or carried forward."""

import logging
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pgvector import HalfVector

from ..features import FEATURE_VERSION, UNCHANGED_SINCE, ExtractionError
from ..features.embed import BACKBONES, get_embedder, pick_device, pick_runtime, resolve_weights
from ..features.frames import display_matrix_of, moves_pictures, pick_decode_device, sampling_fps
from ..features.probe import probe_video
from ..features.projection import project
from ..models import AudioHash, Frame, FrameView, Pair, ScoringConfig, Video
from .claims import claim_heartbeat, video_claim
from .db import AUDIOHASH_COLUMNS, FRAME_COLUMNS, FRAMEVIEW_COLUMNS, copy_rows
from .groups import groups_refresh
from .ingest import import_roots, upload_folder
from .outages import OUTAGE_ERRORS
from .projection import projection_basis
from .scoring import pairs_score_again

logger = logging.getLogger(__name__)


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


def embedder_prepare() -> None:
    """Make what workers load (the converted model) before starting them, so a pool of fresh
    processes does not convert it once each."""
    from ..features.embed import openvino_ir

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


def video_extract(*, video_id: int, force: bool = False) -> Video:
    """Extract every signal of one video and write them in one transaction (never half-written)."""
    if force:
        Video.objects.filter(pk=video_id).update(status=Video.Status.PENDING, attempts=0)
    if not video_claim(video_id=video_id):
        return Video.objects.get(pk=video_id)
    video = Video.objects.get(pk=video_id)
    with claim_heartbeat(video_id, video.claimed_by):
        return _extract_claimed(video)


def _source_checked(video: Video) -> Path:
    """The file to extract, checked as the media views check it: a regular file that still resolves
    inside the folder it was ingested from (or a configured root), so a symlink or FIFO swapped in
    after ingest is never opened. A file changed since ingest loses its ingest-time hash (its
    features come from what is there now) and has its size and time read again."""
    from ..features.probe import FileRefused, regular_file

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
    """Read the claimed video's features, then write them under the claim (if it is still ours)."""
    try:
        source = _source_checked(video)
        embedder = current_embedder()
        features = _features_read(source, embedder, sha256=not video.sha256)
    except ExtractionError as exc:
        video.mark_failed(str(exc))
        return video
    except OUTAGE_ERRORS:
        raise  # the database went away (`_source_checked` writes): no fault of the video's
    except Exception as exc:  # an unexpected failure still leaves a readable reason
        logger.exception("extraction of video %s failed", video.pk)
        video.mark_failed(f"internal error: {type(exc).__name__}: {exc}")
        return video
    video.sha256 = video.sha256 or features.sha256
    return _features_write(video, features, embedder.name)


def _features_read(source: Path, embedder, *, sha256: bool):
    from ..features.extract import extract_features

    conf = settings.ASTRADUP
    return extract_features(
        source,
        embedder,
        embed_batch=embed_batch(embedder),
        dense_min_frames=conf["DENSE_MIN_FRAMES"],
        max_frames=conf["MAX_FRAMES"],
        frame_memory_mb=conf["FRAME_MEMORY_MB"],
        sha256=sha256,
        decode_device=decode_device(embedder),
    )


def _features_write(video: Video, features, backbone: str) -> Video:
    """Frames, audio hashes and the video's own fields in one transaction, unless the claim was
    ended meanwhile (taken for dead: another attempt writes). Returns the video as stored."""
    timings = dict(features.cpu)
    start = time.process_time()
    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=video.pk)
        if locked.status != Video.Status.PROCESSING or locked.claimed_by != video.claimed_by:
            return locked
        Frame.objects.filter(video_id=video.pk).delete()
        FrameView.objects.filter(video_id=video.pk).delete()
        AudioHash.objects.filter(video_id=video.pk).delete()
        _frames_copy(video.pk, features, backbone)
        _views_copy(video.pk, features, backbone)
        _audio_hashes_copy(video.pk, features.audio)
        _video_fields_set(locked, features, backbone, sha256=video.sha256)
        locked.status = Video.Status.READY
        locked.error = ""
        locked.heartbeat_at = None
        locked.finished_at = timezone.now()
        locked.matched_at = None
        timings["database"] = round(time.process_time() - start, 4)
        locked.timings = timings
        locked.save()
    return locked


def _frames_copy(video_id: int, features, backbone: str) -> None:
    """The video's frame rows, with their index projection where the backbone has one."""
    from ..features.frames import one_per_second
    from ..features.phash import bands

    frames, embeddings, thumbs = features.frames, features.embeddings, features.thumbs
    indexed = one_per_second(frames.times)
    basis = projection_basis(backbone)
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
                backbone,
                HalfVector(embeddings[i]),
                HalfVector(projected[i]) if projected is not None else None,
            ]
            for i, h in enumerate(features.hashes)
        ],
    )


def _views_copy(video_id: int, features, backbone: str) -> None:
    """The sub-picture rows of a laid-out video (none for most), indexed and informative as the
    frames they were cut from."""
    from ..features.frames import one_per_second

    if not features.views:
        return
    frames = features.frames
    indexed = one_per_second(frames.times)
    basis = projection_basis(backbone)
    rows = []
    for view in features.views:
        projected = project(view.embeddings, basis) if basis is not None else None
        for j, i in enumerate(view.idx):
            rows.append(
                [
                    video_id,
                    view.number,
                    int(i),
                    float(frames.times[i]),
                    bool(frames.informative[i]),
                    bool(indexed[i]),
                    view.hashes[j],
                    view.thumbs[j],
                    backbone,
                    HalfVector(view.embeddings[j]),
                    HalfVector(projected[j]) if projected is not None else None,
                ]
            )
    copy_rows("dedup_frameview", FRAMEVIEW_COLUMNS, rows)


def _audio_hashes_copy(video_id: int, audio) -> None:
    """The distinct values of the audio fingerprint, which candidate search joins on."""
    if audio is None or audio.fingerprint is None:
        return
    values = np.unique(audio.fingerprint.astype(np.uint32).view(np.int32))
    copy_rows("dedup_audiohash", AUDIOHASH_COLUMNS, [[video_id, int(v)] for v in values])


PROBED_FIELDS = (
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
)


def _video_fields_set(locked: Video, features, backbone: str, *, sha256: str) -> None:
    """The video's own fields from its features: what the probe read, the pooled embedding, the
    audio signals, and its byte-identical original where the file was hashed here."""
    probe, frames, embeddings, audio = features.probe, features.frames, features.embeddings, features.audio
    informative = embeddings[frames.informative] if frames.informative.any() else embeddings
    pooled = informative.mean(axis=0)
    pooled = pooled / (np.linalg.norm(pooled) + 1e-9)
    for name in PROBED_FIELDS:
        setattr(locked, name, getattr(probe, name))
    locked.size = probe.size
    if locked.sha256 != sha256 and sha256:  # hashed here: the file changed since ingest
        locked.identical_to = (
            Video.objects.filter(sha256=sha256, identical_to__isnull=True)
            .exclude(pk=locked.pk)
            .order_by("pk")
            .first()
        )
    locked.sha256 = sha256
    locked.crop = list(frames.crop)
    locked.layout = [view.as_json() for view in features.views]
    locked.embedding = pooled.tolist()
    locked.backbone = backbone
    locked.feature_version = FEATURE_VERSION
    locked.audio_fingerprint = None
    locked.mfcc = None
    locked.audio_silent = False
    if audio is not None:
        locked.audio_silent = audio.silent
        if audio.fingerprint is not None:
            locked.audio_fingerprint = audio.fingerprint.astype("<u4").tobytes()
        if audio.mfcc is not None:
            locked.mfcc = audio.mfcc.astype("<f4").tobytes()


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
