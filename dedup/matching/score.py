"""Scoring one candidate pair: visual (aligned frames), audio (Chromaprint + MFCC), metadata, fusion, label."""

import math
from dataclasses import dataclass

import numpy as np

from ..features.audio import FP_ITEM_SECONDS
from ..features.frames import one_per_second
from ..features.lowres import THUMB_SIDE
from .align import Alignment, align, align_at, frame_similarity, sample_step
from .signals import ScoringParams, VideoSignals

# Embedding cosine of aligned frames -> visual score. Below VISUAL_FLOOR frames are unrelated
# (different shots of one game or scene reach ~0.7), above VISUAL_CEIL they are the same picture.
VISUAL_FLOOR = 0.58
VISUAL_CEIL = 0.80
RESIDUAL_MIN = 0.05
RESIDUAL_STATIC_EXTRA = 0.2
# a street camera with passers-by (self-similarity ~0.7) already needs more than chance agreement
RESIDUAL_STATIC_FROM = 0.6
RESIDUAL_RAMP = 0.15
STATIC = 0.8
SHORT_MATCH = 5  # matched seconds below which motion agreement alone does not confirm a match
# Thumbnail motion agreement (low_res_motion) from which the footage counts as the same whatever
# the embeddings say; other moments of one scene or other footage stay below ~0.45 over 5+ s.
MOTION_FROM = 0.8
MOTION_RAMP = 0.1
MOTION_BASE = 0.9  # a blurred copy confirmed this way is a near duplicate at most, not exact
MOTION_MAX_WALKERS = 120
FULL_COVERAGE = 0.75
MIN_SEGMENT_SECONDS = 2.0
MIN_SHARED_MATCHES = 4  # matched seconds of a stretch shared by two videos that neither is mostly made of
BOILERPLATE_MAX_SECONDS = 6.0
BOILERPLATE_REST = 0.5  # the unmatched rest of each video, relative to the shared opener
MIN_FP_OVERLAP = 16  # sub-fingerprints (~2 s)
MIN_FP_OVERLAP_SHORT = 8
AUDIO_ALIGN_MIN = 0.6  # fingerprint agreement from which the soundtrack may propose the line
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
    breakdown: dict
    segments: dict


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _visual_map(cos: float) -> float:
    return _clip01((cos - VISUAL_FLOOR) / (VISUAL_CEIL - VISUAL_FLOOR))


def fingerprint_similarity(
    fa: np.ndarray,
    fb: np.ndarray,
    *,
    offset_hint: float | None = None,
    search: float = 3.0,
    min_overlap: int | None = None,
) -> tuple[float, float, int]:
    """Best (similarity, offset seconds, overlap items) of two Chromaprint sequences.

    Similarity is 1 - 2 * bit-error-rate over the overlap at the best offset (unrelated audio ~0.1-0.3).
    With an offset hint (from the visual alignment) only offsets near it are searched.
    """
    na, nb = len(fa), len(fb)
    if min_overlap is None and offset_hint is not None:
        # the pictures already fixed the offset to within a few seconds, so a chance match is
        # unlikely even on ~1 s of sub-fingerprints; a clip of a few seconds inside another
        # video overlaps by little more, as each file's last ~2 s yield no sub-fingerprints
        min_overlap = MIN_FP_OVERLAP_SHORT
    elif min_overlap is None:
        # short clips have few sub-fingerprints: compare what there is, down to ~1 s
        min_overlap = max(MIN_FP_OVERLAP_SHORT, min(MIN_FP_OVERLAP, int(0.8 * min(na, nb))))
    if na < min_overlap or nb < min_overlap:
        return 0.0, 0.0, 0
    if offset_hint is not None:
        centre = int(round(offset_hint / FP_ITEM_SECONDS))
        width = int(round(search / FP_ITEM_SECONDS))
        offsets = range(max(-(na - min_overlap), centre - width), min(nb - min_overlap, centre + width) + 1)
    else:
        offsets = range(-(na - min_overlap), nb - min_overlap + 1)
    offs = np.arange(offsets.start, offsets.stop)
    if not len(offs):
        return 0.0, 0.0, 0
    a0, b0 = np.maximum(0, -offs), np.maximum(0, offs)
    n = np.minimum(na - a0, nb - b0)
    ber = _bit_errors(fa, fb, offs) / np.maximum(n, 1) / 32.0
    sim = 1.0 - 2.0 * ber
    # a short overlap needs a clearer match to count as much as a long one
    sim *= np.minimum(1.0, 0.85 + 0.15 * n / 80)
    sim[n < min_overlap] = -np.inf
    best = int(np.argmax(sim))  # the first best offset, as a scan in offset order keeps it
    if not sim[best] > 0.0:
        return 0.0, 0.0, 0
    return float(sim[best]), int(offs[best]) * FP_ITEM_SECONDS, int(n[best])


