"""Orientation: the display matrix phones write, and pictures turned upright as players show them."""

from pathlib import Path
from typing import Any

import numpy as np

from .. import ExtractionError
from ..probe import main_video_stream


def display_matrix(frame: Any) -> bytes | None:
    """The display matrix a decoded frame carries (from the container: an MP4/MOV track's matrix,
    which phones write), None where there is none.

    Read through a side-data container of its own: `frame.side_data` caches one on the frame that
    refers back to it, a cycle PyAV 18's classes leave uncollected, so every frame asked kept its
    pictures in memory (+90 MB per one-minute video in a worker, measured)."""
    from av.sidedata.sidedata import SideDataContainer

    # PyAV's stub leaves out the constructor's frame argument
    data = SideDataContainer(frame).get("DISPLAYMATRIX")  # type: ignore[call-arg]
    return bytes(data) if data is not None else None


def _signs(matrix: bytes | None) -> tuple[int, int, int, int] | None:
    """The signs of the display matrix's a, b, c, d where it turns by quarter turns and mirrors
    (16.16 fixed point; the signs are all such a matrix needs), None for another matrix or none."""
    if matrix is None or len(matrix) < 36:
        return None
    m = np.frombuffer(matrix[:36], dtype=np.int32)
    a, b, c, d = (0 if abs(int(v)) < 1 << 15 else (1 if v > 0 else -1) for v in (m[0], m[1], m[3], m[4]))
    if (a and d and not b and not c) or (b and c and not a and not d):
        return a, b, c, d
    return None


def turns_sideways(matrix: bytes | None) -> bool:
    """Whether the display matrix turns the picture by a quarter turn (players swap width and height)."""
    signs = _signs(matrix)
    return signs is not None and signs[0] == 0


def moves_pictures(matrix: bytes | None) -> bool:
    """Whether `upright` changes the pictures of a stream with this display matrix."""
    return _signs(matrix) not in (None, (1, 0, 0, 1))


def display_matrix_of(path: Path) -> bytes | None:
    """The display matrix of a file's video, from its first decoded picture."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = main_video_stream(container)
            if stream is None:
                raise ExtractionError("no video stream found in the file")
            stream.codec_context.thread_count = 1
            for frame in container.decode(stream):
                return display_matrix(frame)
    except (av.error.FFmpegError, OSError) as exc:
        raise ExtractionError(f"cannot read the video: {exc}") from exc
    raise ExtractionError("no decodable video frames")


def upright(image: np.ndarray, matrix: bytes | None) -> np.ndarray:
    """The picture as players show it: turned and mirrored as the display matrix says.

    Phones store portrait video as landscape pictures and a matrix that turns them; FFmpeg's
    command line, and so most transcoders and sharing sites, writes a copy upright and without
    one, and the two would not match. The matrix (libavutil/display.h) maps a stored point (p, q)
    to (a p + c q, b p + d q); quarter turns and mirror images are applied as FFmpeg's command line
    applies them (all eight checked against it), any other angle is left as stored."""
    signs = _signs(matrix)
    if signs is None:
        return image
    a, b, c, d = signs
    if a:
        out = image[:, ::-1] if a < 0 else image
        out = out[::-1] if d < 0 else out
    else:
        out = image.swapaxes(0, 1)
        out = out[::-1] if b < 0 else out
        out = out[:, ::-1] if c < 0 else out
    return out if out is image else np.ascontiguousarray(out)
