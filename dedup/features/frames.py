"""Frame sampling at 1 fps (2-4 fps for short videos) with PyAV, letterbox cropping and informativeness.

Decoding dominates extraction cost, so the sampler reads the keyframe index first and only
seeks when the next wanted second lies beyond the next keyframe; otherwise it decodes forward
with non-reference frames skipped (they are never needed as references, so skipping them is
free accuracy-wise). After a seek it decodes only up to the wanted picture and drains the decoder,
instead of also decoding the frames the decoder's reordering delay holds it back for: a third of
the decoding of one-second-GOP sources. Frames are scaled to a small working size inside the
decoder (swscale).
"""

from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ExtractionError

WORK_WIDTH = 320
SEEK_MIN_GAIN = 0.2  # seconds of decoding a seek must skip to be worth the decoder flush
BAR_LUMA = 28  # a bar row/column never gets brighter than this in any sampled frame
BAR_STEADY = 10  # ... nor do (nine in ten of) its pixels change by more than this between frames
MIN_BAR_FRACTION = 0.02
UNIFORM_STD = 7.0  # grey-level std below which a frame is considered uniform (black, white, flat)
# A short video sampled at 1 fps gives a handful of frames, each up to half a second away from
# the nearest frame of a copy cut at another phase; fast-changing footage (visualisers, action)
# then no longer lines up. Short videos are sampled faster until they have this many frames.
DENSE_MIN_FRAMES = 16
SAMPLE_RATES = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class SampledFrames:
    times: np.ndarray  # (n,) seconds
    images: list  # n RGB uint8 arrays, bars cropped, working size
    informative: np.ndarray  # (n,) bool
    crop: tuple[int, int, int, int]  # top, bottom, left, right bars removed (in working pixels)


def _keyframe_times(container, stream) -> list[float]:
    times = []
    tb = float(stream.time_base)
    for packet in container.demux(stream):
        if packet.is_keyframe and packet.pts is not None:
            times.append(packet.pts * tb)
    container.seek(0, stream=stream)
    return sorted(times)


def _working_size(width: int, height: int) -> tuple[int, int]:
    if width <= WORK_WIDTH:
        w, h = width, height
    else:
        w, h = WORK_WIDTH, max(2, round(height * WORK_WIDTH / width))
    return max(2, w - w % 2), max(2, h - h % 2)


def _seeks_after(keyframes: list[float], targets: list[float], ti: int, k: int) -> bool:
    """Whether the sampler reaches the target after `ti` by a seek past keyframe `k` (so nothing
    decoded after keyframe k would be used)."""
    if ti + 1 >= len(targets):
        return True
    k_next = bisect_right(keyframes, targets[ti + 1] + 1e-6) - 1
    return keyframes[k_next] - keyframes[k] > SEEK_MIN_GAIN


def _picture_after_seek(container, stream, key: float, wanted: float):
    """The first picture shown at or after `wanted` (less 0.05 s), decoded from the keyframe at
    `key` and nothing past that picture; None where the packets do not allow it.

    A decoder holds each picture back until the frames that may be shown before it have arrived
    (two more with x264's B-pyramid), so decoding up to a picture costs those too. The frames
    shown before a picture follow it directly in decoding order: feed packets until one is shown
    after every picture fed so far, then drain the decoder. The pictures are those that decoding
    on would give (a picture depends only on what was decoded before it)."""
    tb = float(stream.time_base)
    container.seek(round(key / tb), stream=stream, backward=True)
    codec = stream.codec_context
    shown = []  # only pictures at or after `wanted`: the earlier ones (up to a second's) are let go

    def keep(frames) -> None:
        shown.extend(f for f in frames if f.pts is not None and f.pts * tb >= wanted - 0.05)

    shown_last = None
    try:
        for packet in container.demux(stream):
            if packet.pts is None:
                if packet.size == 0 and shown_last is not None:
                    break  # the end of the file
                return None
            t = packet.pts * tb
            if shown_last is None and abs(t - key) > 1e-3:
                return None  # the demuxer landed elsewhere: leave it to the decoding path
            if shown_last is not None and shown_last >= wanted - 0.05 and t > shown_last:
                break
            shown_last = t if shown_last is None else max(shown_last, t)
            keep(codec.decode(packet))
        keep(codec.decode(None))
    finally:
        codec.flush_buffers()  # a drained decoder takes packets again only once reset
    return min(shown, key=lambda f: f.pts) if shown else None


