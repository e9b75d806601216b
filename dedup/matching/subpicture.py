"""Scoring a pair through its sub-pictures (issue 26, deliverable 2): a copy laid into a
picture-in-picture, or one side of a stack or split screen, is compared by its box.

A laid-out video has, besides its whole frames, one view per box (dedup.features.views): the
same video's signals with each frame that shows the box replaced by its crop (embedding, pHash,
thumbnail), every other frame left whole, so that times, coverage and segments stay the video's
own. The pair is scored whole against whole first (exactly as without views); only where that
line's visual evidence is doubtful are the views of either side scored against the other's
whole frames, and the line whose pictures convince most wins, as the scorer's own rescue lines
are chosen: by segment evidence, which does not depend on the config. Pure: no Django."""

from dataclasses import dataclass, replace

import numpy as np

from .align import frame_similarity
from .breakdown import SubPicture
from .score import RESCUE_BELOW, PairScore, score_pair
from .signals import ScoringParams, VideoSignals

DEFAULT_PARAMS = ScoringParams()
# A view's line replaces the whole frames' only with at least this visual evidence: below it no
# label could change (fusion caps the score at the visual evidence + 0.1), and a view that merely
# lifts noise (0.05 -> 0.1) would have the breakdown say "B shows A as a picture-in-picture" on
# a pair of different videos. Pairs found through views on the hard benchmark (seed 11) had
# 0.73-1.0; the views' lines of pairs left "different" there and on the dev benchmark (seed 1)
# 0.30 or less at the 90th percentile.
VIEW_MIN_EVIDENCE = 0.5


@dataclass(frozen=True)
class View:
    number: int
    kind: str  # "pip", "stack", "split"
    box: tuple[float, float, float, float]  # top, bottom, left, right as fractions of the frame
    signals: VideoSignals
    rows: np.ndarray  # positions of the frames whose crops replaced the whole frame


def _may_match(view: View, other: VideoSignals, params: ScoringParams) -> bool:
    """Whether any crop of the view comes near any frame of the other video: without one, no
    line can be aligned through the view, and scoring it (most candidates of a laid-out video
    are other footage) would cost a full score for nothing."""
    mine = view.rows[view.signals.informative[view.rows]]
    sim = frame_similarity(
        view.signals.embeddings[mine],
        other.embeddings[other.informative],
        view.signals.phashes[mine],
        other.phashes[other.informative],
    )
    return bool(sim.size and float(sim.max()) >= params.frame_match_threshold)


def view_signals(
    whole: VideoSignals,
    idx: np.ndarray,
    embeddings: np.ndarray,
    phashes: np.ndarray,
    thumbs: np.ndarray | None,
) -> VideoSignals:
    """`whole` with frames `idx` (positions in its frames) replaced by a view's crops."""
    emb = whole.embeddings.copy()
    emb[idx] = embeddings
    hashes = whole.phashes.copy()
    hashes[idx] = phashes
    small = None
    if whole.thumbs is not None and thumbs is not None:
        small = whole.thumbs.copy()
        small[idx] = thumbs
    return replace(whole, embeddings=emb, phashes=hashes, thumbs=small)


def _evidence(result: PairScore) -> float:
    # as stored (rounded), as the scorer picks its own rescue lines
    fusion = result.breakdown.fusion
    return float(fusion.as_dict()["visual_segment"]) if fusion is not None else 0.0


def _sub(side: str, view: View) -> SubPicture:
    return SubPicture(side=side, view=view.number, kind=view.kind, box=list(view.box))


def score_pair_views(
    a: VideoSignals,
    b: VideoSignals,
    a_views: list[View] = (),  # type: ignore[assignment]
    b_views: list[View] = (),  # type: ignore[assignment]
    params: ScoringParams = DEFAULT_PARAMS,
) -> PairScore:
    """The pair scored whole against whole, or, where the whole frames' evidence is doubtful,
    through the sub-pictures that convince most: a view of either side against the other's whole
    frames, or a view of each; the breakdown names the sides, views and boxes that matched
    (`sub_pictures`)."""
    best = score_pair(a, b, params)
    if not (a_views or b_views) or _evidence(best) >= RESCUE_BELOW:
        return best
    tries: list[tuple[View | None, View | None, PairScore]] = [
        (v, None, score_pair(v.signals, b, params)) for v in a_views if _may_match(v, b, params)
    ]
    tries += [(None, v, score_pair(a, v.signals, params)) for v in b_views if _may_match(v, a, params)]
    # two laid-out copies of one original (a picture-in-picture and a stack of it)
    tries += [
        (va, vb, score_pair(va.signals, vb.signals, params))
        for va in a_views
        for vb in b_views
        if _may_match(va, vb.signals, params)
    ]
    for in_a, in_b, result in tries:
        if _evidence(result) > max(_evidence(best), VIEW_MIN_EVIDENCE):
            found = tuple(_sub(side, v) for side, v in (("a", in_a), ("b", in_b)) if v is not None)
            best = replace(result, breakdown=replace(result.breakdown, sub_pictures=found))
    return best
