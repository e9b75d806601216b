"""Decoding the sampled pictures: keyframe seeking, skipping what no sampled picture needs, scaling
to the working size inside the decoder.

Decoding dominates extraction cost on CPUs, so the sampler reads the keyframe index first and only
seeks when the next wanted second lies beyond the next keyframe; otherwise it decodes forward
with non-reference frames skipped (they are never needed as references, so skipping them is
free accuracy-wise), and more where the encoder allows (`h264.SkipGate`). After a seek it decodes
only up to the wanted picture and drains the decoder, instead of also decoding the frames the
decoder's reordering delay holds it back for: a third of the decoding of one-second-GOP sources.
Frames are scaled to a small working size inside the decoder (swscale), then turned upright as
the file's display matrix says (`upright`)."""

import logging
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import ExtractionError
from ..probe import main_video_stream, pixel_aspect
from .h264 import PacketIndex, SkipGate, index_packets
from .nvdec import open_video
from .orientation import display_matrix, turns_sideways, upright

logger = logging.getLogger(__name__)

WORK_WIDTH = 320
SEEK_MIN_GAIN = 0.2  # seconds of decoding a seek must skip to be worth the decoder flush


class Decoded(NamedTuple):
    times: np.ndarray  # (n,) seconds
    images: list[np.ndarray]  # n RGB uint8 arrays at the working size
    decoder: str  # "cpu" or "cuda" (NVDEC)
    # what the decoder skipped: "NONREF" (non-reference frames), "BIDIR" (and the reference B-frames
    # away from the wanted times) or "DEFAULT" (nothing)
    skipped: str
    turned: bool = False  # a quarter turn made the pictures upright: players show height as width


def working_size(width: int, height: int) -> tuple[int, int]:
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


def _picture_after_seek(container: Any, stream: Any, key: float, wanted: float, gate: SkipGate) -> Any:
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
    shown: list[
        Any
    ] = []  # only pictures at or after `wanted`: the earlier ones (up to a second's) are let go

    def keep(frames: list[Any]) -> None:
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
            keep(gate.feed(codec, packet))
        keep(codec.decode(None))
    finally:
        codec.flush_buffers()  # a drained decoder takes packets again only once reset
    return min(shown, key=lambda f: f.pts) if shown else None