def decode_frames(
    path: Path, duration: float, *, fps: float = 1.0, max_frames: int = 3600, skip_nonref: bool = True
) -> tuple[np.ndarray, list]:
    """Return (times, RGB images) for one frame per 1/fps seconds plus the last frame."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise ExtractionError(f"cannot open the video: {exc}") from exc
    try:
        if not container.streams.video:
            raise ExtractionError("no video stream found in the file")
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        tb = float(stream.time_base)
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        out_w, out_h = _working_size(width, height)
        n_targets = min(max_frames, max(1, int(np.floor(duration * fps)) + 1 if duration > 0 else max_frames))
        targets = [start + i / fps for i in range(n_targets)]
        try:
            keyframes = _keyframe_times(container, stream)
        except av.error.FFmpegError:
            keyframes = []

        times: list[float] = []
        images: list[np.ndarray] = []
        last: tuple[float, object] | None = None
        ti = 0
        pos = -1e9

        def frames_from(seek_to: float | None):
            if seek_to is not None:
                # the keyframe's own pts: truncating would land on the keyframe before it
                container.seek(round(seek_to / tb), stream=stream, backward=True)
            return container.decode(stream)

        gen = frames_from(None)
        sought: set[int] = set()
        try:
            while True:
                frame = None
                if ti < len(targets) and keyframes:
                    k = bisect_right(keyframes, targets[ti] + 1e-6) - 1
                    # jump forward whenever a keyframe lets us skip decoding: always for all-intra
                    # and short-GOP sources; with long GOPs the keyframe is usually behind us
                    # each keyframe at most once: a demuxer that lands elsewhere cannot loop us
                    if k >= 0 and k not in sought and keyframes[k] - pos > SEEK_MIN_GAIN:
                        sought.add(k)
                        if _seeks_after(keyframes, targets, ti, k):
                            frame = _picture_after_seek(container, stream, keyframes[k], targets[ti])
                        if frame is None:
                            gen = frames_from(keyframes[k])
                        else:
                            gen = None  # the decoder was reset: the next forward decode seeks anew
                        pos = keyframes[k] - 1e-3
                if frame is None:
                    if gen is None:
                        gen = frames_from(keyframes[max(0, bisect_right(keyframes, pos + 1e-6) - 1)])
                    frame = next(gen, None)
                if frame is None:
                    break
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb)
                pos = t
                last = (t, frame)
                if ti < len(targets) and t >= targets[ti] - 0.05:
                    times.append(t - start)
                    images.append(frame.to_ndarray(format="rgb24", width=out_w, height=out_h))
                    while ti < len(targets) and targets[ti] <= t + 0.05:
                        ti += 1
                    if len(times) >= max_frames:
                        break
        except av.error.FFmpegError as exc:
            if not images:
                raise ExtractionError(f"video data is corrupt: {exc}") from exc
        if last is not None and (not times or last[0] - start > times[-1] + 0.25) and len(times) < max_frames:
            times.append(last[0] - start)
            images.append(last[1].to_ndarray(format="rgb24", width=out_w, height=out_h))
    finally:
        container.close()
    if not images and skip_nonref:
        return decode_frames(path, duration, fps=fps, max_frames=max_frames, skip_nonref=False)
    if not images:
        raise ExtractionError("no decodable video frames (truncated or corrupt file)")
    return np.asarray(times, dtype=np.float32), images


def detect_bars(images: list) -> tuple[int, int, int, int]:
    """Letterbox/pillarbox bars: rows/columns that stay dark, and steady, in every sampled frame."""
    import cv2

    gray_max = images[0].max(axis=2)
    gray_min = gray_max
    for img in images[1:]:
        # brightest channel per pixel, kept as running extremes (numpy's axis reductions over
        # 3-channel frames cost more than decoding's conversion step)
        brightest = cv2.max(cv2.max(img[:, :, 0], img[:, :, 1]), img[:, :, 2])
        gray_max = cv2.max(gray_max, brightest)
        gray_min = cv2.min(gray_min, brightest)
    h, w = gray_max.shape
    # dark footage flickers (a blurred visualiser's dark edge stays under BAR_LUMA but changes);
    # a bar holds its level, but for the odd pixel where re-encoding smeared the picture into it
    flicker = cv2.subtract(gray_max, gray_min)
    dark_rows = (gray_max.max(axis=1) <= BAR_LUMA) & (np.percentile(flicker, 90, axis=1) <= BAR_STEADY)
    dark_cols = (gray_max.max(axis=0) <= BAR_LUMA) & (np.percentile(flicker, 90, axis=0) <= BAR_STEADY)
    if dark_rows.all() or dark_cols.all():
        return 0, 0, 0, 0

    def run(mask: np.ndarray) -> int:
        n = 0
        for value in mask:
            if not value:
                break
            n += 1
        return n

    top, bottom = run(dark_rows), run(dark_rows[::-1])
    left, right = run(dark_cols), run(dark_cols[::-1])
    min_h, min_w = MIN_BAR_FRACTION * h, MIN_BAR_FRACTION * w
    top, bottom = (top if top >= min_h else 0), (bottom if bottom >= min_h else 0)
    left, right = (left if left >= min_w else 0), (right if right >= min_w else 0)
    if h - top - bottom < 0.3 * h:
        top = bottom = 0
    if w - left - right < 0.3 * w:
        left = right = 0
    return top, bottom, left, right


def is_informative(image: np.ndarray) -> bool:
    import cv2

    # the plain mean of the three channels, as a float image, so the threshold keeps its meaning
    gray = cv2.transform(image.astype(np.float32), np.full((1, 3), 1 / 3, dtype=np.float32))
    return float(cv2.meanStdDev(gray)[1][0, 0]) >= UNIFORM_STD


def sampling_fps(duration: float, min_frames: int = DENSE_MIN_FRAMES) -> float:
    """1 fps for videos of `min_frames` seconds or more; 2 or 4 fps for shorter ones."""
    for rate in SAMPLE_RATES:
        if duration * rate >= min_frames:
            return rate
    return SAMPLE_RATES[-1]


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
    path: Path, duration: float, *, fps: float | None = None, max_frames: int = 3600
) -> SampledFrames:
    fps = sampling_fps(duration) if fps is None else fps
    times, images = decode_frames(path, duration, fps=fps, max_frames=max_frames)
    top, bottom, left, right = detect_bars(images)
    if top or bottom or left or right:
        h, w = images[0].shape[:2]
        images = [np.ascontiguousarray(img[top : h - bottom, left : w - right]) for img in images]
    informative = np.array([is_informative(img) for img in images], dtype=bool)
    return SampledFrames(times=times, images=images, informative=informative, crop=(top, bottom, left, right))


def frame_at(path: Path, t: float, *, width: int = 160) -> np.ndarray:
    """One RGB frame at (or just after) `t` seconds, scaled to `width`: for thumbnails."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        tb = float(stream.time_base)
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        out_w = min(width, stream.codec_context.width) // 2 * 2
        out_h = max(2, round(stream.codec_context.height * out_w / stream.codec_context.width) // 2 * 2)
        container.seek(int((start + t) / tb), stream=stream, backward=True)
        last = None
        for frame in container.decode(stream):
            last = frame
            if frame.pts is not None and frame.pts * tb >= start + t - 0.05:
                break
        if last is None:
            raise ExtractionError("no decodable frame at that time")
        return last.to_ndarray(format="rgb24", width=out_w, height=out_h)
