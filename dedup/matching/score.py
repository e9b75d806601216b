"""Scoring one candidate pair: the pictures aligned, each modality's evidence along the line
(`visual`, `audio`, metadata here), fused and labelled (`fusion`), written as the pair's typed
breakdown and segments (`breakdown`)."""

import math
from dataclasses import dataclass, replace

import numpy as np

from .align import Alignment, align, align_at, align_speed_search, frame_similarity
from .audio import MIN_FP_OVERLAP, MIN_FP_OVERLAP_SHORT, audio_score, fingerprint_similarity
from .breakdown import Breakdown, Segments
from .fusion import (
    DUPLICATE_CODES,
    LABELS,
    FusionArrays,
    FusionInputs,
    classify,
    classify_one,
    fuse,
    segment_scores,
)
from .signals import ScoringParams, VideoSignals, clip01
from .visual import (
    MOTION_FROM,
    SHORT_MATCH,
    STATIC,
    alignment_sharpness,
    low_res_motion,
    motion_offset,
    residual_agreement,
    self_similarity,
    span_stillness,
    visual_evidence,
    visual_map,
)

# the fusion and audio names callers import from here (dedup.services, review, calibration)
__all__ = [
    "DUPLICATE_CODES",
    "LABELS",
    "MIN_FP_OVERLAP",
    "MIN_FP_OVERLAP_SHORT",
    "FusionArrays",
    "FusionInputs",
    "PairScore",
    "classify",
    "classify_one",
    "fingerprint_similarity",
    "fuse",
    "metadata_score",
    "score_pair",
]

FULL_COVERAGE = 0.75
MIN_SEGMENT_SECONDS = 2.0
MIN_SHARED_MATCHES = 4  # matched seconds of a stretch shared by two videos that neither is mostly made of
BOILERPLATE_MAX_SECONDS = 6.0
# a match at the start (or end) of both videos up to this long may be a series' shared opener
OPENER_MAX_SECONDS = 20.0
BOILERPLATE_REST = 0.5  # the unmatched rest of each video, relative to the shared opener
AUDIO_ALIGN_MIN = 0.6  # fingerprint agreement from which the soundtrack may propose the line
# how much more alike, on average, the frames along another speed's line must be than along the
# vote's line: walking a copy at its own speed meets each frame's own partner
SPEED_LINE_MARGIN = 0.01
SPEED_LINE_SHARPNESS = 0.02  # ... and its aligned moments must beat their neighbours by this
SPEED_LINE_MOTION = 0.08  # ... and the thumbnails' changes agree at least this much
RESCUE_BELOW = 0.8  # visual evidence on the pictures' own line under which other lines are tried
AUDIO_OFFSET_SLACK = 1.0  # seconds between the soundtrack's and the pictures' offsets that still agree
DEFAULT_PARAMS = ScoringParams()


@dataclass(frozen=True)
class PairScore:
    score: float
    label: str
    visual: float | None
    audio: float | None
    metadata: float
    breakdown: Breakdown
    segments: Segments


@dataclass(frozen=True)
class ScoreContext:
    """What every scoring step of one pair shares: the two videos, their frame similarities, the
    metadata evidence (the same on every line) and the config."""

    a: VideoSignals
    b: VideoSignals
    sim: np.ndarray  # (len(a.times), len(b.times)) frame similarity
    meta: float
    meta_parts: dict[str, float]
    params: ScoringParams


def metadata_score(a: VideoSignals, b: VideoSignals) -> tuple[float, dict[str, float]]:
    parts: dict[str, float] = {}
    delta = abs(a.duration - b.duration)
    longest = max(a.duration, b.duration, 1e-3)
    parts["duration"] = 1.0 if delta <= 5.0 else clip01(1.0 - (delta - 5.0) / longest)
    if a.width and a.height and b.width and b.height:
        # as players show them: an anamorphic 1440 x 1080 broadcast and its 1920 x 1080 copy are both 16:9
        aspect = abs(math.log((a.width * a.sar / a.height) / (b.width * b.sar / b.height)))
        pixels = min(a.width * a.height, b.width * b.height) / max(a.width * a.height, b.width * b.height)
        parts["resolution"] = 0.5 * clip01(1.0 - aspect / math.log(1.5)) + 0.5 * math.sqrt(pixels)
    if a.size and b.size:
        ratio = min(a.size, b.size) / max(a.size, b.size)
        parts["size"] = 1.0 if ratio >= 1 / 1.2 else ratio
    if a.fps and b.fps:
        parts["fps"] = 1.0 if abs(a.fps - b.fps) < 0.5 else min(a.fps, b.fps) / max(a.fps, b.fps)
    value = float(np.mean(list(parts.values()))) if parts else 0.0
    return value, {k: round(v, 4) for k, v in parts.items()}


