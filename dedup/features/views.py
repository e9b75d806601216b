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


def windows(times: np.ndarray) -> list[np.ndarray]:
    """Frame indices split into consecutive windows of WINDOW_SECONDS (a short tail joins the
    window before)."""
    if len(times) == 0:
        return []
    edges = np.floor((times - times[0]) / WINDOW_SECONDS).astype(int)
    out = [np.flatnonzero(edges == e) for e in np.unique(edges)]
    if len(out) > 1 and times[out[-1][-1]] - times[out[-1][0]] < MIN_WINDOW_SECONDS:
        out[-2:] = [np.concatenate(out[-2:])]
    return out


def plan_views(times: np.ndarray, images: list[np.ndarray]) -> list[tuple[str, Box, np.ndarray]]:
    """(kind, box, frame indices) of each distinct box the windows' layouts show, strongest
    first. Windows whose footage is still are skipped: every edge of a still picture persists,
    so its seams say nothing (a screen recording's panels are not sub-pictures)."""
    found: list[tuple[str, Box, list[np.ndarray]]] = []
    for idx in windows(times):
        if len(idx) < MIN_WINDOW_FRAMES:
            continue
        layout = detect_layout([images[i] for i in idx])
        if layout.still:
            continue
        for box in layout.views:
            if box.area > MAX_VIEW_AREA:
                continue
            same = next((f for f in found if f[1].iou(box) > SAME_BOX), None)
            if same is not None:
                same[2].append(idx)
            elif len(found) < MAX_VIEWS:
                found.append((layout.kind, box, [idx]))
    return [(kind, box, np.unique(np.concatenate(parts))) for kind, box, parts in found]


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
