"""Audio evidence: Chromaprint agreement at the best offset, and the MFCC summary of whole files."""

from typing import Any

import numpy as np

from ..features.audio import FP_ITEM_SECONDS
from .signals import VideoSignals, clip01

MIN_FP_OVERLAP = 16  # sub-fingerprints (~2 s)
MIN_FP_OVERLAP_SHORT = 8


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
    return clip01(1.0 - dist / 0.35)


def audio_score(
    a: VideoSignals, b: VideoSignals, offset_hint: float | None, *, whole_files: bool = True
) -> tuple[float | None, dict[str, Any]]:
    """Fingerprint agreement at the best offset, plus the MFCC summary when the match spans both
    whole files (a summary of a file says nothing about a clip inside it)."""
    if not (a.audio_usable and b.audio_usable):
        return None, {"audio_missing": True}
    parts: dict[str, Any] = {}
    fp_score = None
    if a.fingerprint is not None and b.fingerprint is not None:
        sim, off, n = fingerprint_similarity(a.fingerprint, b.fingerprint, offset_hint=offset_hint)
        if offset_hint is not None and sim < 0.5:
            sim2, off2, n2 = fingerprint_similarity(a.fingerprint, b.fingerprint)
            if sim2 > sim:
                sim, off, n = sim2, off2, n2
        fp_score = clip01((sim - 0.2) / 0.5) if n else None
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
