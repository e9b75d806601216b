"""Labelled pairs for calibration tests: fusion inputs drawn like the benchmark's, with known truth."""

import numpy as np

from dedup.matching.score import LABELS, FusionArrays, FusionInputs, classify
from dedup.matching.signals import ScoringParams
from dedup.models import Pair, ScoringConfig

from . import factories as make


def synthetic_pairs(n: int, seed: int) -> list[tuple[FusionInputs, bool]]:
    """Half duplicates (whole copies, some heavily transformed so their visual evidence is only
    moderate, some partial copies, some silent), half not (unrelated look-alikes, the same song
    over other footage, shared intros), plus a few look-alikes that overlap the duplicates."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = rng.random()
        audio = float(rng.uniform(0.7, 1.0)) if rng.random() < 0.7 else None
        meta = float(rng.uniform(0.4, 1.0))
        if i % 2 == 0:
            if kind < 0.7:  # whole copy; a hard transform leaves moderate visual evidence
                v = float(rng.uniform(0.74, 1.0))
                out.append((FusionInputs(v, v, audio, meta, full=True, long_enough=True), True))
            else:  # clip cut from a longer video
                seg = float(rng.uniform(0.66, 1.0))
                out.append((FusionInputs(seg * 0.4, seg, audio, meta, long_enough=True), True))
        else:
            if kind < 0.5:  # unrelated footage that looks alike
                v = float(rng.uniform(0.2, 0.76 if rng.random() < 0.1 else 0.7))
                out.append(
                    (
                        FusionInputs(
                            v, v, None if audio is None else audio * 0.5, meta, full=True, long_enough=True
                        ),
                        False,
                    )
                )
            elif kind < 0.8:  # same song, other pictures: nothing aligns
                v = float(rng.uniform(0.0, 0.4))
                out.append((FusionInputs(v, v, float(rng.uniform(0.85, 1.0)), meta, aligned=False), False))
            else:  # a shared 3 s intro
                seg = float(rng.uniform(0.8, 1.0))
                out.append(
                    (FusionInputs(seg * 0.2, seg, audio, meta, long_enough=True, boilerplate=True), False)
                )
    return out


def library(data) -> list[tuple[Pair, bool]]:
    """Video and pair rows carrying the synthetic fusion inputs, scored under the active config."""
    config = ScoringConfig.active()
    n_videos = 1 + int(np.ceil(np.sqrt(2 * len(data)))) + 1
    videos = make.videos(n_videos, status="ready", duration=10.0)
    keys = [(a, b) for a in range(n_videos) for b in range(a + 1, n_videos)]
    x = FusionArrays.stack([d for d, _ in data])
    scores, codes = classify(x, ScoringParams())
    pairs = Pair.objects.bulk_create(
        Pair(
            video_a=videos[a],
            video_b=videos[b],
            score=float(s),
            label=LABELS[int(c)],
            visual=inputs.visual_full,
            audio=inputs.audio,
            metadata=inputs.metadata,
            breakdown={"fusion": inputs.as_dict()},
            config=config,
        )
        for (a, b), (inputs, _), s, c in zip(keys, data, scores, codes, strict=False)
    )
    return [(p, truth) for p, (_, truth) in zip(pairs, data, strict=True)]
