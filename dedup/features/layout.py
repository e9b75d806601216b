"""Layout of a composited frame: where a sub-picture (picture-in-picture, one side of a stack or
split screen, a picture inside wide pads) sits, so that it can be embedded as a view of its own.

A whole-frame vector of a copy shrunk to 35–65 % and laid over other footage lands far from its
source's (issue 26: picture-in-picture recall 0.008, stacks 0.115); the same backbone on the
sub-picture alone finds it. Embedding a fixed set of windows on every frame costs the network
once per window, so this detector says when and where such views are worth it.

What it looks for: the seams of a composite. Where two pictures meet, the grey level steps
across the same straight line in (nearly) every sampled frame, while the footage on either side
changes; edges inside footage move from frame to frame. Rows (columns) whose step persists along
a long run of columns (rows) are seams: one across the whole frame cuts a stack (split screen);
a horizontal and a vertical run that meet at a corner bound a picture-in-picture (or a padded
picture). Pure numpy/OpenCV on the sampled working-size frames; no Django.
"""

from dataclasses import dataclass

import numpy as np

STEP = 10.0  # grey levels a seam steps by (across two pixels: scaling smears it over one more)
PERSIST = 0.6  # share of the frames a seam's step must be seen in
MIN_RUN = 0.25  # a seam runs along at least this share of the frame's width (or height)
FULL_RUN = 0.9  # ... and one along this share cuts the frame in two (stack, split screen)
GAP = 4  # pixels a run may be broken for (a dark or flat stretch on both sides of the seam)
CORNER = 4  # pixels by which two seams may miss each other and still make a corner
MARGIN = 0.04  # seams this close to the frame's edge are the frame's edge (or bars), not a layout
MIN_PART = 0.3  # a side of a cut smaller than this share is not worth a view (a caption strip)
MIN_AREA, MAX_AREA = 0.08, 0.9  # a picture-in-picture's share of the frame's area
MAX_VIEWS = 4
MIN_SIDE = 32  # pixels: a frame narrower or lower than this is never laid out
MIN_MOTION = 2.0  # mean absolute grey change between frames under which the footage is still
MAX_FRAMES = 32
SIDE_MOTION = 2.0  # RMS grey change between frames under which both sides of a line are still
THIN = 4  # lines away from a seam where its steps are looked for again ...
MIN_CONTRAST = 0.15  # ... and must be this much rarer than on the seam
PAD_STILL = 0.5  # RMS grey change under which a side is a pad (no footage, not even its noise)
MAX_CORRELATION = 0.5  # changes on the two sides of a seam correlate less than this
# Seams seen in the window's summary pictures (the mean picture and the mean change per pixel)
# rather than frame by frame: an inset over busy moving footage (a zooming line drawing behind
# a picture-in-picture) has no step persisting at its edge in any one pixel, since the footage
# beside it is as often as bright as the inset as not; averaged over the window, the background
# blurs and the inset's level and activity stay its own, so both summaries step along its edge.
DEPTH = 3  # lines averaged on each side of a summary seam (the line itself is left out: smeared)
MEAN_STEP = 8.0  # grey levels the mean picture steps by across a summary seam
ACTIVITY_STEP = 0.3  # relative step of the mean change (|a - b| / (a + b)) across one ...
MIN_ACTIVITY = 1.0  # ... of at least this many grey levels
SUMMARY_ON = 0.6  # share of a short stretch along the line (SMOOTH pixels) that must step
SMOOTH = 9
SIDE_COVERED = 0.8  # share of each inner side of a box along which a seam steps
# lines away from a seam where a summary's step is looked for again: its sides average DEPTH
# lines, so the step is seen up to DEPTH lines off the seam (and one more where it smears)
WIDE = THIN + DEPTH + 1
MAX_LINES = 12  # seams per direction a box's sides are chosen from (the longest, strongest)
MAX_INSETS = 1  # boxes a window keeps (an inset stands alone; the rest were strips beside it)
INSET_OVERLAP = 0.3  # share of the smaller box two kept boxes may have in common
WITHIN = 0.9  # share of a box inside a larger valid one for it to be a piece of that one ...
NEARLY = 1.0  # ... whose score is at least this share of its own
MAX_BOX_CORRELATION = 0.5  # activity inside and outside an inset go together less than this
# share of the frame's shorter side left out of a box along its edges on the frame's edge when
# its activity is compared (the strip between an inset and the frame's edge, seams not looked for)
EDGE_STRIP = 2 * MARGIN


