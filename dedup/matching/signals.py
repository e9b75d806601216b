from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class VideoSignals:
    """Everything the scorer needs about one video, loaded once from the database."""

    id: int
    times: np.ndarray  # (n,) seconds
    embeddings: np.ndarray  # (n, d) L2-normalised
    phashes: np.ndarray  # (n,) int64
    informative: np.ndarray  # (n,) bool: not uniform and not boilerplate shared across the library
    duration: float
    width: int = 0
    height: int = 0
    sar: float = 1.0  # pixel aspect ratio: the picture players show is width × sar by height
    fps: float = 0.0
    size: int = 0
    bitrate: int = 0
    sha256: str = ""
    fingerprint: np.ndarray | None = None  # uint32 Chromaprint sub-fingerprints
    mfcc: np.ndarray | None = None
    has_audio: bool = False
    thumbs: np.ndarray | None = None  # (n, 256) uint8 16x16 grey thumbnails; None before feature version 5
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def audio_usable(self) -> bool:
        return self.has_audio and (self.fingerprint is not None or self.mfcc is not None)


@dataclass(frozen=True)
class ScoringParams:
    visual_weight: float = 0.65
    audio_weight: float = 0.25
    metadata_weight: float = 0.10
    exact_threshold: float = 0.95
    near_threshold: float = 0.85
    similar_threshold: float = 0.70
    partial_threshold: float = 0.73
    frame_match_threshold: float = 0.60


def clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))