def decode_frames(
    path: Path,
    duration: float,
    *,
    fps: float = 1.0,
    max_frames: int = 3600,
    skip: bool = True,
    device: str = "cpu",
    nvdec_download_all: bool = False,
) -> Decoded:
    """One frame per 1/fps seconds plus the last frame; `device` "cuda" decodes with NVDEC where it
    can (see `open_video`, and its `download_all` for `nvdec_download_all`). `skip` lets the decoder skip the frames that no sampled picture needs
    (see `SkipGate`); without it every frame is decoded."""
    import av
    from av.video.reformatter import VideoReformatter

    container, on_gpu = open_video(path, device, download_all=nvdec_download_all)
    gpu_failed = None
    try:
        stream = main_video_stream(container)
        if stream is None:
            raise ExtractionError("no video stream found in the file")
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        tb = float(stream.time_base)
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        out_w, out_h = working_size(width, height)
        turned_w, turned_h = working_size(height, width)
        n_targets = min(max_frames, max(1, int(np.floor(duration * fps)) + 1 if duration > 0 else max_frames))
        targets = [start + i / fps for i in range(n_targets)]
        try:
            index = index_packets(container, stream)
        except av.error.FFmpegError:
            index = PacketIndex([], [], False, 1)
        if index.packets == 0:
            # a track declared with no picture in it (a muxer stopped before the first frame): not
            # a damaged file, and decoding without skipping frames would find nothing either
            raise ExtractionError("the video stream holds no pictures (an empty video track)")
        try:
            container.seek(0, stream=stream)
        except av.error.FFmpegError:
            # a raw H.264 or HEVC stream (no container around it) cannot seek, not even back to
            # its start: read it again from a fresh opening, decoding forward only
            container.close()
            container, on_gpu = open_video(path, device, download_all=nvdec_download_all)
            stream = main_video_stream(container)
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
            index = index._replace(keyframes=[])
        keyframes = index.keyframes
        # a stream without timestamps (raw H.264 or HEVC) is timed by counting its pictures, as
        # FFmpeg's command line does, so none of them may be skipped
        untimed = index.packets > 0 and index.timed == 0
        skip = skip and not untimed
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        counted = 0
        gate = SkipGate(targets, index, tb, skip)
        codec = stream.codec_context

        times: list[float] = []
        images: list[np.ndarray] = []
        turned = False
        last: tuple[float, object] | None = None
        # one scaler for all pictures: `frame.to_ndarray(width=…)` sets up a new one per frame, which
        # took half of its 3.2 ms at 720p; the pixels are the same
        scaler = VideoReformatter()

        def picture(frame: Any) -> np.ndarray:
            """The frame upright at the working size of the picture players show."""
            nonlocal turned
            matrix = display_matrix(frame)
            turned = turns_sideways(matrix)
            # scaled as stored, to the size that is the working size once turned
            w, h = (turned_h, turned_w) if turned else (out_w, out_h)
            return upright(scaler.reformat(frame, width=w, height=h, format="rgb24").to_ndarray(), matrix)

        ti = 0
        pos = -1e9

        def frames_from(seek_to: float | None) -> Iterator[Any]:
            if seek_to is not None:
                # the keyframe's own pts: truncating would land on the keyframe before it
                container.seek(round(seek_to / tb), stream=stream, backward=True)
            for packet in container.demux(stream):
                yield from gate.feed(codec, packet)

        gen: Iterator[Any] | None = frames_from(None)
        sought: set[int] = set()
        # MPEG-TS seeks by byte position and may land a keyframe or more past the one asked for,
        # which would lose every second in between: such a file is decoded from the start instead
        seekable = True
        landing: float | None = None  # the keyframe a forward decode was sought to
        try:
            while True:
                frame = None
                if ti < len(targets) and keyframes and seekable:
                    k = bisect_right(keyframes, targets[ti] + 1e-6) - 1
                    # jump forward whenever a keyframe lets us skip decoding: always for all-intra
                    # and short-GOP sources; with long GOPs the keyframe is usually behind us
                    # each keyframe at most once: a demuxer that lands elsewhere cannot loop us
                    if k >= 0 and k not in sought and keyframes[k] - pos > SEEK_MIN_GAIN:
                        sought.add(k)
                        if _seeks_after(keyframes, targets, ti, k):
                            frame = _picture_after_seek(container, stream, keyframes[k], targets[ti], gate)
                        if frame is None:
                            gen = frames_from(keyframes[k])
                            landing = keyframes[k]
                        else:
                            gen = None  # the decoder was reset: the next forward decode seeks anew
                        pos = keyframes[k] - 1e-3
                if frame is None:
                    if gen is None:
                        landing = keyframes[max(0, bisect_right(keyframes, pos + 1e-6) - 1)]
                        gen = frames_from(landing)
                    frame = next(gen, None)
                if frame is None:
                    break
                if frame.pts is not None:
                    t = float(frame.pts * tb)
                elif untimed:
                    t, counted = start + counted / rate, counted + 1
                else:
                    continue
                if landing is not None and t > landing + 0.05:
                    seekable, landing = False, None
                    container.seek(0, stream=stream)  # before the first timestamp: the file's start
                    gen, pos = frames_from(None), -1e9
                    continue
                landing = None
                pos = t
                last = (t, frame)
                if ti < len(targets) and t >= targets[ti] - 0.05:
                    times.append(t - start)
                    images.append(picture(frame))
                    while ti < len(targets) and targets[ti] <= t + 0.05:
                        ti += 1
                    if len(times) >= max_frames:
                        break
        except av.error.FFmpegError as exc:
            if on_gpu:
                gpu_failed = exc  # NVDEC's error may not be the file's: the CPU decodes it again below
            elif not images:
                raise ExtractionError(f"video data is corrupt: {exc}") from exc
        # the GPU took the stream only if the decoder settled on its picture format (a profile NVDEC
        # lacks, such as 4:4:4, is decoded in software in the same context)
        on_gpu = on_gpu and stream.codec_context.pix_fmt == "cuda"
        if last is not None and (not times or last[0] - start > times[-1] + 0.25) and len(times) < max_frames:
            times.append(last[0] - start)
            images.append(picture(last[1]))
    finally:
        container.close()
    if gpu_failed is not None:
        logger.warning("NVDEC failed on %s (%s); decoding it on the CPU", path, gpu_failed)
        return decode_frames(path, duration, fps=fps, max_frames=max_frames, skip=skip, device="cpu")
    if not images and skip:
        return decode_frames(
            path,
            duration,
            fps=fps,
            max_frames=max_frames,
            skip=False,
            device=device,
            nvdec_download_all=nvdec_download_all,
        )
    if not images:
        raise ExtractionError("no decodable video frames (truncated or corrupt file)")
    return Decoded(
        np.asarray(times, dtype=np.float32), images, "cuda" if on_gpu else "cpu", gate.skipped, turned
    )


def frame_at(path: Path, t: float, *, width: int = 160) -> np.ndarray:
    """One RGB frame at (or just after) `t` seconds, upright, shown as players show it (turned, and
    widened where its pixels are not square) and scaled to `width`: for thumbnails."""
    import av

    with av.open(str(path)) as container:
        stream = main_video_stream(container)
        if stream is None:
            raise ExtractionError("no video stream found in the file")
        stream.codec_context.thread_count = 1
        tb = float(stream.time_base)
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        container.seek(int((start + t) / tb), stream=stream, backward=True)
        last = None
        for frame in container.decode(stream):
            last = frame
            if frame.pts is not None and frame.pts * tb >= start + t - 0.05:
                break
        if last is None:
            raise ExtractionError("no decodable frame at that time")
        matrix = display_matrix(last)
        sideways = turns_sideways(matrix)
        # a person compares these side by side: an anamorphic picture is widened as players do
        shown_w = max(2, round(stream.codec_context.width * pixel_aspect(stream)))
        shown_h = stream.codec_context.height
        if sideways:
            shown_w, shown_h = shown_h, shown_w
        out_w = min(width, shown_w) // 2 * 2
        out_h = max(2, round(shown_h * out_w / shown_w) // 2 * 2)
        if sideways:  # scaled as stored, turned after
            out_w, out_h = out_h, out_w
        return upright(last.to_ndarray(format="rgb24", width=out_w, height=out_h), matrix)
