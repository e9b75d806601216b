"""One video's features, stage by stage: what `video_extract` stores and `scripts/gpu_bench.py`
times on a lent machine without a database, so both run the same stages in the same order."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import AudioFeatures, extract_audio
from .frames import SampledFrames, frame_budget, sample_frames, sampling_fps
from .lowres import thumbnail
from .phash import phash64
from .probe import Probe, probe_video, sha256_file
from .views import ViewFeatures, extract_views


@dataclass(frozen=True)
class VideoFeatures:
    probe: Probe
    sha256: str  # "" where the caller already had it
    frames: SampledFrames
    hashes: list[int]  # 64-bit pHash per frame
    thumbs: list[bytes]  # low-resolution grey thumbnail per frame
    embeddings: np.ndarray  # (n, dim) L2-normalised
    audio: AudioFeatures | None  # None: no sound track (or no usable sound)
    cpu: dict[str, float] = field(
        default_factory=dict
    )  # CPU-s by stage: probe, decode, hash, embed, audio, views
    views: list[ViewFeatures] = field(default_factory=list)  # sub-pictures (features.views); most videos none


def extract_features(
    path: Path,
    embedder,
    *,
    embed_batch: int,
    dense_min_frames: int,
    max_frames: int,
    frame_memory_mb: int = 0,
    sha256: bool = True,
    decode_device: str = "cpu",
    nvdec_download_all: bool = False,
    audio: Callable[[Path], AudioFeatures | None] = extract_audio,
    views: bool = True,
) -> VideoFeatures:
    """Probe, hash the file (unless `sha256` is False), extract the audio signals, sample frames
    (decoded on `decode_device`: "cpu", or "cuda" for NVDEC where it can, `nvdec_download_all` as
    `decode_frames` takes it; at most `max_frames`,
    fewer where their pictures would take more than `frame_memory_mb`, 0 for no such limit), pHash
    and thumbnail them and embed them with `embedder` (an `Embedder`), and (unless `views` is
    False) find the sub-pictures of laid-out frames and embed those too (`features.views`), timing
    each stage in this process's CPU seconds. Raises ExtractionError for a file that cannot be processed.

    The audio comes first, so that what it holds while it works (the MFCC's mel spectrogram,
    40 MB an hour) is given back before the sampled pictures take theirs (~620 MB an hour at
    1 fps). With the audio streamed and the bars cropped in place, a one-hour video peaked at
    1.1 GB, 2.1 GB before (docs/benchmarks.md)."""
    cpu: dict[str, float] = {}

    def timed(stage: str, fn, *args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            cpu[stage] = round(cpu.get(stage, 0.0) + time.process_time() - start, 4)

    probe = timed("probe", probe_video, path)
    digest = timed("probe", sha256_file, path) if sha256 else ""
    sound = timed("audio", audio, path) if probe.has_audio else None
    budget = timed(
        "decode",
        frame_budget,
        path,
        probe.width,
        probe.height,
        probe.duration,
        min_frames=dense_min_frames,
        max_frames=max_frames,
        memory_bytes=frame_memory_mb << 20,
    )
    fps = sampling_fps(probe.duration, dense_min_frames, budget)
    frames = timed(
        "decode",
        sample_frames,
        path,
        probe.duration,
        fps=fps,
        max_frames=budget,
        device=decode_device,
        nvdec_download_all=nvdec_download_all,
    )
    if frames.turned:  # the stream's size is the stored picture's; players show it turned
        probe = probe.turned()
    hashes = timed("hash", lambda: [phash64(img) for img in frames.images])
    thumbs = timed("hash", lambda: [thumbnail(img).tobytes() for img in frames.images])
    embeddings = timed("embed", embedder.embed, frames.images, batch=embed_batch)
    found = (
        timed("views", extract_views, frames.times, frames.images, embedder, batch=embed_batch)
        if views
        else []
    )
    return VideoFeatures(probe, digest, frames, hashes, thumbs, embeddings, sound, cpu, found)
