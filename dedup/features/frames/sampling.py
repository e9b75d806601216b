"""Frame sampling at 1 fps (2-4 fps for short videos), the frame budget, bars cropped."""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bars import detect_bars, is_informative
from .decode import decode_frames, working_size
from .orientation import display_matrix_of, turns_sideways

# A short video sampled at 1 fps gives a handful of frames, each up to half a second away from
# the nearest frame of a copy cut at another phase; fast-changing footage (visualisers, action)
# then no longer lines up. Short videos are sampled faster until they have this many frames.
DENSE_MIN_FRAMES = 16
SAMPLE_RATES = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class SampledFrames:
    times: np.ndarray  # (n,) seconds
    images: list[np.ndarray]  # n RGB uint8 arrays, bars cropped, working size
    informative: np.ndarray  # (n,) bool
    crop: tuple[int, int, int, int]  # top, bottom, left, right bars removed (in working pixels)
    decoder: str = "cpu"  # where the pictures were decoded: "cpu" or "cuda" (NVDEC)
    skipped: str = "NONREF"  # the frames the decoder skipped (see `Decoded`)
    turned: bool = False  # see `Decoded`


def sampling_fps(duration: float, min_frames: int = DENSE_MIN_FRAMES, max_frames: int = 0) -> float:
    """1 fps for videos of `min_frames` seconds or more; 2 or 4 fps for shorter ones. A video
    longer than `max_frames` seconds is sampled more slowly, so that the frames still span all of
    it: a clip cut from the second hour of a film must find its pictures (the budget bounds the
    memory the sampled pictures take, ~170 KB each at 16:9; see `frame_budget` for others)."""
    rate = next((r for r in SAMPLE_RATES if duration * r >= min_frames), SAMPLE_RATES[-1])
    if max_frames > 1 and math.floor(duration * rate) + 1 > max_frames:
        rate = (max_frames - 1) / duration
    return rate


def picture_bytes(width: int, height: int, *, turned: bool = False) -> int:
    """Memory of one sampled picture of a stream stored at `width` × `height` (shown turned a
    quarter or not): RGB at the working size, 320 px wide as shown."""
    w, h = working_size(height, width) if turned else working_size(width, height)
    return 3 * w * h


def frame_budget(
    path: Path,
    width: int,
    height: int,
    duration: float,
    *,
    min_frames: int = DENSE_MIN_FRAMES,
    max_frames: int,
    memory_bytes: int,
) -> int:
    """The most frames to sample from a video: `max_frames`, or fewer where that many of its
    pictures would take more than `memory_bytes`. The working size is a width, so a portrait
    picture (320 × 568) takes 3.2 times a 16:9 one (320 × 180): an hour of portrait video at
    1 fps held 1.96 GB of pictures (docs/benchmarks.md). The first picture is decoded to learn
    whether players show the video turned only where that decides the budget (long videos)."""
    if memory_bytes <= 0 or width <= 0 or height <= 0:
        return max_frames

    def budget(turned: bool) -> int:
        return max(2, min(max_frames, memory_bytes // picture_bytes(width, height, turned=turned)))

    if duration > 0:
        wanted = min(max_frames, math.floor(duration * sampling_fps(duration, min_frames, max_frames)) + 1)
    else:  # a file that does not say how long it is is sampled until the budget is spent
        wanted = max_frames
    if wanted <= min(budget(False), budget(True)):
        return max_frames
    return budget(turns_sideways(display_matrix_of(path)))


def one_per_second(times: np.ndarray) -> np.ndarray:
    """The frames that go into the candidate index: all of a 1 fps sampling; of a faster one, the
    frame nearest each whole second."""
    times = np.asarray(times, dtype=np.float64)
    if times.size < 2 or float(np.median(np.diff(times))) >= 0.9:
        return np.ones(times.size, dtype=bool)
    second = np.floor(times + 0.5)
    order = np.lexsort((np.abs(times - second), second))
    first = np.concatenate([[True], second[order][1:] != second[order][:-1]])
    keep = np.zeros(times.size, dtype=bool)
    keep[order[first]] = True
    return keep


def sample_frames(
    path: Path,
    duration: float,
    *,
    fps: float | None = None,
    max_frames: int = 3600,
    device: str = "cpu",
    nvdec_download_all: bool = False,
) -> SampledFrames:
    """Frames at `fps` (by default `sampling_fps`), bars cropped, each marked informative or not;
    decoded on `device` (see `decode_frames`)."""
    fps = sampling_fps(duration, max_frames=max_frames) if fps is None else fps
    times, images, decoded_on, skipped, turned = decode_frames(
        path, duration, fps=fps, max_frames=max_frames, device=device, nvdec_download_all=nvdec_download_all
    )
    top, bottom, left, right = detect_bars(images)
    if top or bottom or left or right:
        h, w = images[0].shape[:2]
        # one frame at a time, each replacing its uncropped self: an hour of frames is ~620 MB,
        # and a cropped copy of them all beside the originals took another ~400
        for i, img in enumerate(images):
            images[i] = np.ascontiguousarray(img[top : h - bottom, left : w - right])
    informative = np.array([is_informative(img) for img in images], dtype=bool)
    return SampledFrames(
        times=times,
        images=images,
        informative=informative,
        crop=(top, bottom, left, right),
        decoder=decoded_on,
        skipped=skipped,
        turned=turned,
    )
