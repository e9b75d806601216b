"""Sampled frames of a video, by job:

- `sampling`: which seconds are sampled (1 fps, 2-4 fps for short videos), the frame budget, and
  the sampled frames with bars cropped (`sample_frames`, what extraction calls);
- `decode`: decoding those pictures, seeking to keyframes and scaling inside the decoder;
- `h264`: x264's settings and the packet index that decide which frames may be skipped;
- `nvdec`: decoding on the GPU (NVDEC) where the worker embeds on one;
- `orientation`: the display matrix, and pictures turned upright as players show them;
- `bars`: letterbox bars and uniform frames.

The names the rest of the app uses are importable from here.
"""

from .bars import detect_bars, is_informative
from .decode import WORK_WIDTH, Decoded, decode_frames, frame_at
from .h264 import p_frames_ignore_b_frames, x264_settings
from .nvdec import pick_decode_device
from .orientation import display_matrix, display_matrix_of, moves_pictures, turns_sideways, upright
from .sampling import (
    DENSE_MIN_FRAMES,
    SampledFrames,
    frame_budget,
    one_per_second,
    picture_bytes,
    sample_frames,
    sampling_fps,
)

__all__ = [
    "DENSE_MIN_FRAMES",
    "WORK_WIDTH",
    "Decoded",
    "SampledFrames",
    "decode_frames",
    "detect_bars",
    "display_matrix",
    "display_matrix_of",
    "frame_at",
    "frame_budget",
    "is_informative",
    "moves_pictures",
    "one_per_second",
    "p_frames_ignore_b_frames",
    "pick_decode_device",
    "picture_bytes",
    "sample_frames",
    "sampling_fps",
    "turns_sideways",
    "upright",
    "x264_settings",
]
