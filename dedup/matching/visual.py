"""Visual evidence: how sure the pictures make us that an aligned segment is the same footage
(aligned-frame similarity, motion agreement of embeddings and thumbnails, sharpness), and the
thumbnails' own line where the embeddings cannot choose one."""

from dataclasses import replace

import numpy as np

from ..features.frames import one_per_second
from ..features.lowres import THUMB_SIDE
from .align import Alignment, sample_step
from .signals import VideoSignals, clip01

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
# thumbnail motion agreement under which a still shot's residual agreement is not trusted (copies of
# a fixed street camera agree from 0.13 up, other moments of a screen recording at 0.02 or less)
STILL_MOTION_FROM = 0.03
SHORT_MATCH = 5  # matched seconds below which motion agreement alone does not confirm a match
# Thumbnail motion agreement (low_res_motion) from which the footage counts as the same whatever
# the embeddings say; other moments of one scene or other footage stay below ~0.45 over 5+ s.
MOTION_FROM = 0.8
MOTION_RAMP = 0.1
MOTION_BASE = 0.9  # a blurred copy confirmed this way is a near duplicate at most, not exact
MOTION_MAX_WALKERS = 120


def visual_map(cos: float) -> float:
    return clip01((cos - VISUAL_FLOOR) / (VISUAL_CEIL - VISUAL_FLOOR))


def visual_evidence(
    matched_quality: float,
    residual: float | None,
    static: float,
    n_matched: int,
    audio: float | None = None,
    sharpness: float | None = None,
    motion: float | None = None,
    still: float | None = None,
    sound_differs: bool = False,
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
    base = visual_map(matched_quality)
    lifted = 0.0
    if motion is not None and n_matched >= SHORT_MATCH:
        lifted = clip01((motion - MOTION_FROM) / MOTION_RAMP)
        base = max(base, MOTION_BASE * lifted)
    if residual is None:
        # too few matched frames to judge motion
        support = 0.6
    else:
        need = RESIDUAL_MIN + RESIDUAL_STATIC_EXTRA * clip01(
            (static - RESIDUAL_STATIC_FROM) / (0.95 - RESIDUAL_STATIC_FROM)
        )
        support = clip01((residual - need) / RESIDUAL_RAMP)
        doubtful = max(static, still or 0.0) >= STATIC or sound_differs
        if doubtful and motion is not None and sharpness is not None:
            # In a still shot (a screen recording, slides, a title card) what changes is a
            # pointer, a cursor and coding noise, and that residual agrees between any two
            # moments of it. Under two different soundtracks, look-alike footage (procedural
            # visualisers, one game's scenes) has only the pictures' trend in common. There the
            # residual counts only where the thumbnails' own motion agrees too or the aligned
            # moment beats the moments around it. (The soundtrack never vetoes: pictures that
            # agree on those as well are a copy under another soundtrack.)
            support = min(
                support,
                max(clip01((motion - STILL_MOTION_FROM) / 0.1), clip01((sharpness - 0.005) / 0.03)),
            )
    support = max(support, clip01((matched_quality - 0.95) / 0.03))
    if sharpness is not None and static >= STATIC:
        # in a static shot, the aligned moment must beat the moments around it
        support = max(support, clip01((sharpness - 0.005) / 0.03))
    elif sharpness is not None and n_matched < SHORT_MATCH:
        # a few seconds of look-alike footage (another moment of one game, one scene) agree in
        # motion by chance; the aligned moment must also beat the moments around it
        support = min(support, clip01((sharpness - 0.005) / 0.03))
    if audio is not None:
        support = max(support, 0.8 * clip01((audio - 0.6) / 0.3))
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


def span_stillness(v: VideoSignals, start: float, end: float) -> float:
    """`self_similarity` of the frames between start and end: a still stretch inside a moving video
    (a screen recording after a game's intro) is still where it matched."""
    inside = (v.times >= start - 1e-6) & (v.times <= end + 1e-6)
    return self_similarity(replace(v, embeddings=v.embeddings[inside], informative=v.informative[inside]))


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
    if a.thumbs is None or b.thumbs is None:
        return None
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