def _bit_errors(fa: np.ndarray, fb: np.ndarray, offs: np.ndarray) -> np.ndarray:
    """Differing bits between fa and fb where they overlap at each of the consecutive offsets
    `offs` (item i of fa against item i + offset of fb), for all offsets at once: the longer sequence is padded with zeros so
    that the shorter one meets a full-length window at every offset, and the shorter one's bits
    that met padding are taken off again. One scan per offset in Python cost ≈ 6 ms per pair of
    one-minute videos, most of a video's scoring."""
    if len(fa) > len(fb):
        return _bit_errors(fb, fa, -offs[::-1])[::-1]
    na = len(fa)
    fa = fa.astype(fb.dtype, copy=False)
    pad = np.zeros(na, dtype=fb.dtype)
    windows = np.lib.stride_tricks.sliding_window_view(np.concatenate([pad, fb, pad]), na)
    errors = np.empty(len(offs), dtype=np.int64)
    step = max(1, (1 << 20) // max(na, 1))  # ≈ 1 M items at a time, whatever the lengths
    first = int(offs[0]) + na  # consecutive offsets: the windows are a slice
    for s in range(0, len(offs), step):
        chunk = windows[first + s : first + min(s + step, len(offs))]
        errors[s : s + step] = np.bitwise_count(chunk ^ fa).sum(axis=1, dtype=np.int64)
    a0 = np.maximum(0, -offs)
    n = np.minimum(na - a0, len(fb) - np.maximum(0, offs))
    bits = np.concatenate([[0], np.cumsum(np.bitwise_count(fa), dtype=np.int64)])
    return errors - (bits[-1] - (bits[a0 + n] - bits[a0]))


def _mfcc_similarity(ma: np.ndarray, mb: np.ndarray) -> float:
    # drop c0 (loudness): a volume change is still the same soundtrack
    a = np.concatenate([ma[1:20], ma[21:]])
    b = np.concatenate([mb[1:20], mb[21:]])
    dist = float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b) + 1e-6))
    return _clip01(1.0 - dist / 0.35)


def audio_score(
    a: VideoSignals, b: VideoSignals, offset_hint: float | None, *, whole_files: bool = True
) -> tuple[float | None, dict]:
    """Fingerprint agreement at the best offset, plus the MFCC summary when the match spans both
    whole files (a summary of a file says nothing about a clip inside it)."""
    if not (a.audio_usable and b.audio_usable):
        return None, {"audio_missing": True}
    parts: dict = {}
    fp_score = None
    if a.fingerprint is not None and b.fingerprint is not None:
        sim, off, n = fingerprint_similarity(a.fingerprint, b.fingerprint, offset_hint=offset_hint)
        if offset_hint is not None and sim < 0.5:
            sim2, off2, n2 = fingerprint_similarity(a.fingerprint, b.fingerprint)
            if sim2 > sim:
                sim, off, n = sim2, off2, n2
        fp_score = _clip01((sim - 0.2) / 0.5) if n else None
        parts.update(
            fingerprint=round(sim, 4),
            fingerprint_offset=round(off, 2),
            fingerprint_overlap_s=round(n * FP_ITEM_SECONDS, 2),
        )
    mfcc_score = None
    if whole_files and a.mfcc is not None and b.mfcc is not None:
        mfcc_score = _mfcc_similarity(a.mfcc, b.mfcc)
        parts["mfcc"] = round(mfcc_score, 4)
    if fp_score is None and mfcc_score is None:
        return None, {"audio_missing": True, **parts}
    if fp_score is None:
        return mfcc_score, parts
    if mfcc_score is None:
        return fp_score, parts
    return 0.85 * fp_score + 0.15 * mfcc_score, parts