@dataclass(frozen=True)
class Box:
    """A region as fractions of the frame: rows y0..y1, columns x0..x1."""

    y0: float
    y1: float
    x0: float
    x1: float

    @property
    def area(self) -> float:
        return max(0.0, self.y1 - self.y0) * max(0.0, self.x1 - self.x0)

    def iou(self, other: "Box") -> float:
        h = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        w = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        inter = h * w
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def crop(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        top, bottom = round(self.y0 * h), max(round(self.y1 * h), round(self.y0 * h) + 2)
        left, right = round(self.x0 * w), max(round(self.x1 * w), round(self.x0 * w) + 2)
        return np.ascontiguousarray(image[top:bottom, left:right])


@dataclass(frozen=True)
class Layout:
    kind: str  # "plain", "stack" (a horizontal cut), "split" (a vertical cut), "pip" (a box)
    views: tuple[Box, ...]  # the sub-pictures to embed besides the whole frame, strongest first
    still: bool = False  # the footage barely moves: every edge persists, so seams say little
    kinds: tuple[str, ...] = ()  # the kind of each view ("stack", "split", "pip")


@dataclass(frozen=True)
class _Run:
    at: int  # the row (column) of the seam
    start: int  # first column (row) of the run
    end: int  # one past its last
    strength: float  # mean persistence along the run


@dataclass
class _Seams:
    """Per line (rows; columns transposed): how often a step is seen, and how the changes from
    frame to frame on the two sides of it go together (sums over frames, for correlations)."""

    persist: np.ndarray  # (lines - 2, length): share of frames with a step centred on line i + 1
    cross: np.ndarray  # (lines - 4, length): sum of change(i) * change(i + 4), centred on i + 2
    before: np.ndarray  # sum of change(i)^2
    after: np.ndarray  # sum of change(i + 4)^2
    pairs: int  # consecutive frame pairs summed
    summary: np.ndarray | None = None  # (lines - 2, length): share stepping in the summaries

    def transposed(self) -> "_Seams":
        summary = None if self.summary is None else self.summary.T
        return _Seams(self.persist.T, self.cross.T, self.before.T, self.after.T, self.pairs, summary)


def _zeros(h: int, w: int) -> np.ndarray:
    return np.zeros((h, w), np.float32)


def _seams(images: list[np.ndarray]) -> tuple[_Seams, _Seams, float]:
    """(row seams, column seams, the median mean absolute change between consecutive frames)."""
    import cv2

    h, w = images[0].shape[:2]
    rows = _Seams(_zeros(h - 2, w), _zeros(h - 4, w), _zeros(h - 4, w), _zeros(h - 4, w), 0)
    cols = _Seams(_zeros(h, w - 2), _zeros(h, w - 4), _zeros(h, w - 4), _zeros(h, w - 4), 0)
    motion, previous = [], None
    total, moved = _zeros(h, w), _zeros(h, w)
    for img in images:
        grey = (cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img).astype(np.float32)
        total += grey
        rows.persist += np.abs(grey[2:, :] - grey[:-2, :]) > STEP
        cols.persist += np.abs(grey[:, 2:] - grey[:, :-2]) > STEP
        if previous is not None:
            change = grey - previous
            moved += np.abs(change)
            motion.append(float(np.mean(np.abs(change))))
            rows.cross += change[:-4, :] * change[4:, :]
            rows.before += change[:-4, :] ** 2
            rows.after += change[4:, :] ** 2
            cols.cross += change[:, :-4] * change[:, 4:]
            cols.before += change[:, :-4] ** 2
            cols.after += change[:, 4:] ** 2
            rows.pairs += 1
            cols.pairs += 1
        previous = grey
    rows.persist /= len(images)
    cols.persist /= len(images)
    if motion:
        mean = total / len(images)
        activity = moved / len(motion)
        rows.summary = _summary_steps(mean, activity)
        cols.summary = _summary_steps(mean.T, activity.T).T
    return rows, cols.transposed(), float(np.median(motion)) if motion else 0.0


def _summary_steps(mean: np.ndarray, activity: np.ndarray) -> np.ndarray:
    """(h - 2, w): share of a stretch of SMOOTH pixels along row i + 1 where the mean picture or
    the mean change steps across it (DEPTH rows above against DEPTH rows below)."""
    import cv2

    h = mean.shape[0]

    def sides(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = np.concatenate(
            [np.zeros((1, img.shape[1]), np.float64), np.cumsum(img, axis=0, dtype=np.float64)]
        )
        line = np.arange(1, h - 1)  # the seam's line, between line - 1 and line + 1
        lo, hi = np.maximum(0, line - DEPTH), np.minimum(h, line + 1 + DEPTH)
        above = (c[line] - c[lo]) / (line - lo)[:, None]
        below = (c[hi] - c[line + 1]) / (hi - line - 1)[:, None]
        return above, below

    m_above, m_below = sides(mean)
    a_above, a_below = sides(activity)
    step = np.abs(m_above - m_below) >= MEAN_STEP
    diff = np.abs(a_above - a_below)
    step |= (diff >= ACTIVITY_STEP * (a_above + a_below)) & (diff >= MIN_ACTIVITY)
    return cv2.blur(step.astype(np.float32), (SMOOTH, 1), borderType=cv2.BORDER_REPLICATE)


def _independent(seams: _Seams, run: _Run, *, both_moving: bool = False) -> bool:
    """Whether the footage on the two sides of a run changes independently: a seam between two
    pictures, not an edge inside one. Inside one footage the changes two pixels either side of
    an edge go together (a pan, a cut, a flicker moves both); across a seam they do not, or one
    side is still (a pad, a paused picture) while the other moves. Edges of a still scene
    (a fixed camera's walls, a game's frame) have no change on either side and are no seam."""
    i = run.at - 2
    if i < 0 or i >= seams.cross.shape[0]:
        return False
    span = slice(run.start, run.end)
    before = float(seams.before[i, span].sum())
    after = float(seams.after[i, span].sum())
    n = max(1, seams.pairs * (run.end - run.start))
    moving, still = np.sqrt(max(before, after) / n), np.sqrt(min(before, after) / n)
    if still < PAD_STILL <= moving and not both_moving:
        return True  # a pad or a frozen picture beside footage that moves, however slowly
    if (still if both_moving else moving) < SIDE_MOTION:
        return False
    corr = float(seams.cross[i, span].sum()) / max(np.sqrt(before * after), 1e-6)
    return corr < MAX_CORRELATION


def _line_runs(score: np.ndarray, on_at: float, min_len: int, thin: int = THIN) -> list[_Run]:
    """Runs along the lines of `score` ((lines, length), centred on line i + 1) where it reaches
    `on_at`, gaps up to GAP closed, at least `min_len` long, and standing out from the lines
    THIN away on either side (a seam is a thin line; busy texture persists across a band)."""
    found: list[_Run] = []
    lines, length = score.shape
    margin = max(1, round(MARGIN * lines))
    for at in range(margin, lines - margin):
        on = score[at] >= on_at
        if on.sum() < min_len:
            continue
        start = None
        gap = 0
        for i in range(length + 1):
            if i < length and on[i]:
                if start is None:
                    start = i
                gap = 0
                last = i
                continue
            if start is None:
                continue
            gap += 1
            if i < length and gap <= GAP:
                continue
            strength = float(score[at, start : last + 1].mean())
            around = max(
                float(score[max(0, at - thin), start : last + 1].mean()),
                float(score[min(lines - 1, at + thin), start : last + 1].mean()),
            )
            if last + 1 - start >= min_len and strength - around >= MIN_CONTRAST:
                found.append(_Run(at + 1, start, last + 1, strength))
            start, gap = None, 0
    return found


def _runs(seams: _Seams, min_len: int, *, summary: bool = False) -> list[_Run]:
    """Seams along the lines of `seams`: runs of steps persisting frame by frame (or, with
    `summary`, of steps in the window's summary pictures) whose two sides change independently;
    one kept of runs on neighbouring lines (the strongest)."""
    if not summary:
        found = [r for r in _line_runs(seams.persist, PERSIST, min_len) if _independent(seams, r)]
    elif seams.summary is None:
        found = []
    else:
        # a still side's mean picture steps at every edge of it (a fixed camera's walls beside
        # people walking): summary seams are between two moving footages only (an inset over
        # other footage); pads and frozen pictures step frame by frame and are found above
        found = [
            r
            for r in _line_runs(seams.summary, SUMMARY_ON, min_len, WIDE)
            if _independent(seams, r, both_moving=True)
        ]
    # a seam smeared over two lines is one seam: keep the strongest of runs within 2 lines
    found.sort(key=lambda r: -r.strength * (r.end - r.start))
    kept: list[_Run] = []
    for run in found:
        if not any(abs(run.at - k.at) <= 2 and run.start < k.end and k.start < run.end for k in kept):
            kept.append(run)
    return kept


def _cuts(runs: list[_Run], size: int, across: int) -> list[tuple[float, float]]:
    """The parts (as fractions) worth a view that full-length seams cut: between neighbouring
    seams, and each seam's two sides. A stack is two pictures, and a line running across one
    of them (a caption band's edge, a horizon held by a fixed camera) is a seam too: the part
    between the two seams is then only a piece of the copy, while the side beyond the stack's
    seam is all of it (hard benchmark, seed 11: a 60 % stack cut at 42 % and 52 %)."""
    cuts = sorted({r.at for r in runs if r.end - r.start >= FULL_RUN * across})
    if not cuts:
        return []
    edges = [0, *cuts, size]
    parts = list(zip(edges, edges[1:], strict=False))
    if len(cuts) > 1:
        parts += [p for c in cuts for p in ((0, c), (c, size)) if p not in parts]
    return [(a / size, b / size) for a, b in parts if (b - a) >= MIN_PART * size]


def _corner_boxes(hruns: list[_Run], vruns: list[_Run], h: int, w: int) -> list[tuple[float, Box]]:
    """Boxes bounded by a horizontal and a vertical seam meeting at a corner, as far as the two
    run: a picture inside pads whose other sides border still parts of it (no independent
    change there, so `_boxes` does not take them)."""
    out = []
    for hr in hruns:
        if hr.end - hr.start >= FULL_RUN * w:
            continue
        for vr in vruns:
            if vr.end - vr.start >= FULL_RUN * h:
                continue
            meets_x = abs(vr.at - hr.start) <= CORNER or abs(vr.at - hr.end) <= CORNER
            meets_y = abs(hr.at - vr.start) <= CORNER or abs(hr.at - vr.end) <= CORNER
            if not (meets_x and meets_y):
                continue
            box = Box(vr.start / h, vr.end / h, hr.start / w, hr.end / w)
            aspect = (box.x1 - box.x0) * w / max(1e-6, (box.y1 - box.y0) * h)
            if MIN_AREA <= box.area <= MAX_AREA and 0.3 <= aspect <= 4.0:
                out.append((min(hr.strength, vr.strength), box))
    return out


def _coverage(seams: _Seams) -> np.ndarray:
    """(lines + 1, length + 1) prefix sums along each line of where a seam steps (frame by frame
    or in the summaries), a line either side counted (a scaled edge smears over two lines):
    row `at` of a seam is index `at`."""
    on = seams.persist >= PERSIST
    if seams.summary is not None:
        on |= seams.summary >= SUMMARY_ON
    near = on.copy()
    near[1:] |= on[:-1]
    near[:-1] |= on[1:]
    padded = np.zeros((near.shape[0] + 2, near.shape[1] + 1), np.int32)
    padded[1:-1, 1:] = np.cumsum(near, axis=1)
    return padded


def _covered(prefix: np.ndarray, at: int, start: int, end: int) -> float:
    if end <= start or not 0 <= at < prefix.shape[0]:
        return 0.0
    return float(prefix[at, end] - prefix[at, start]) / (end - start)


def _side(seams: _Seams, prefix: np.ndarray, at: int, start: int, end: int) -> float:
    """How well an inner side of a box is a seam: by how much more of it a step is seen along
    than along the lines WIDE away; 0 unless a step is seen along most of it (SIDE_COVERED),
    that stands out (MIN_CONTRAST) and the footage on its two sides changes independently."""
    mid = (start + end) // 2
    # along the whole side: a side running on past the inset's corner into the footage around
    # is covered along the inset's stretch only, and may reach SIDE_COVERED overall
    covered = min(_covered(prefix, at, start, mid), _covered(prefix, at, mid, end))
    # an inset's edge over busy footage stands out from the inset's side only (the footage
    # around steps in the summaries nearly everywhere); texture stands out from neither
    around = min(_covered(prefix, at - WIDE, start, end), _covered(prefix, at + WIDE, start, end))
    if covered < SIDE_COVERED or covered - around < MIN_CONTRAST:
        return 0.0
    return covered - around if _independent(seams, _Run(at, start, end, covered)) else 0.0


def _boxes(
    hruns: list[_Run], vruns: list[_Run], rows: _Seams, cols: _Seams, h: int, w: int
) -> list[tuple[float, Box]]:
    """Boxes (a picture-in-picture) whose every side is the frame's edge or a seam: candidate
    lines are the seams' rows and columns, and a box counts where a seam steps along most of
    each of its inner sides. A seam's run may overshoot the box's corner (footage beyond it
    lines up with the edge) or fall short of it, so the box is checked side by side rather than
    by where runs end. At least two inner sides (a box in a corner; a full-width cut is a
    stack, found by `_cuts`)."""
    hprefix, vprefix = _coverage(rows), _coverage(cols)
    top_h = sorted(hruns, key=lambda r: -r.strength * (r.end - r.start))[:MAX_LINES]
    top_v = sorted(vruns, key=lambda r: -r.strength * (r.end - r.start))[:MAX_LINES]
    ys = sorted({0, h, *(r.at for r in top_h)})
    xs = sorted({0, w, *(r.at for r in top_v)})
    out = []
    for i, y0 in enumerate(ys):
        for y1 in ys[i + 1 :]:
            for j, x0 in enumerate(xs):
                for x1 in xs[j + 1 :]:
                    box = Box(y0 / h, y1 / h, x0 / w, x1 / w)
                    aspect = (x1 - x0) / max(1, y1 - y0)
                    if not (MIN_AREA <= box.area <= MAX_AREA and 0.3 <= aspect <= 4.0):
                        continue
                    # a box in a corner or inside the frame: bounded by seams both ways (two
                    # vertical seams alone are a band, which `_cuts` handles when it is one)
                    across = [_side(rows, hprefix, y, x0, x1) for y in (y0, y1) if 0 < y < h]
                    if not across or min(across) <= 0.0:
                        continue
                    down = [_side(cols, vprefix, x, y0, y1) for x in (x0, x1) if 0 < x < w]
                    sides = across + down
                    if down and min(sides) > 0.0:
                        out.append((float(np.mean(sides)), box))
    return out


def _overlap(a: Box, b: Box) -> float:
    """The share of the smaller box that the two have in common."""
    h = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    w = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    return h * w / max(1e-9, min(a.area, b.area))


def _activity(images: list[np.ndarray]) -> np.ndarray:
    """(frames - 1, h + 1, w + 1): integral images of each frame's absolute change from the one
    before, so that a box's activity over time is four lookups a frame."""
    import cv2

    greys = [
        (cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img).astype(np.float32) for img in images
    ]
    return np.stack(
        [cv2.integral(np.abs(b - a), sdepth=cv2.CV_64F) for a, b in zip(greys, greys[1:], strict=False)]
    )


def _apart(activity: np.ndarray, box: Box) -> float:
    """How the activity inside a box goes with the activity outside it, frame pair by frame pair
    (correlation): footage cut or panned moves inside and out together; an inset laid over other
    footage moves on its own (its cuts and pauses are not the background's)."""
    h, w = activity.shape[1] - 1, activity.shape[2] - 1
    # a box reaching the frame's edge over an inset set in from it (by up to MARGIN, where
    # seams are not looked for) holds a strip of the footage around, which moves with the
    # outside: that strip is left out of the inside
    edge = EDGE_STRIP * min(h, w)
    top = round(box.y0 * h + (edge if box.y0 <= 0 else 0))
    bottom = round(box.y1 * h - (edge if box.y1 >= 1 else 0))
    left = round(box.x0 * w + (edge if box.x0 <= 0 else 0))
    right = round(box.x1 * w - (edge if box.x1 >= 1 else 0))
    inside_sum = (
        activity[:, bottom, right]
        - activity[:, top, right]
        - activity[:, bottom, left]
        + activity[:, top, left]
    )
    inside_area = max(1, (bottom - top) * (right - left))
    outside_area = max(1, h * w - inside_area)
    inside = inside_sum / inside_area
    outside = (activity[:, h, w] - inside_sum) / outside_area
    if len(inside) < 3 or inside.std() < 1e-6 or outside.std() < 1e-6:
        return 0.0  # one side does not change at all: nothing moves with it
    return float(np.corrcoef(inside, outside)[0, 1])


def detect_layout(images: list[np.ndarray], *, max_frames: int = MAX_FRAMES) -> Layout:
    """The layout of a run of sampled frames (RGB or grey uint8, one size; bars already cropped).

    The frames should span some seconds of footage: a seam is told from an edge of the footage
    by staying put while the footage moves. Footage that barely moves (`still`) is reported with
    the views found all the same, flagged, since its own edges persist too."""
    if len(images) < 2:
        return Layout("plain", ())
    if len(images) > max_frames:
        pick = np.linspace(0, len(images) - 1, max_frames).round().astype(int)
        images = [images[i] for i in pick]
    h, w = images[0].shape[:2]
    if min(h, w) < MIN_SIDE:
        # a sliver of a picture (a 16384 x 16 file is a few pixels high at the working width)
        # holds no second picture, and its seam statistics would have no lines to run on
        return Layout("plain", ())
    rows, cols, motion = _seams(images)
    hruns = _runs(rows, max(2, round(MIN_RUN * w)))
    vruns = _runs(cols, max(2, round(MIN_RUN * h)))
    still = motion < MIN_MOTION
    ranked: list[tuple[float, str, Box]] = []
    for y0, y1 in _cuts(hruns, h, w):
        ranked.append((1.0 + (y1 - y0), "stack", Box(y0, y1, 0.0, 1.0)))
    for x0, x1 in _cuts(vruns, w, h):
        ranked.append((1.0 + (x1 - x0), "split", Box(0.0, 1.0, x0, x1)))
    # a summary seam says where an inset's edges may be; full-frame cuts (stacks) are taken from
    # steps persisting frame by frame only: on plain footage, summary seams across the whole
    # frame (a horizon, a zooming pattern's rings) made 1 in 10 plain videos a stack on the hard
    # benchmark (seed 11), while a box needs a seam along each of its inner sides
    corner = _corner_boxes(hruns, vruns, h, w)
    hruns += _runs(rows, max(2, round(MIN_RUN * w)), summary=True)
    vruns += _runs(cols, max(2, round(MIN_RUN * h)), summary=True)
    boxes = _boxes(hruns, vruns, rows, cols, h, w) + corner
    if boxes:
        activity = _activity(images)
        # ranked by how clearly the sides stand out and how apart the inside moves
        apart = [(s, _apart(activity, b), b) for s, b in boxes]
        boxes = [(s * (1.0 - max(0.0, c)), b) for s, c, b in apart if c < MAX_BOX_CORRELATION]
    # the inset's own footage has lines that persist too (a horizon, a wall, a fractal's rim),
    # bounding boxes inside it: a box lying within a larger box whose sides stand out nearly as
    # clearly is one of those
    boxes = [
        (s, b)
        for s, b in boxes
        if not any(o.area > b.area and _overlap(b, o) >= WITHIN and t >= NEARLY * s for t, o in boxes)
    ]
    # boxes sharing a seam with a better one are mostly the footage around it, cut off by an edge
    # of that footage (a strip beside the inset): an inset stands alone, so those overlapping a
    # better box are dropped, and a window keeps its MAX_INSETS best
    insets: list[tuple[float, Box]] = []
    for strength, box in sorted(boxes, key=lambda r: -r[0]):
        if all(_overlap(box, b) <= INSET_OVERLAP for _, b in insets) and len(insets) < MAX_INSETS:
            insets.append((strength, box))
    for strength, box in insets:
        ranked.append((strength, "pip", box))
    ranked.sort(key=lambda r: -r[0])
    views: list[Box] = []
    kinds: list[str] = []
    for _, k, box in ranked:
        if any(box.iou(v) > 0.7 for v in views):
            continue
        views.append(box)
        kinds.append(k)
        if len(views) == MAX_VIEWS:
            break
    return Layout(kinds[0] if kinds else "plain", tuple(views), still, tuple(kinds))
