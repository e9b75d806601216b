"""Temporal alignment of two sampled frame sequences under offset and speed change.

Each frame's few best partners above the frame threshold vote for the line
t_b = speed * t_a + offset they lie on (a Hough transform over a few speeds); the line is walked
and refined, and the matched frames along it form segments. This finds trims, added intros,
clips inside long videos, frame-rate changes (the timeline is unchanged) and speed changes
(0.5x-2x). The two sequences may be sampled
at different rates (short videos are sampled faster): everything is in seconds.
"""

from dataclasses import dataclass

import numpy as np

from ..features.frames import one_per_second

SPEEDS = (1.0, 0.8, 1.25, 2 / 3, 1.5, 0.5, 2.0)
OFFSET_BIN = 1.0
MAX_GAP = 3.0  # seconds of unmatched frames allowed inside one matched segment
VOTERS = 3  # best partners per frame that vote for a line
SPEED_VOTE_MARGIN = 1.2  # how much more another speed must gather than 1x
REFINED_SLACK = 0.3  # seconds beyond half a sampling step that the refined line may be off


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
    walked_b: bool = False  # one frame per second of b (the sparser) walked the line, not of a

    @property
    def n_matched(self) -> int:
        return int(self.matched_a.size)


def _median(x: np.ndarray) -> float:
    """np.median of a short 1-d array, value for value, without its general machinery (the walks
    take thousands of medians of a few dozen offsets per pair)."""
    s = np.sort(x)
    k = s.size // 2
    return float(s[k] if s.size % 2 else np.mean(s[k - 1 : k + 1]))


def sample_step(times: np.ndarray) -> float:
    """Seconds between consecutive sampled frames (1.0 at 1 fps)."""
    if times.size < 2:
        return 1.0
    return _median(np.diff(times))


def _walks_b(step_a: float, step_b: float) -> bool:
    """Whether alignment walks b's frames (b is sampled more sparsely than a)."""
    return step_b > step_a + 1e-6


def _follow(times_src, times_dst, masked, valid_src, predict, window, threshold):
    """For each valid source frame, the best destination frame near where the line puts it.

    All source frames at once: each one's window of destination frames (times are sorted) is
    found by bisection and read through a padded index, a few frames wide, so a walk costs the
    same handful of array operations for a ten-second clip as for an hour."""
    src = np.nonzero(valid_src)[0]
    if src.size == 0 or times_dst.size == 0:
        return [], [], []
    centre = predict(times_src[src])
    # a frame wider on each side than bisection says, then the exact test below decides, so a
    # time that lies on the window's edge is in or out exactly as |t - centre| <= window says
    lo = np.maximum(np.searchsorted(times_dst, centre - window, side="left") - 1, 0)
    hi = np.minimum(np.searchsorted(times_dst, centre + window, side="right") + 1, times_dst.size)
    width = int((hi - lo).max())
    if width <= 0:
        return [], [], []
    idx = lo[:, None] + np.arange(width)[None, :]
    inside = idx < hi[:, None]
    idx = np.minimum(idx, times_dst.size - 1)
    inside &= np.abs(times_dst[idx] - centre[:, None]) <= window
    sims = np.where(inside, masked[src[:, None], idx], -np.inf)
    best = np.argmax(sims, axis=1)  # the first of equals, in time order, as a scan would pick
    rows = np.arange(src.size)
    found = inside[rows, best] & (sims[rows, best] >= threshold)
    return src[found].tolist(), idx[rows, best][found].tolist(), sims[rows, best][found].tolist()


def frame_similarity(emb_a: np.ndarray, emb_b: np.ndarray, ph_a: np.ndarray, ph_b: np.ndarray) -> np.ndarray:
    """(n, m) similarity: the embedding cosine, lifted by pHash when the hashes are near-identical."""
    from ..features.phash import hamming_matrix

    cos = emb_a @ emb_b.T
    ham = hamming_matrix(ph_a, ph_b)
    # pHash below ~10/64 bits means the same picture; map 0 -> 1.0, 10 -> 0.8, beyond -> no lift.
    ph_sim = np.where(ham <= 10, 1.0 - ham / 50.0, 0.0)
    return np.maximum(cos, ph_sim).astype(np.float32)