def metadata_score(a: VideoSignals, b: VideoSignals) -> tuple[float, dict]:
    parts = {}
    delta = abs(a.duration - b.duration)
    longest = max(a.duration, b.duration, 1e-3)
    parts["duration"] = 1.0 if delta <= 5.0 else _clip01(1.0 - (delta - 5.0) / longest)
    if a.width and a.height and b.width and b.height:
        # as players show them: an anamorphic 1440 x 1080 broadcast and its 1920 x 1080 copy are both 16:9
        aspect = abs(math.log((a.width * a.sar / a.height) / (b.width * b.sar / b.height)))
        pixels = min(a.width * a.height, b.width * b.height) / max(a.width * a.height, b.width * b.height)
        parts["resolution"] = 0.5 * _clip01(1.0 - aspect / math.log(1.5)) + 0.5 * math.sqrt(pixels)
    if a.size and b.size:
        ratio = min(a.size, b.size) / max(a.size, b.size)
        parts["size"] = 1.0 if ratio >= 1 / 1.2 else ratio
    if a.fps and b.fps:
        parts["fps"] = 1.0 if abs(a.fps - b.fps) < 0.5 else min(a.fps, b.fps) / max(a.fps, b.fps)
    value = float(np.mean(list(parts.values()))) if parts else 0.0
    return value, {k: round(v, 4) for k, v in parts.items()}


def fuse(params: ScoringParams, visual: float, audio: float | None, metadata: float | None) -> float:
    terms = [(params.visual_weight, visual)]
    if audio is not None:
        terms.append((params.audio_weight, audio))
    if metadata is not None:
        terms.append((params.metadata_weight, metadata))
    total = sum(w for w, _ in terms)
    return float(sum(w * v for w, v in terms) / total) if total > 0 else 0.0


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
            {"byte_identical": True, "metadata_parts": meta_parts, "fusion": inputs.as_dict()},
            {"a": [[0.0, a.duration]], "b": [[0.0, b.duration]], "coverage_a": 1.0, "coverage_b": 1.0},
        )

    sim = frame_similarity(a.embeddings, b.embeddings, a.phashes, b.phashes)
    alignment = align(a.times, b.times, sim, a.informative, b.informative, params.frame_match_threshold)
    if alignment is None:
        result = _score_unaligned(a, b, sim, meta, meta_parts, params)
    else:
        result = _score_aligned(a, b, sim, alignment, meta, meta_parts, params)
    if _segment_evidence(result) >= RESCUE_BELOW:
        return result
    # the pictures' own line is doubtful: the soundtrack, or in footage that looks alike
    # throughout the thumbnails' motion, may say where the copy lies. The line whose pictures
    # convince most wins; that choice does not depend on the config, so stored fusion inputs
    # re-score under another config exactly as a full score would.
    for rescue in (
        _score_at_audio_offset(a, b, sim, alignment, meta, meta_parts, params),
        _score_at_motion_offset(a, b, sim, alignment, meta, meta_parts, params),
    ):
        if rescue is not None and _segment_evidence(rescue) > _segment_evidence(result):
            result = rescue
    return result


def _segment_evidence(result: PairScore) -> float:
    return float(result.breakdown["fusion"]["visual_segment"])


def _score_at_audio_offset(a, b, sim, alignment, meta, meta_parts, params) -> PairScore | None:
    """The pictures along the line the soundtrack gives, when the pictures' own line is doubtful.

    In look-alike footage (a music visualiser, one game's cut-scenes) a short clip that is also
    blurred or recoloured can lose the vote to another moment; the soundtrack, where both
    videos carry it, says which moment. The pictures along that line are judged as any
    others, so the same song over different footage still scores as different footage.
    """
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
        a.times, b.times, sim, a.informative, b.informative, params.frame_match_threshold, fp_offset
    )
    if al is None:
        return None
    result = _score_aligned(a, b, sim, al, meta, meta_parts, params)
    result.breakdown["aligned_by"] = "audio"
    return result


def _score_at_motion_offset(a, b, sim, alignment, meta, meta_parts, params) -> PairScore | None:
    """The pictures along the line where the thumbnails move alike, in footage that looks alike
    throughout (a visualiser, a fixed camera), where the embeddings cannot tell one moment from
    another and the vote may pick the wrong one. Speed 1 only; the line is judged as any other."""
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
    al = align_at(a.times, b.times, sim, a.informative, b.informative, params.frame_match_threshold, offset)
    if al is None:
        return None
    result = _score_aligned(a, b, sim, al, meta, meta_parts, params)
    result.breakdown["aligned_by"] = "motion"
    return result