def _coverage(times: np.ndarray, valid: np.ndarray, start: float, end: float) -> float:
    n_valid = int(valid.sum())
    if n_valid == 0:
        return 0.0
    inside = valid & (times >= start - 1e-6) & (times <= end + 1e-6)
    return float(inside.sum() / n_valid)


def _span_seconds(start: float, end: float, duration: float, step: float = 1.0) -> float:
    """Seconds from the first matched frame to the end of the moment the last one stands for."""
    return min(duration, end - start + step) if duration else end - start + step


def score_pair(a: VideoSignals, b: VideoSignals, params: ScoringParams = DEFAULT_PARAMS) -> PairScore:
    meta, meta_parts = metadata_score(a, b)
    if a.sha256 and a.sha256 == b.sha256:
        inputs = FusionInputs(1.0, 1.0, 1.0 if a.audio_usable else None, 1.0, identical=True)
        return PairScore(
            1.0,
            "exact",
            1.0,
            inputs.audio,
            1.0,
            Breakdown(byte_identical=True, metadata_parts=meta_parts, fusion=inputs),
            Segments(a=[[0.0, a.duration]], b=[[0.0, b.duration]], coverage_a=1.0, coverage_b=1.0),
        )

    sim = frame_similarity(a.embeddings, b.embeddings, a.phashes, b.phashes)
    ctx = ScoreContext(a, b, sim, meta, meta_parts, params)
    alignment = align(a.times, b.times, sim, a.informative, b.informative, params.frame_match_threshold)
    if alignment is None:
        result = _score_unaligned(ctx)
    else:
        result = _score_aligned(ctx, alignment)
    if _segment_evidence(result) < RESCUE_BELOW:
        result = _rescued(ctx, alignment, result)
    return replace(result, breakdown=replace(result.breakdown, soundtrack=soundtrack_role(result)))


def _rescued(ctx: ScoreContext, alignment: Alignment | None, result: PairScore) -> PairScore:
    # the pictures' own line is doubtful: the soundtrack, or in footage that looks alike
    # throughout the thumbnails' motion, may say where the copy lies. The line whose pictures
    # convince most wins; that choice does not depend on the config, so stored fusion inputs
    # re-score under another config exactly as a full score would.
    for rescue in (
        _score_at_audio_offset(ctx, alignment),
        _score_at_motion_offset(ctx, alignment),
        _score_at_other_speed(ctx, alignment),
    ):
        if rescue is not None and _segment_evidence(rescue) > _segment_evidence(result):
            result = rescue
    return result


# fused audio at or above this agrees with the pictures (a fingerprint bit error rate of about 0.2)
SOUNDTRACK_AGREES = 0.5


def soundtrack_role(result: PairScore) -> str:
    """What the soundtrack did for this pair, in the breakdown's words (it supports, never vetoes)."""
    fusion = result.breakdown.fusion
    if fusion is None or fusion.audio is None:
        return "missing"
    if fusion.audio >= SOUNDTRACK_AGREES:
        return "agrees"
    if abs((result.segments.speed or 1.0) - 1.0) > 0.01:
        return "speed_changed"  # a speed change shifts the pitch: the fingerprints cannot meet
    if fusion.visual_segment >= SOUNDTRACK_AGREES:
        return "replaced"  # the same pictures under another soundtrack
    return "differs"


def _segment_evidence(result: PairScore) -> float:
    # as stored (rounded): a re-score from the stored inputs picks the same line
    fusion = result.breakdown.fusion
    assert fusion is not None  # the scorer always writes it
    return float(fusion.as_dict()["visual_segment"])


def _aligned_by(result: PairScore, how: str) -> PairScore:
    return replace(result, breakdown=replace(result.breakdown, aligned_by=how))


def _score_at_audio_offset(ctx: ScoreContext, alignment: Alignment | None) -> PairScore | None:
    """The pictures along the line the soundtrack gives, when the pictures' own line is doubtful.

    In look-alike footage (a music visualiser, one game's cut-scenes) a short clip that is also
    blurred or recoloured can lose the vote to another moment; the soundtrack, where both
    videos carry it, says which moment. The pictures along that line are judged as any
    others, so the same song over different footage still scores as different footage.
    """
    a, b = ctx.a, ctx.b
    if not (a.audio_usable and b.audio_usable) or a.fingerprint is None or b.fingerprint is None:
        return None
    fp_sim, fp_offset, _n = fingerprint_similarity(
        a.fingerprint, b.fingerprint, min_overlap=MIN_FP_OVERLAP_SHORT
    )
    if fp_sim < AUDIO_ALIGN_MIN:
        return None
    if (
        alignment is not None
        and alignment.speed == 1.0
        and abs(alignment.offset - fp_offset) <= AUDIO_OFFSET_SLACK
    ):
        return None  # the pictures already looked there
    al = align_at(
        a.times, b.times, ctx.sim, a.informative, b.informative, ctx.params.frame_match_threshold, fp_offset
    )
    if al is None:
        return None
    return _aligned_by(_score_aligned(ctx, al), "audio")