def _walk_line(times_a, times_b, masked, valid_a, valid_b, speed, offset, step_a, step_b, threshold):
    """The matched frames along one line: (matched a, matched b, similarities, refined offset).

    One frame per second of the sparser sequence is walked: each finds the nearest moment among
    all frames of the other, so a copy cut at another phase still meets its own pictures, while
    the evidence downstream (matched frames, residual motion) keeps its 1 fps meaning. The Hough
    offset is only good to a bin, so a first walk with a wide window refines it and a second,
    narrower one keeps a segment from spilling past its true ends. Of the matches, the strongest
    run (gaps of up to MAX_GAP seconds bridged) is kept.
    """
    walk_b = _walks_b(step_a, step_b)
    walkers = valid_b & one_per_second(times_b) if walk_b else valid_a & one_per_second(times_a)

    def walk(off: float, window: float):
        if walk_b:
            mb_, ma_, s_ = _follow(
                times_b,
                times_a,
                masked.T,
                walkers,
                lambda t: (t - off) / speed,
                window * max(1.0 / speed, 1.0),
                threshold,
            )
            return ma_, mb_, s_
        return _follow(
            times_a,
            times_b,
            masked,
            walkers,
            lambda t: speed * t + off,
            window * max(speed, 1.0),
            threshold,
        )

    matched_a, matched_b, sims = walk(offset, 1.05)
    if len(matched_a) >= 2:
        offset = _median(times_b[matched_b] - speed * times_a[matched_a])
        # the walked frame's partner lies within half a step of the other sequence, give or take
        refined = walk(offset, 0.5 * (step_a if walk_b else step_b) + REFINED_SLACK)
        if len(refined[0]) >= 2:
            matched_a, matched_b, sims = refined
    if not matched_a:
        return None
    ma, mb, ms = np.array(matched_a), np.array(matched_b), np.array(sims, dtype=np.float32)
    order = np.argsort(times_a[ma], kind="stable")
    ma, mb, ms = ma[order], mb[order], ms[order]
    ta = times_a[ma]
    breaks = np.nonzero(np.diff(ta) > MAX_GAP)[0]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks + 1, [ma.size]])
    run = max(range(len(starts)), key=lambda r: float(ms[starts[r] : ends[r]].sum()))
    s, e = starts[run], ends[run]
    return ma[s:e], mb[s:e], ms[s:e], offset