def motion_offset(a: VideoSignals, b: VideoSignals) -> tuple[float, float] | None:
    """(agreement, offset) of the speed-1 line along which the thumbnails move most alike, over
    at least SHORT_MATCH seconds; offsets are tried at the finer of the two sampling steps.

    One frame per second of the shorter video walks each line, at most MOTION_MAX_WALKERS of
    them spread over it: the cost is offsets x walkers, so a clip inside an hour-long video
    stays cheap and two long videos cost no more than a two-minute clip would.
    """
    if a.times.size and b.times.size and a.times[-1] > b.times[-1]:
        found = motion_offset(b, a)
        return None if found is None else (found[0], -found[1])
    ia = np.nonzero(a.informative & one_per_second(a.times))[0]
    if ia.size < SHORT_MATCH or b.times.size < SHORT_MATCH:
        return None
    if ia.size > MOTION_MAX_WALKERS:
        ia = ia[np.linspace(0, ia.size - 1, MOTION_MAX_WALKERS).round().astype(int)]
    ta = a.times[ia]
    step = min(sample_step(a.times), sample_step(b.times))
    na = _normalised(a.thumbs[ia])
    nb = _normalised(b.thumbs)
    best = None
    for offset in np.arange(-ta[-1], b.times[-1] - ta[0] + step, step):
        jb = _nearest(b.times, ta + offset)
        on_line = (np.abs(b.times[jb] - (ta + offset)) <= 0.5 * step + 0.05) & b.informative[jb]
        if on_line.sum() < SHORT_MATCH:
            continue
        agreement = _residual_cosine(na[on_line], nb[jb[on_line]])
        if best is None or agreement > best[0]:
            best = (agreement, float(offset))
    return best


def _score_unaligned(a, b, sim, meta, meta_parts, params) -> PairScore:
    valid = sim[np.ix_(a.informative, b.informative)] if a.informative.any() and b.informative.any() else sim
    best_cos = float(valid.max()) if valid.size else 0.0
    visual = _visual_map(best_cos) * 0.5
    audio, audio_parts = audio_score(a, b, None)
    inputs = FusionInputs(visual, visual, audio, meta, aligned=False)
    score, label = classify_one(inputs, params)
    breakdown = {"metadata_parts": meta_parts}
    breakdown.update(
        audio_parts, best_frame_similarity=round(best_cos, 4), matched_frames=0, fusion=inputs.as_dict()
    )
    segments = {"a": [], "b": [], "coverage_a": 0.0, "coverage_b": 0.0}
    return PairScore(score, label, round(visual, 4), _round(audio), round(meta, 4), breakdown, segments)


