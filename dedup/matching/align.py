"""Temporal alignment of two 1 fps frame sequences under offset and speed change.

Every pair of frames above the frame threshold votes for the line t_b = speed * t_a + offset it
lies on (a Hough transform over a few speeds); the best line is refined, and the matched frames
along it form segments. This finds trims, added intros, clips inside long videos, frame-rate
changes (the timeline is unchanged) and speed changes (0.5x-2x).
"""

from dataclasses import dataclass

import numpy as np

SPEEDS = (1.0, 0.8, 1.25, 2 / 3, 1.5, 0.5, 2.0)
OFFSET_BIN = 1.0
MAX_GAP = 3.0
SPEED_VOTE_MARGIN = 1.2  # seconds of unmatched frames allowed inside one matched segment


@dataclass(frozen=True)
class Alignment:
    speed: float
    offset: float
    matched_a: np.ndarray  # indices into a's frames that matched along the line
    matched_b: np.ndarray  # the b frame each of them matched
    sims: np.ndarray  # similarity of each matched couple
    a_start: float
    a_end: float
    b_start: float
    b_end: float
    votes: float

    @property
    def n_matched(self) -> int:
        return int(self.matched_a.size)


def frame_similarity(emb_a: np.ndarray, emb_b: np.ndarray, ph_a: np.ndarray, ph_b: np.ndarray) -> np.ndarray:
    """(n, m) similarity: the embedding cosine, lifted by pHash when the hashes are near-identical."""
    from ..features.phash import hamming_matrix

    cos = emb_a @ emb_b.T
    ham = hamming_matrix(ph_a, ph_b)
    # pHash below ~10/64 bits means the same picture; map 0 -> 1.0, 10 -> 0.8, beyond -> no lift.
    ph_sim = np.where(ham <= 10, 1.0 - ham / 50.0, 0.0)
    return np.maximum(cos, ph_sim).astype(np.float32)


def align(
    times_a: np.ndarray,
    times_b: np.ndarray,
    sim: np.ndarray,
    valid_a: np.ndarray,
    valid_b: np.ndarray,
    threshold: float,
) -> Alignment | None:
    if sim.size == 0:
        return None
    masked = np.where(valid_a[:, None] & valid_b[None, :], sim, -1.0)
    ii, jj = np.nonzero(masked >= threshold)
    if ii.size == 0:
        return None
    weights = masked[ii, jj] - threshold + 0.05
    lines = []  # (votes, mean similarity on the line, speed, offset)
    for speed in SPEEDS:
        offsets = times_b[jj] - speed * times_a[ii]
        bins = np.round(offsets / OFFSET_BIN).astype(np.int64)
        lo = bins.min()
        hist = np.bincount(bins - lo, weights=weights)
        smooth = hist.copy()
        smooth[1:] += hist[:-1] * 0.5
        smooth[:-1] += hist[1:] * 0.5
        k = int(np.argmax(smooth))
        near = np.abs(bins - (k + lo)) <= 1
        lines.append(
            (
                float(smooth[k]),
                float(masked[ii[near], jj[near]].mean()),
                speed,
                float(np.median(offsets[near])),
            )
        )
    # Real speed changes are rare and static footage lines up at any speed, so another speed must
    # beat 1x clearly on votes *and* match at least as well frame for frame.
    unit = lines[0]
    best = unit
    for line in lines[1:]:
        if line[0] > SPEED_VOTE_MARGIN * unit[0] and line[1] >= unit[1] - 0.005 and line[0] > best[0]:
            best = line
    votes, _, speed, offset = best

    matched_a, matched_b, sims = [], [], []
    for i in np.nonzero(valid_a)[0]:
        predicted = speed * times_a[i] + offset
        window = np.nonzero(np.abs(times_b - predicted) <= 1.0 * max(speed, 1.0) + 0.05)[0]
        if window.size == 0:
            continue
        j = window[np.argmax(masked[i, window])]
        if masked[i, j] >= threshold:
            matched_a.append(i)
            matched_b.append(j)
            sims.append(masked[i, j])
    if not matched_a:
        return None
    ma, mb, ms = np.array(matched_a), np.array(matched_b), np.array(sims, dtype=np.float32)

    # Keep the strongest run of matches (gaps of up to MAX_GAP seconds bridged).
    ta = times_a[ma]
    breaks = np.nonzero(np.diff(ta) > MAX_GAP)[0]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks + 1, [ma.size]])
    run = max(range(len(starts)), key=lambda r: float(ms[starts[r] : ends[r]].sum()))
    s, e = starts[run], ends[run]
    ma, mb, ms = ma[s:e], mb[s:e], ms[s:e]
    return Alignment(
        speed=speed,
        offset=offset,
        matched_a=ma,
        matched_b=mb,
        sims=ms,
        a_start=float(times_a[ma].min()),
        a_end=float(times_a[ma].max()),
        b_start=float(times_b[mb].min()),
        b_end=float(times_b[mb].max()),
        votes=votes,
    )