def _score_at_other_speed(ctx: ScoreContext, alignment: Alignment | None) -> PairScore | None:
    """The pictures along the best line at another speed (0.7x-1.5x), when the vote's line is
    doubtful: a short copy played faster or slower lines up at 1x nearly as well as at its own
    speed, and along the wrong line its motion cannot agree. The line is judged as any other."""
    a, b, threshold = ctx.a, ctx.b, ctx.params.frame_match_threshold
    valid = ctx.sim[np.ix_(a.informative, b.informative)]
    if (
        valid.size == 0
        or max(int((valid.max(axis=1) >= threshold).sum()), int((valid.max(axis=0) >= threshold).sum()))
        < SHORT_MATCH
    ):
        return None  # fewer frames than a line needs have any partner at all: no speed will do
    al = align_speed_search(
        a.times,
        b.times,
        ctx.sim,
        a.informative,
        b.informative,
        threshold,
        skip=None if alignment is None else alignment.speed,
        min_mean=0.0 if alignment is None else float(alignment.sims.mean()) + SPEED_LINE_MARGIN,
    )
    if al is None or (alignment is not None and al.sims.sum() < alignment.sims.sum()):
        return None  # no speed meets as many pictures, each more alike, as the line already judged
    result = _score_aligned(ctx, al)
    # Along a copy's own speed each frame meets its own partner: it beats the moments around it and
    # the thumbnails change alike. A wrong speed through look-alike footage (textures, one
    # visualiser, a shared intro running into other footage) meets frames no better than their
    # neighbours. With twenty speeds tried, only a line showing both counts.
    sharp, motion = result.breakdown.sharpness, result.breakdown.low_res_motion
    if sharp is None or sharp < SPEED_LINE_SHARPNESS or motion is None or motion < SPEED_LINE_MOTION:
        return None
    return _aligned_by(result, "speed")


def _score_at_motion_offset(ctx: ScoreContext, alignment: Alignment | None) -> PairScore | None:
    """The pictures along the line where the thumbnails move alike, in footage that looks alike
    throughout (a visualiser, a fixed camera), where the embeddings cannot tell one moment from
    another and the vote may pick the wrong one. Speed 1 only; the line is judged as any other."""
    a, b = ctx.a, ctx.b
    if a.thumbs is None or b.thumbs is None:
        return None
    if min(self_similarity(a), self_similarity(b)) < STATIC:
        return None
    found = motion_offset(a, b)
    if found is None or found[0] < MOTION_FROM:
        return None
    offset = found[1]
    if alignment is not None and alignment.speed == 1.0 and abs(alignment.offset - offset) <= 0.5:
        return None  # the pictures already looked there
    al = align_at(
        a.times, b.times, ctx.sim, a.informative, b.informative, ctx.params.frame_match_threshold, offset
    )
    if al is None:
        return None
    return _aligned_by(_score_aligned(ctx, al), "motion")


def _score_unaligned(ctx: ScoreContext) -> PairScore:
    a, b, sim = ctx.a, ctx.b, ctx.sim
    valid = sim[np.ix_(a.informative, b.informative)] if a.informative.any() and b.informative.any() else sim
    best_cos = float(valid.max()) if valid.size else 0.0
    visual = visual_map(best_cos) * 0.5
    audio, audio_parts = audio_score(a, b, None)
    inputs = FusionInputs(visual, visual, audio, ctx.meta, aligned=False)
    score, label = classify_one(inputs, ctx.params)
    breakdown = Breakdown(
        metadata_parts=ctx.meta_parts,
        **audio_parts,
        best_frame_similarity=round(best_cos, 4),
        matched_frames=0,
        fusion=inputs,
    )
    return PairScore(score, label, round(visual, 4), _round(audio), round(ctx.meta, 4), breakdown, Segments())


