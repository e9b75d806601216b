"""Fusion and labels: everything after alignment that depends on the ScoringConfig, vectorised, so
that a new config (from calibration or an admin) re-scores stored pairs exactly as `score_pair`
would, without reading any video again."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from .signals import ScoringParams

LABELS = ("exact", "near_duplicate", "partial", "similar", "different")
EXACT, NEAR, PARTIAL, SIMILAR, DIFFERENT = range(5)
DUPLICATE_CODES = (EXACT, NEAR, PARTIAL)


@dataclass(frozen=True)
class FusionInputs:
    """The per-pair quantities fusion and labelling need; stored on every pair as breakdown['fusion']."""

    visual_full: float  # visual evidence scaled by how much of both videos the match covers
    visual_segment: float  # visual evidence inside the matched segment
    audio: float | None
    metadata: float | None
    aligned: bool = True
    full: bool = False  # the match covers (nearly) all of both videos
    long_enough: bool = False  # the segment is long enough to be a partial copy
    boilerplate: bool = False  # a short shared opener/closer, not a copy
    identical: bool = False  # byte-identical files
    # the match starts both videos or ends both without covering them: where a series' opener or
    # closer (one title animation, each episode's own soundtrack) makes different videos alike
    opener: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "visual_full": round(self.visual_full, 6),
            "visual_segment": round(self.visual_segment, 6),
            "audio": None if self.audio is None else round(self.audio, 6),
            "metadata": None if self.metadata is None else round(self.metadata, 6),
            "aligned": self.aligned,
            "full": self.full,
            "long_enough": self.long_enough,
            "boilerplate": self.boilerplate,
            "identical": self.identical,
            "opener": self.opener,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FusionInputs":
        return cls(
            visual_full=d["visual_full"],
            visual_segment=d["visual_segment"],
            audio=d.get("audio"),
            metadata=d.get("metadata"),
            aligned=bool(d.get("aligned", True)),
            full=bool(d.get("full")),
            long_enough=bool(d.get("long_enough")),
            boilerplate=bool(d.get("boilerplate")),
            identical=bool(d.get("identical")),
            opener=bool(d.get("opener")),
        )

    def arrays(self) -> "FusionArrays":
        return FusionArrays.stack([self])


@dataclass(frozen=True)
class FusionArrays:
    """Many pairs' FusionInputs as columns (missing audio/metadata as NaN)."""

    visual_full: np.ndarray
    visual_segment: np.ndarray
    audio: np.ndarray
    metadata: np.ndarray
    aligned: np.ndarray
    full: np.ndarray
    long_enough: np.ndarray
    boilerplate: np.ndarray
    identical: np.ndarray
    opener: np.ndarray

    @classmethod
    def stack(cls, items: list[FusionInputs]) -> "FusionArrays":
        def col(name: str, dtype: type = float) -> np.ndarray:
            values = [getattr(i, name) for i in items]
            if dtype is float:
                return np.array([np.nan if v is None else v for v in values], dtype=float)
            return np.array(values, dtype=bool)

        return cls(
            col("visual_full"),
            col("visual_segment"),
            col("audio"),
            col("metadata"),
            *(col(n, bool) for n in ("aligned", "full", "long_enough", "boilerplate", "identical", "opener")),
        )

    def __len__(self) -> int:
        return len(self.visual_full)

    def take(self, idx: np.ndarray) -> "FusionArrays":
        return FusionArrays(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def weighted_mean(
    params: ScoringParams, visual: np.ndarray, audio: np.ndarray, metadata: np.ndarray
) -> np.ndarray:
    """Weighted mean over the modalities present on both sides (NaN = missing)."""
    has_a, has_m = ~np.isnan(audio), ~np.isnan(metadata)
    num = params.visual_weight * visual
    num = num + np.where(has_a, params.audio_weight * np.nan_to_num(audio), 0.0)
    num = num + np.where(has_m, params.metadata_weight * np.nan_to_num(metadata), 0.0)
    den = (
        params.visual_weight
        + np.where(has_a, params.audio_weight, 0.0)
        + np.where(has_m, params.metadata_weight, 0.0)
    )
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def fuse_arrays(
    params: ScoringParams, visual: np.ndarray, audio: np.ndarray, metadata: np.ndarray
) -> np.ndarray:
    """The weighted mean in which the soundtrack supports and never vetoes.

    The same pictures under another soundtrack (replaced music, a re-dub) are a duplicate for
    moderators, and a speed change shifts the soundtrack's pitch so that its fingerprints no
    longer meet: so a soundtrack that agrees less than the rest of the evidence is left out, as
    if missing, instead of pulling the score down. What audio alone can never do (make a
    duplicate of different pictures) is held by the caps on the pictures' evidence in `classify`.
    """
    with_audio = weighted_mean(params, visual, audio, metadata)
    without = weighted_mean(params, visual, np.full(np.shape(audio), np.nan), metadata)
    return np.asarray(np.maximum(with_audio, without))


def segment_scores(x: FusionArrays, params: ScoringParams) -> np.ndarray:
    # audio alone never makes a duplicate: cap the fused score by what the pictures support.
    # Only at a shared opener/closer does a differing soundtrack still count against the match:
    # there different videos of one series share pictures, each under its own sound.
    no_meta = np.full(len(x), np.nan)
    fused = np.where(
        x.opener,
        weighted_mean(params, x.visual_segment, x.audio, no_meta),
        fuse_arrays(params, x.visual_segment, x.audio, no_meta),
    )
    return np.minimum(fused, x.visual_segment + 0.1)


def classify(x: FusionArrays, params: ScoringParams) -> tuple[np.ndarray, np.ndarray]:
    """Scores and label codes (indexes into LABELS) for many pairs under one config."""
    fused = fuse_arrays(params, x.visual_full, x.audio, x.metadata)
    score_full = np.where(x.aligned, np.minimum(fused, x.visual_full + 0.1), fused)
    segment = segment_scores(x, params)
    by_threshold = np.select(
        [
            score_full >= params.exact_threshold,
            score_full >= params.near_threshold,
            score_full >= params.similar_threshold,
        ],
        [EXACT, NEAR, SIMILAR],
        DIFFERENT,
    )
    whole = x.aligned & x.full & ~x.boilerplate
    promoted = (
        (by_threshold >= SIMILAR) & (segment >= params.partial_threshold) & (segment >= params.near_threshold)
    )
    whole_label = np.where(promoted, NEAR, by_threshold)
    partial = x.aligned & ~whole & x.long_enough & ~x.boilerplate & (segment >= params.partial_threshold)
    rest_score = np.where(
        x.aligned & x.boilerplate, np.minimum(score_full, params.similar_threshold - 0.01), score_full
    )
    rest_label = np.where(rest_score >= params.similar_threshold, SIMILAR, DIFFERENT)
    score = np.select(
        [x.identical, whole, partial], [1.0, score_full, np.maximum(score_full, segment * 0.95)], rest_score
    )
    label = np.select([x.identical, whole, partial], [EXACT, whole_label, PARTIAL], rest_label)
    return np.round(score, 4), label


def classify_one(inputs: FusionInputs, params: ScoringParams) -> tuple[float, str]:
    score, label = classify(inputs.arrays(), params)
    return float(score[0]), LABELS[int(label[0])]


def fuse(params: ScoringParams, visual: float, audio: float | None, metadata: float | None) -> float:
    """`fuse_arrays` for one pair."""

    def col(x: float | None) -> np.ndarray:
        return np.array([np.nan if x is None else x], dtype=float)

    return float(fuse_arrays(params, col(visual), col(audio), col(metadata))[0])
