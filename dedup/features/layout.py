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

    def transposed(self) -> "_Seams":
        return _Seams(self.persist.T, self.cross.T, self.before.T, self.after.T, self.pairs)


def _zeros(h: int, w: int) -> np.ndarray:
    return np.zeros((h, w), np.float32)


def _seams(images: list[np.ndarray]) -> tuple[_Seams, _Seams, float]:
    """(row seams, column seams, the median mean absolute change between consecutive frames)."""
    import cv2

    h, w = images[0].shape[:2]
    rows = _Seams(_zeros(h - 2, w), _zeros(h - 4, w), _zeros(h - 4, w), _zeros(h - 4, w), 0)
    cols = _Seams(_zeros(h, w - 2), _zeros(h, w - 4), _zeros(h, w - 4), _zeros(h, w - 4), 0)
    motion, previous = [], None
    for img in images:
        grey = (cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img).astype(np.float32)
        rows.persist += np.abs(grey[2:, :] - grey[:-2, :]) > STEP
        cols.persist += np.abs(grey[:, 2:] - grey[:, :-2]) > STEP
        if previous is not None:
            change = grey - previous
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
    return rows, cols.transposed(), float(np.median(motion)) if motion else 0.0


def _independent(seams: _Seams, run: _Run) -> bool:
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
    if still < PAD_STILL <= moving:
        return True  # a pad or a frozen picture beside footage that moves, however slowly
    if moving < SIDE_MOTION:
        return False
    corr = float(seams.cross[i, span].sum()) / max(np.sqrt(before * after), 1e-6)
    return corr < MAX_CORRELATION


def _runs(seams: _Seams, min_len: int) -> list[_Run]:
    """Seams along the lines of `seams` ((lines, length)): runs of persistent steps at least
    `min_len` long, gaps up to GAP closed, whose two sides change independently; one kept of
    runs on neighbouring lines (the strongest)."""
    persist = seams.persist
    found: list[_Run] = []
    lines, length = persist.shape
    margin = max(1, round(MARGIN * lines))
    for at in range(margin, lines - margin):
        on = persist[at] >= PERSIST
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
            strength = float(persist[at, start : last + 1].mean())
            # a seam is a thin line of persistent steps; busy texture (a visualiser) persists
            # across a band of lines
            around = max(
                float(persist[max(0, at - THIN), start : last + 1].mean()),
                float(persist[min(lines - 1, at + THIN), start : last + 1].mean()),
            )
            if last + 1 - start >= min_len and strength - around >= MIN_CONTRAST:
                found.append(_Run(at + 1, start, last + 1, strength))
            start, gap = None, 0
    found = [r for r in found if _independent(seams, r)]
    # a seam smeared over two lines is one seam: keep the strongest of runs within 2 lines
    found.sort(key=lambda r: -r.strength * (r.end - r.start))
    kept: list[_Run] = []
    for run in found:
        if not any(abs(run.at - k.at) <= 2 and run.start < k.end and k.start < run.end for k in kept):
            kept.append(run)
    return kept


def _cuts(runs: list[_Run], size: int, across: int) -> list[tuple[float, float]]:
    """The parts (as fractions) between full-length seams worth a view."""
    cuts = sorted({r.at for r in runs if r.end - r.start >= FULL_RUN * across})
    edges = [0, *cuts, size]
    return (
        [(a / size, b / size) for a, b in zip(edges, edges[1:], strict=False) if (b - a) >= MIN_PART * size]
        if cuts
        else []
    )


def _boxes(hruns: list[_Run], vruns: list[_Run], h: int, w: int) -> list[tuple[float, Box]]:
    """Boxes bounded by a horizontal and a vertical seam meeting at a corner."""
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
    for strength, box in _boxes(hruns, vruns, h, w):
        ranked.append((strength, "pip", box))
    ranked.sort(key=lambda r: -r[0])
    views: list[Box] = []
    kind = "plain"
    for _, k, box in ranked:
        if any(box.iou(v) > 0.7 for v in views):
            continue
        if not views:
            kind = k
        views.append(box)
        if len(views) == MAX_VIEWS:
            break
    return Layout(kind, tuple(views), still)