def _score_aligned(ctx: ScoreContext, al: Alignment) -> PairScore:
    a, b, sim, meta = ctx.a, ctx.b, ctx.sim, ctx.meta
    # every informative frame inside the matched span counts, matched or not, so a patchy match scores lower
    span_a = a.informative & (a.times >= al.a_start - 1e-6) & (a.times <= al.a_end + 1e-6)
    best_in_row = np.where(b.informative[None, :], sim, -1.0)[span_a].max(axis=1) if span_a.any() else al.sims
    frame_quality = float(np.mean(np.clip(best_in_row, 0, 1)))
    matched_quality = float(al.sims.mean())
    cov_a = _coverage(a.times, a.informative, al.a_start, al.a_end)
    cov_b = _coverage(b.times, b.informative, al.b_start, al.b_end)
    audio, audio_parts = audio_score(
        a, b, al.offset if al.speed == 1.0 else None, whole_files=min(cov_a, cov_b) >= FULL_COVERAGE
    )
    residual = residual_agreement(a, b, al)
    static = min(self_similarity(a), self_similarity(b))
    sharpness = alignment_sharpness(a, b, al, sim)
    motion = low_res_motion(a, b, al)
    # the soundtrack confirms the pictures' line only if it lines up there too (the same song
    # elsewhere in a look-alike video says nothing about this moment, and a speed change shifts
    # the soundtrack's pitch; the audio-led rescue looks at the soundtrack's own line)
    fp_offset = audio_parts.get("fingerprint_offset")
    on_line = fp_offset is None or (al.speed == 1.0 and abs(fp_offset - al.offset) <= AUDIO_OFFSET_SLACK)
    still = min(span_stillness(a, al.a_start, al.a_end), span_stillness(b, al.b_start, al.b_end))
    v_segment = visual_evidence(
        matched_quality,
        residual,
        static,
        al.n_matched,
        audio if on_line else None,
        sharpness,
        motion,
        still=still,
        sound_differs=audio is not None and audio < SOUNDTRACK_AGREES,
    )

    # alignment walks one frame per second of the sparser video: the last matched one stands for a second
    tail_a, tail_b = (1.0 / al.speed, 1.0) if al.walked_b else (1.0, al.speed)
    seg_a = _span_seconds(al.a_start, al.a_end, a.duration, tail_a)
    seg_b = _span_seconds(al.b_start, al.b_end, b.duration, tail_b)
    segments = Segments(
        a=[[round(al.a_start, 2), round(min(a.duration, al.a_end + tail_a), 2)]],
        b=[[round(al.b_start, 2), round(min(b.duration, al.b_end + tail_b), 2)]],
        coverage_a=round(cov_a, 4),
        coverage_b=round(cov_b, 4),
        offset=round(al.offset, 2),
        speed=round(al.speed, 3),
    )

    # A short segment at the very start (or end) of both videos, with most of both unmatched, is a
    # shared intro/outro (studio card, channel logo), not a copy.
    rest_a = a.duration - seg_a
    rest_b = b.duration - seg_b
    at_start = al.a_start <= 1.01 and al.b_start <= 1.01
    at_end = al.a_end >= a.duration - 1.6 and al.b_end >= b.duration - 1.6
    boilerplate = (
        (at_start or at_end)
        and max(seg_a, seg_b) <= BOILERPLATE_MAX_SECONDS
        and rest_a >= max(2.0, BOILERPLATE_REST * seg_a)
        and rest_b >= max(2.0, BOILERPLATE_REST * seg_b)
    )

    full = min(cov_a, cov_b) >= FULL_COVERAGE
    visual_full = v_segment * min(1.0, min(cov_a, cov_b) / FULL_COVERAGE)
    # a stretch shared by two otherwise different videos must last; a clip that is (nearly) all
    # of one video counts whatever its length
    long_enough = (min(seg_a, seg_b) >= MIN_SEGMENT_SECONDS and al.n_matched >= MIN_SHARED_MATCHES) or max(
        cov_a, cov_b
    ) >= FULL_COVERAGE
    # An opener is a small part of both videos. A stretch that is (nearly) all of one video is
    # that video, cut into the other (the first excerpt of a montage, a clip at the start of a
    # compilation), and a montage's own music over it is a replaced soundtrack, not an opener's
    # (nor is an opener ever `full`, which asks as much of both).
    opener = (
        (at_start or at_end) and max(seg_a, seg_b) <= OPENER_MAX_SECONDS and max(cov_a, cov_b) < FULL_COVERAGE
    )
    inputs = FusionInputs(
        visual_full,
        v_segment,
        audio,
        meta,
        full=full,
        long_enough=long_enough,
        boilerplate=boilerplate,
        opener=opener,
    )
    breakdown = Breakdown(
        metadata_parts=ctx.meta_parts,
        **audio_parts,
        residual=None if residual is None else round(residual, 4),
        static=round(static, 4),
        sharpness=None if sharpness is None else round(sharpness, 4),
        low_res_motion=None if motion is None else round(motion, 4),
        embedding_quality=round(frame_quality, 4),
        matched_quality=round(matched_quality, 4),
        matched_frames=al.n_matched,
        phash_close_frames=int(
            (
                np.bitwise_count((a.phashes[al.matched_a] ^ b.phashes[al.matched_b]).view(np.uint64)) <= 10
            ).sum()
        ),
        boilerplate=bool(boilerplate),
        segment_score=round(float(segment_scores(inputs.arrays(), ctx.params)[0]), 4),
        fusion=inputs,
    )
    score, label = classify_one(inputs, ctx.params)
    return PairScore(score, label, round(visual_full, 4), _round(audio), round(meta, 4), breakdown, segments)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