def _score_aligned(a, b, sim, al: Alignment, meta, meta_parts, params) -> PairScore:
    breakdown: dict = {"metadata_parts": meta_parts}
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
    v_segment = visual_evidence(
        matched_quality, residual, static, al.n_matched, audio if on_line else None, sharpness, motion
    )

    # alignment walks one frame per second of the sparser video: the last matched one stands for a second
    tail_a, tail_b = (1.0 / al.speed, 1.0) if al.walked_b else (1.0, al.speed)
    seg_a = _span_seconds(al.a_start, al.a_end, a.duration, tail_a)
    seg_b = _span_seconds(al.b_start, al.b_end, b.duration, tail_b)
    segments = {
        "a": [[round(al.a_start, 2), round(min(a.duration, al.a_end + tail_a), 2)]],
        "b": [[round(al.b_start, 2), round(min(b.duration, al.b_end + tail_b), 2)]],
        "coverage_a": round(cov_a, 4),
        "coverage_b": round(cov_b, 4),
        "offset": round(al.offset, 2),
        "speed": round(al.speed, 3),
    }
    breakdown.update(
        audio_parts,
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
    breakdown["boilerplate"] = bool(boilerplate)

    full = min(cov_a, cov_b) >= FULL_COVERAGE
    visual_full = v_segment * min(1.0, min(cov_a, cov_b) / FULL_COVERAGE)
    # a stretch shared by two otherwise different videos must last; a clip that is (nearly) all
    # of one video counts whatever its length
    long_enough = (min(seg_a, seg_b) >= MIN_SEGMENT_SECONDS and al.n_matched >= MIN_SHARED_MATCHES) or max(
        cov_a, cov_b
    ) >= FULL_COVERAGE
    inputs = FusionInputs(
        visual_full, v_segment, audio, meta, full=full, long_enough=long_enough, boilerplate=boilerplate
    )
    breakdown["segment_score"] = round(float(segment_scores(inputs.arrays(), params)[0]), 4)
    breakdown["fusion"] = inputs.as_dict()
    score, label = classify_one(inputs, params)
    return PairScore(score, label, round(visual_full, 4), _round(audio), round(meta, 4), breakdown, segments)


# ---------------------------------------------------------------- fusion and labels
#
# Everything after alignment that depends on the ScoringConfig lives here, vectorised, so that a
# new config (from calibration or an admin) re-scores stored pairs exactly as score_pair would,
# without reading any video again.

LABELS = ("exact", "near_duplicate", "partial", "similar", "different")
EXACT, NEAR, PARTIAL, SIMILAR, DIFFERENT = range(5)
DUPLICATE_CODES = (EXACT, NEAR, PARTIAL)


@dataclass(frozen=True)
class FusionInputs:
    """The per-pair quantities fusion and labelling need; stored on every pair as breakdown['fusion']."""

    visual_full: float  # visual evidence scaled by how much of both videos the match covers
    visual_segment: float  # visual evidence inside the matched segment
    audio: float | None
    metadata: float | None
    aligned: bool = True
    full: bool = False  # the match covers (nearly) all of both videos
    long_enough: bool = False  # the segment is long enough to be a partial copy
    boilerplate: bool = False  # a short shared opener/closer, not a copy
    identical: bool = False  # byte-identical files

    def as_dict(self) -> dict:
        return {
            "visual_full": round(self.visual_full, 6),
            "visual_segment": round(self.visual_segment, 6),
            "audio": None if self.audio is None else round(self.audio, 6),
            "metadata": None if self.metadata is None else round(self.metadata, 6),
            "aligned": self.aligned,
            "full": self.full,
            "long_enough": self.long_enough,
            "boilerplate": self.boilerplate,
            "identical": self.identical,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FusionInputs":
        return cls(
            visual_full=d["visual_full"],
            visual_segment=d["visual_segment"],
            audio=d.get("audio"),
            metadata=d.get("metadata"),
            aligned=bool(d.get("aligned", True)),
            full=bool(d.get("full")),
            long_enough=bool(d.get("long_enough")),
            boilerplate=bool(d.get("boilerplate")),
            identical=bool(d.get("identical")),
        )

    def arrays(self) -> "FusionArrays":
        return FusionArrays.stack([self])


@dataclass(frozen=True)
class FusionArrays:
    """Many pairs' FusionInputs as columns (missing audio/metadata as NaN)."""

    visual_full: np.ndarray
    visual_segment: np.ndarray
    audio: np.ndarray
    metadata: np.ndarray
    aligned: np.ndarray
    full: np.ndarray
    long_enough: np.ndarray
    boilerplate: np.ndarray
    identical: np.ndarray

    @classmethod
    def stack(cls, items: list[FusionInputs]) -> "FusionArrays":
        def col(name, dtype=float):
            values = [getattr(i, name) for i in items]
            if dtype is float:
                return np.array([np.nan if v is None else v for v in values], dtype=float)
            return np.array(values, dtype=bool)

        return cls(
            col("visual_full"),
            col("visual_segment"),
            col("audio"),
            col("metadata"),
            *(col(n, bool) for n in ("aligned", "full", "long_enough", "boilerplate", "identical")),
        )

    def __len__(self) -> int:
        return len(self.visual_full)

    def take(self, idx: np.ndarray) -> "FusionArrays":
        return FusionArrays(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def fuse_arrays(params: ScoringParams, visual, audio, metadata) -> np.ndarray:
    """Weighted mean over the modalities present on both sides (NaN = missing), like `fuse`."""
    has_a, has_m = ~np.isnan(audio), ~np.isnan(metadata)
    num = params.visual_weight * visual
    num = num + np.where(has_a, params.audio_weight * np.nan_to_num(audio), 0.0)
    num = num + np.where(has_m, params.metadata_weight * np.nan_to_num(metadata), 0.0)
    den = (
        params.visual_weight
        + np.where(has_a, params.audio_weight, 0.0)
        + np.where(has_m, params.metadata_weight, 0.0)
    )
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def segment_scores(x: FusionArrays, params: ScoringParams) -> np.ndarray:
    # audio alone never makes a duplicate: cap the fused score by what the pictures support
    no_meta = np.full(len(x), np.nan)
    return np.minimum(fuse_arrays(params, x.visual_segment, x.audio, no_meta), x.visual_segment + 0.1)


def classify(x: FusionArrays, params: ScoringParams) -> tuple[np.ndarray, np.ndarray]:
    """Scores and label codes (indexes into LABELS) for many pairs under one config."""
    fused = fuse_arrays(params, x.visual_full, x.audio, x.metadata)
    score_full = np.where(x.aligned, np.minimum(fused, x.visual_full + 0.1), fused)
    segment = segment_scores(x, params)
    by_threshold = np.select(
        [
            score_full >= params.exact_threshold,
            score_full >= params.near_threshold,
            score_full >= params.similar_threshold,
        ],
        [EXACT, NEAR, SIMILAR],
        DIFFERENT,
    )
    whole = x.aligned & x.full & ~x.boilerplate
    promoted = (
        (by_threshold >= SIMILAR) & (segment >= params.partial_threshold) & (segment >= params.near_threshold)
    )
    whole_label = np.where(promoted, NEAR, by_threshold)
    partial = x.aligned & ~whole & x.long_enough & ~x.boilerplate & (segment >= params.partial_threshold)
    rest_score = np.where(
        x.aligned & x.boilerplate, np.minimum(score_full, params.similar_threshold - 0.01), score_full
    )
    rest_label = np.where(rest_score >= params.similar_threshold, SIMILAR, DIFFERENT)
    score = np.select(
        [x.identical, whole, partial], [1.0, score_full, np.maximum(score_full, segment * 0.95)], rest_score
    )
    label = np.select([x.identical, whole, partial], [EXACT, whole_label, PARTIAL], rest_label)
    return np.round(score, 4), label


def classify_one(inputs: FusionInputs, params: ScoringParams) -> tuple[float, str]:
    score, label = classify(inputs.arrays(), params)
    return float(score[0]), LABELS[int(label[0])]


def visual_evidence(
    matched_quality: float,
    residual: float | None,
    static: float,
    n_matched: int,
    audio: float | None = None,
    sharpness: float | None = None,
    motion: float | None = None,
) -> float:
    """How sure the pictures make us that the aligned segment is one and the same footage.

    Aligned-frame similarity alone is fooled by look-alike footage (music visualisers, one game's
    cut-scenes, a fixed street camera at another moment); the residual agreement tells those
    apart, and must be stronger the more static both videos are. Near-identical pictures, or
    the same soundtrack at the same offset, also confirm the match (never on their own: the
    result is scaled by how alike the aligned pictures are). Low-resolution motion that agrees
    over several seconds (`low_res_motion`) stands for the same footage even where blur has
    pulled the embeddings apart, up to a near (not exact) duplicate.
    """
    base = _visual_map(matched_quality)
    lifted = 0.0
    if motion is not None and n_matched >= SHORT_MATCH:
        lifted = _clip01((motion - MOTION_FROM) / MOTION_RAMP)
        base = max(base, MOTION_BASE * lifted)
    if residual is None:
        # too few matched frames to judge motion
        support = 0.6
    else:
        need = RESIDUAL_MIN + RESIDUAL_STATIC_EXTRA * _clip01(
            (static - RESIDUAL_STATIC_FROM) / (0.95 - RESIDUAL_STATIC_FROM)
        )
        support = _clip01((residual - need) / RESIDUAL_RAMP)
    support = max(support, _clip01((matched_quality - 0.95) / 0.03))
    if sharpness is not None and static >= STATIC:
        # in a static shot, the aligned moment must beat the moments around it
        support = max(support, _clip01((sharpness - 0.005) / 0.03))
    elif sharpness is not None and n_matched < SHORT_MATCH:
        # a few seconds of look-alike footage (another moment of one game, one scene) agree in
        # motion by chance; the aligned moment must also beat the moments around it
        support = min(support, _clip01((sharpness - 0.005) / 0.03))
    if audio is not None:
        support = max(support, 0.8 * _clip01((audio - 0.6) / 0.3))
    support = max(support, lifted)
    return base * (0.4 + 0.6 * support) * min(1.0, n_matched / 2.0)


def alignment_sharpness(a: VideoSignals, b: VideoSignals, al: Alignment, sim: np.ndarray) -> float | None:
    """How much better the aligned frame matches than frames two or more seconds away from it.

    The same moment beats its neighbours; another moment of a static shot does not.
    """
    gaps = []
    for i, j in zip(al.matched_a, al.matched_b, strict=True):
        far = b.informative & (np.abs(b.times - b.times[j]) >= 2.0)
        if far.any():
            gaps.append(float(sim[i, j] - sim[i, far].max()))
    return float(np.median(gaps)) if gaps else None


def self_similarity(v: VideoSignals) -> float:
    """Mean similarity between a video's own frames: near 1 for a fixed camera on a static scene."""
    e = v.embeddings[v.informative]
    if len(e) < 2:
        return 0.0
    # the mean off-diagonal cosine without the n x n matrix: the sum of all pairwise products is
    # |sum of e|^2 and the diagonal's is sum of |e_i|^2 (an hour at 1 fps: 13M products, not 16G)
    n = len(e)
    total = e.sum(axis=0, dtype=np.float64)
    return float((total @ total - np.einsum("ij,ij->", e, e, dtype=np.float64)) / (n * (n - 1)))


def residual_agreement(a: VideoSignals, b: VideoSignals, al: Alignment) -> float | None:
    """Agreement of what changes along the aligned segment.

    Subtracting the segment's mean frame embedding leaves what moves in it. Two copies of one
    moment move alike; two moments of one static shot (a fixed street camera) look alike
    frame by frame but their residuals do not agree. The mean is taken over the aligned frames
    only, so an unrelated intro or outro around a clip does not shift it.
    """
    if al.n_matched < 3:
        return None
    ia, ib = _on_line(a, b, al)
    return _residual_cosine(a.embeddings[ia], b.embeddings[ib])


def low_res_motion(a: VideoSignals, b: VideoSignals, al: Alignment) -> float | None:
    """Agreement of how the 16x16 grey thumbnails change along the aligned frames, the better of
    b as it is and mirrored.

    The residual agreement of the embeddings (above) at thumbnail scale: each thumbnail is
    normalised (brightness and contrast changes drop out) and the segment's mean removed. Blur,
    noise and re-encoding barely touch it; other moments of one scene, or other footage, do
    not move alike. A crop or a zoom changes it, so it only ever adds evidence.
    """
    if a.thumbs is None or b.thumbs is None or al.n_matched < SHORT_MATCH:
        return None
    ia, ib = _on_line(a, b, al)
    ta = _normalised(a.thumbs[ia])
    tb = b.thumbs[ib]
    mirrored = tb.reshape(-1, THUMB_SIDE, THUMB_SIDE)[:, :, ::-1].reshape(tb.shape)
    return max(_residual_cosine(ta, _normalised(tb)), _residual_cosine(ta, _normalised(mirrored)))


def _on_line(a: VideoSignals, b: VideoSignals, al: Alignment) -> tuple[np.ndarray, np.ndarray]:
    """The walked frames and the frames of the other video nearest to where the line puts them.

    Not each walked frame's best partner: picking the most similar of the nearby frames biases
    any agreement measured on them upwards (other moments of a fixed camera then agree by
    selection), and under blur the best partner is a neighbouring frame as often as not.
    """
    if al.walked_b:
        ib = al.matched_b
        return _nearest(a.times, (b.times[ib] - al.offset) / al.speed), ib
    ia = al.matched_a
    return ia, _nearest(b.times, al.speed * a.times[ia] + al.offset)


def _nearest(times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    idx = np.clip(np.searchsorted(times, targets), 1, max(1, times.size - 1))
    before = times[idx - 1]
    after = times[np.minimum(idx, times.size - 1)]
    return np.where(np.abs(targets - before) <= np.abs(after - targets), idx - 1, idx).clip(0, times.size - 1)


def _normalised(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    x -= x.mean(axis=1, keepdims=True)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)


def _residual_cosine(ea: np.ndarray, eb: np.ndarray) -> float:
    ra = ea - ea.mean(axis=0)
    rb = eb - eb.mean(axis=0)
    norms = np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1) + 1e-9
    return float(np.mean(np.sum(ra * rb, axis=1) / norms))


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
