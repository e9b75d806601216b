"""Scoring: a video's signals read back, pairs scored and upserted, a ready video matched against
its candidates."""

import time

import numpy as np
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..features.embed import BACKBONES
from ..matching.signals import VideoSignals
from ..matching.subpicture import View, score_pair_views, view_signals
from ..models import Pair, ScoringConfig, Video
from .candidates import find_candidates
from .db import frame_rows, halfvecs, view_rows
from .groups import groups_refresh


def load_signals(video: Video, *, common: set[int] | None = None) -> VideoSignals:
    rows = frame_rows(video.pk)
    if rows:
        emb = halfvecs([r[4] for r in rows])
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


def load_views(video: Video, whole: VideoSignals) -> list[View]:
    """The video's sub-pictures (Video.layout) as views of its signals (see
    dedup.matching.subpicture): none, and nothing read, for a video without a layout."""
    if not video.layout:
        return []
    rows = view_rows(video.pk)
    n = len(whole.times)
    views = []
    for entry in video.layout:
        # a frame's idx is its position in the signals (extraction numbers them in order)
        mine = [r for r in rows if r[0] == entry["view"] and r[1] < n]
        if not mine:
            continue
        emb = halfvecs([r[2] for r in mine])
        emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9
        thumbs = (
            np.stack([np.frombuffer(r[4], dtype=np.uint8) for r in mine]) if all(r[4] for r in mine) else None
        )
        rows_at = np.array([r[1] for r in mine])
        signals = view_signals(
            whole,
            rows_at,
            emb,
            np.array([r[3] for r in mine], dtype=np.int64),
            thumbs,
        )
        views.append(View(int(entry["view"]), str(entry["kind"]), tuple(entry["box"]), signals, rows_at))
    return views


def pair_score(*, a: Video, b: Video, config: ScoringConfig) -> Pair:
    """Score one pair and upsert it."""
    return pairs_save([pair_scored(a=a, b=b, config=config)])[0]


def pair_scored(
    *,
    a: Video,
    b: Video,
    config: ScoringConfig,
    loaded: dict[int, VideoSignals] | None = None,
    views: dict[int, list[View]] | None = None,
    reasons: set | None = None,
) -> Pair:
    """The scored pair, not saved yet (see `pairs_save`). `loaded` holds signals already read (the
    video being matched against all its candidates is read once, not once per candidate), `views`
    its sub-pictures likewise (`load_views`)."""
    if a.pk > b.pk:
        a, b = b, a
    loaded = loaded if loaded is not None else {}
    signals_a = loaded.get(a.pk) or load_signals(a)
    signals_b = loaded.get(b.pk) or load_signals(b)
    views = views or {}
    views_a = views[a.pk] if a.pk in views else load_views(a, signals_a)
    views_b = views[b.pk] if b.pk in views else load_views(b, signals_b)
    result = score_pair_views(signals_a, signals_b, views_a, views_b, config.params())
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
    views = {video.pk: load_views(video, loaded[video.pk])}
    pairs = pairs_save(
        [
            pair_scored(
                a=video,
                b=others[other_id],
                config=config,
                loaded=loaded,
                views=views,
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


def pairs_score_again(pairs, config: ScoringConfig) -> tuple[int, int]:
    """Score these pairs again in full, their videos' signals read anew (pairs of a video that is
    not ready are left); returns (scored, how many changed label)."""
    scored = changed = 0
    for pair in pairs.select_related("video_a", "video_b"):
        if pair.video_a.status == Video.Status.READY and pair.video_b.status == Video.Status.READY:
            scored += 1
            changed += pair_score(a=pair.video_a, b=pair.video_b, config=config).label != pair.label
    return scored, changed