def _voters(masked: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frame couples that vote for lines, and their weights.

    Only each frame's few best partners vote: in static footage every frame is above the
    threshold with every other, and the longest line (any speed) would win on sheer numbers."""
    k = min(VOTERS, masked.shape[0], masked.shape[1])
    row_kth = -np.partition(-masked, k - 1, axis=1)[:, k - 1 : k]
    col_kth = -np.partition(-masked, k - 1, axis=0)[k - 1 : k, :]
    ii, jj = np.nonzero((masked >= threshold) & ((masked >= row_kth) | (masked >= col_kth)))
    return ii, jj, masked[ii, jj] - threshold + 0.05


def _offset_votes(
    times_a: np.ndarray,
    times_b: np.ndarray,
    ii: np.ndarray,
    jj: np.ndarray,
    weights: np.ndarray,
    speed: float,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """(offsets, their 1 s bins, the first bin, the weighted votes per bin) of the voters at `speed`."""
    offsets = times_b[jj] - speed * times_a[ii]
    bins = np.round(offsets / OFFSET_BIN).astype(np.int64)
    lo = int(bins.min())
    hist = np.bincount(bins - lo, weights=weights).astype(np.float64, copy=False)  # weighted: floats
    return offsets, bins, lo, hist


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
    ii, jj, weights = _voters(masked, threshold)
    if ii.size == 0:
        return None
    lines = []  # (votes, mean similarity on the line, speed, offset)
    for speed in SPEEDS:
        offsets, bins, lo, hist = _offset_votes(times_a, times_b, ii, jj, weights, speed)
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
                _median(offsets[near]),
            )
        )
    # Real speed changes are rare and static footage lines up at any speed, so another speed must
    # beat 1x clearly on votes, and then again on the frames it actually matches, frame for frame.
    unit = lines[0]
    best = unit
    for line in lines[1:]:
        if line[0] > SPEED_VOTE_MARGIN * unit[0] and line[1] >= unit[1] - 0.005 and line[0] > best[0]:
            best = line
    step_a, step_b = sample_step(times_a), sample_step(times_b)

    def follow(line):
        return _walk_line(
            times_a, times_b, masked, valid_a, valid_b, line[2], line[3], step_a, step_b, threshold
        )

    chosen, line = follow(unit), unit
    if best is not unit:
        other = follow(best)
        if other is not None and (
            chosen is None
            or (
                other[2].sum() > SPEED_VOTE_MARGIN * chosen[2].sum()
                and other[2].mean() >= chosen[2].mean() - 0.005
            )
        ):
            chosen, line = other, best
    if chosen is None:
        return None
    return _alignment(times_a, times_b, chosen, line[2], line[0], _walks_b(step_a, step_b))


def align_at(
    times_a: np.ndarray,
    times_b: np.ndarray,
    sim: np.ndarray,
    valid_a: np.ndarray,
    valid_b: np.ndarray,
    threshold: float,
    offset: float,
) -> Alignment | None:
    """The frames matched along a speed-1 line given from elsewhere (the soundtrack's offset, or
    where the thumbnails move alike), walked and refined exactly as a line found by the vote."""
    if sim.size == 0:
        return None
    masked = np.where(valid_a[:, None] & valid_b[None, :], sim, -1.0)
    step_a, step_b = sample_step(times_a), sample_step(times_b)
    walked = _walk_line(times_a, times_b, masked, valid_a, valid_b, 1.0, offset, step_a, step_b, threshold)
    if walked is None:
        return None
    return _alignment(times_a, times_b, walked, 1.0, 0.0, _walks_b(step_a, step_b))


# Speed changes of edited copies (0.7x-1.5x) in steps of about 4 %: a line off by that drifts less
# than half a second over ten seconds, within the walk's window.
FINE_SPEEDS = tuple(float(x) for x in np.round(np.geomspace(0.7, 1.5, 20), 3))


def align_speed_search(
    times_a: np.ndarray,
    times_b: np.ndarray,
    sim: np.ndarray,
    valid_a: np.ndarray,
    valid_b: np.ndarray,
    threshold: float,
    skip: float | None = None,
    min_mean: float = 0.0,
) -> Alignment | None:
    """The best line over the fine speed grid, judged by what it matches when walked (the summed
    similarity of its matched frames, among lines whose matched frames are alike by `min_mean` on
    average), not by the vote.

    For a speed-changed copy too short for the vote to favour its speed (a ten-second clip at
    1.12x lines up at 1x nearly as well), walking the right speed meets each frame's own
    partner, so its matched frames are more and more alike; a wrong speed walks further through
    look-alike footage, matching more frames less well. `skip` is a speed already tried.
    The caller judges the line's evidence as for any other.
    """
    if sim.size == 0:
        return None
    masked = np.where(valid_a[:, None] & valid_b[None, :], sim, -1.0)
    ii, jj, weights = _voters(masked, threshold)
    if ii.size == 0:
        return None
    step_a, step_b = sample_step(times_a), sample_step(times_b)
    best, best_line = None, None
    for speed in FINE_SPEEDS:
        if skip is not None and abs(speed - skip) < 0.02:
            continue
        offsets, bins, lo, hist = _offset_votes(times_a, times_b, ii, jj, weights, speed)
        near = np.abs(bins - (int(np.argmax(hist)) + lo)) <= 1
        walked = _walk_line(
            times_a,
            times_b,
            masked,
            valid_a,
            valid_b,
            speed,
            _median(offsets[near]),
            step_a,
            step_b,
            threshold,
        )
        if walked is None or walked[2].mean() < min_mean:
            continue
        if best is None or walked[2].sum() > best[2].sum():
            best, best_line = walked, (float(hist.max()), speed)
    if best is None or best_line is None:
        return None
    return _alignment(times_a, times_b, best, best_line[1], best_line[0], _walks_b(step_a, step_b))


def _alignment(times_a, times_b, walked, speed: float, votes: float, walked_b: bool) -> Alignment:
    ma, mb, ms, offset = walked
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
        walked_b=walked_b,
    )
