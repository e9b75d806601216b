"""Sub-picture views of one video: the layouts its sampled frames show, window by window, and the
crops of their boxes embedded as the whole frames are (issue 26, deliverable 2).

A copy shrunk into a picture-in-picture, or one side of a stack or split screen, has a
whole-frame vector far from its source's (same-moment cosine 0.49-0.63); the same backbone on
the box alone gives 0.80-0.95 (scripts/subpicture_probe.py). Each distinct box becomes a view:
its crops are embedded (same preparation, mirror sum), pHashed and thumbnailed for the frames
of the windows that show it, so only laid-out videos pay, and only for the stretches laid out.

Layouts are detected per window of WINDOW_SECONDS, so that a layout shown for part of a video
(a reaction video that goes full screen between clips) is found where it is, and the seams have
some seconds of footage moving behind them. Pure: no Django.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from .layout import Box, detect_layout
from .lowres import thumbnail
from .phash import phash64

WINDOW_SECONDS = 30.0
MIN_WINDOW_SECONDS = 10.0  # a shorter last window joins the one before (too little motion to see seams)
MIN_WINDOW_FRAMES = 4
MIN_SHOT_FRAMES = 5  # a cut is taken only where the shots on both sides have this many frames
CUT_SIZE = (32, 18)  # thumbnails compared across a cut (width, height)
CUT_CHANGE = 25.0  # mean grey change across a cut at least ...
CUT_RATIO = 3.0  # ... and this many times the video's median change between sampled frames
SAME_BOX = 0.7  # boxes of two windows overlapping this much (IoU) are one view
MAX_VIEWS = 4  # per video: each costs the network once per frame it covers
# a box this much of the frame is what the whole frame already shows (a stack cut at 5 % by a
# persistent status bar): a view of it costs the network and finds nothing the frame does not.
# On the hard benchmark (seed 11) 9 of the 14 layouts found on plain videos were such boxes,
# none of the picture-in-picture or stacked copies'
MAX_VIEW_AREA = 0.9


@dataclass(frozen=True)
class ViewFeatures:
    """One view: its box, the layout kind that gave it, and the features of its crops at the
    sampled frames `idx` (indices into the video's frames)."""

    number: int  # 1..MAX_VIEWS; 0 is the whole frame
    kind: str  # "pip", "stack", "split" (see dedup.features.layout.Layout)
    box: Box
    idx: np.ndarray  # (m,) int
    embeddings: np.ndarray  # (m, dim) L2-normalised
    hashes: list[int]
    thumbs: list[bytes]

    def as_json(self) -> dict[str, Any]:
        """What the video keeps of it (Video.layout): the box, its kind, and where it is shown."""
        return {
            "view": self.number,
            "kind": self.kind,
            "box": [round(v, 4) for v in (self.box.y0, self.box.y1, self.box.x0, self.box.x1)],
            "frames": int(len(self.idx)),
        }


def _timed_windows(times: np.ndarray, idx: np.ndarray) -> list[np.ndarray]:
    """`idx` (consecutive frame indices) split into windows of WINDOW_SECONDS (a short tail joins
    the window before)."""
    t = times[idx]
    edges = np.floor((t - t[0]) / WINDOW_SECONDS).astype(int)
    out = [idx[edges == e] for e in np.unique(edges)]
    if len(out) > 1 and times[out[-1][-1]] - times[out[-1][0]] < MIN_WINDOW_SECONDS:
        out[-2:] = [np.concatenate(out[-2:])]
    return out


def cuts(images: list[np.ndarray]) -> list[int]:
    """Frames (indices) that start a new shot, keeping shots of at least MIN_SHOT_FRAMES: where
    the picture changes at once far more than it does from frame to frame around it. A
    compilation's segment laid out as a picture-in-picture for 6 s of a 30 s window holds its
    seams in a fifth of the window's frames, too few to be told from the footage's edges; cut at
    its ends, it is a window of its own (the background changes at the cut as well)."""
    import cv2

    if len(images) < 2 * MIN_SHOT_FRAMES:
        return []
    small = np.stack(
        [
            cv2.resize(
                cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img,
                CUT_SIZE,
                interpolation=cv2.INTER_AREA,
            ).astype(np.float32)
            for img in images
        ]
    )
    change = np.abs(np.diff(small, axis=0)).mean(axis=(1, 2))
    typical = float(np.median(change))
    found: list[int] = []
    # strongest first, each kept only where it leaves both neighbouring shots long enough (fast
    # footage changes a lot between many frames: those are not cuts between layouts)
    for i in np.argsort(-change):
        if change[i] < max(CUT_CHANGE, CUT_RATIO * typical):
            break
        at = int(i) + 1
        bounds = sorted([0, *found, len(images)])
        before = max(b for b in bounds if b < at)
        after = min(b for b in bounds if b > at)
        if at - before >= MIN_SHOT_FRAMES and after - at >= MIN_SHOT_FRAMES:
            found.append(at)
    return sorted(found)


def windows(times: np.ndarray, images: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Frame indices split into shots (at `cuts` of `images`, where given), and each shot into
    consecutive windows of WINDOW_SECONDS (a short tail joins the window before)."""
    if len(times) == 0:
        return []
    bounds = [0, *(cuts(images) if images is not None else []), len(times)]
    out: list[np.ndarray] = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        out += _timed_windows(times, np.arange(start, end))
    return out


def plan_views(times: np.ndarray, images: list[np.ndarray]) -> list[tuple[str, Box, np.ndarray]]:
    """(kind, box, frame indices) of each distinct box the windows' layouts show, at most
    MAX_VIEWS: those shown longest and ranked highest in their windows first (a video's first
    windows do not use up its views). Windows whose footage is still are skipped: every edge of
    a still picture persists, so its seams say nothing (a screen recording's panels are not
    sub-pictures)."""
    found: list[tuple[str, Box, list[np.ndarray], list[float]]] = []
    for idx in windows(times, images):
        if len(idx) < MIN_WINDOW_FRAMES:
            continue
        layout = detect_layout([images[i] for i in idx])
        if layout.still:
            continue
        for rank, box in enumerate(layout.views):
            if box.area > MAX_VIEW_AREA:
                continue
            kind = layout.kinds[rank] if rank < len(layout.kinds) else layout.kind
            same = next((f for f in found if f[1].iou(box) > SAME_BOX), None)
            if same is None:
                same = (kind, box, [], [])
                found.append(same)
            same[2].append(idx)
            same[3].append(len(idx) / (1.0 + rank))
    found.sort(key=lambda f: -sum(f[3]))
    return [(kind, box, np.unique(np.concatenate(parts))) for kind, box, parts, _ in found[:MAX_VIEWS]]


def extract_views(
    times: np.ndarray, images: list[np.ndarray], embedder: Any, *, batch: int
) -> list[ViewFeatures]:
    """The views of one video's sampled frames (RGB, bars cropped), embedded by `embedder`."""
    out = []
    for number, (kind, box, idx) in enumerate(plan_views(times, images), start=1):
        crops = [box.crop(images[i]) for i in idx]
        out.append(
            ViewFeatures(
                number,
                kind,
                box,
                idx,
                embedder.embed(crops, batch=batch),
                [phash64(c) for c in crops],
                [thumbnail(c).tobytes() for c in crops],
            )
        )
    return out
