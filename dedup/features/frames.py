"""Frame sampling at 1 fps (2-4 fps for short videos) with PyAV, letterbox cropping and informativeness.

Decoding dominates extraction cost on CPUs, so the sampler reads the keyframe index first and only
seeks when the next wanted second lies beyond the next keyframe; otherwise it decodes forward
with non-reference frames skipped (they are never needed as references, so skipping them is
free accuracy-wise). Where the encoder's own settings show that no P-frame is predicted from a
B-frame (x264 with one reference frame or its strict B-pyramid: x264's fast presets, which screen
recorders and transcoders use), the reference B-frames are skipped too, except around each wanted
second: the same pictures at the same times for about a fifth less decoding (`_SkipGate`). After a
seek it decodes only up to the wanted picture and drains the decoder, instead of also decoding the
frames the decoder's reordering delay holds it back for: a third of the decoding of
one-second-GOP sources. Frames are scaled to a small working size inside the decoder (swscale),
then turned upright as the file's display matrix says (`upright`). Where the worker embeds on a
CUDA GPU, H.264 (and the other codecs NVDEC knows) is decoded there too (`device="cuda"`), the
same pictures at a fraction of the CPU time: on a GPU box the CPUs' decoding was what limited
throughput (docs/benchmarks.md, GPU).
"""

import logging
import math
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import ExtractionError
from .probe import main_video_stream, pixel_aspect

logger = logging.getLogger(__name__)

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


class Decoded(NamedTuple):
    times: np.ndarray  # (n,) seconds
    images: list  # n RGB uint8 arrays at the working size
    decoder: str  # "cpu" or "cuda" (NVDEC)
    # what the decoder skipped: "NONREF" (non-reference frames), "BIDIR" (and the reference B-frames
    # away from the wanted times) or "DEFAULT" (nothing)
    skipped: str
    turned: bool = False  # a quarter turn made the pictures upright: players show height as width


@dataclass(frozen=True)
class SampledFrames:
    times: np.ndarray  # (n,) seconds
    images: list  # n RGB uint8 arrays, bars cropped, working size
    informative: np.ndarray  # (n,) bool
    crop: tuple[int, int, int, int]  # top, bottom, left, right bars removed (in working pixels)
    decoder: str = "cpu"  # where the pictures were decoded: "cpu" or "cuda" (NVDEC)
    skipped: str = "NONREF"  # the frames the decoder skipped (see `Decoded`)
    turned: bool = False  # see `Decoded`


# why this process could not decode on the GPU, once it failed (logged once; later videos decode
# on the CPU without trying again)
_gpu_decode_failure: str | None = None
# NVDEC's pictures stay in GPU memory and only the sampled ones are downloaded (61 of the ~900 a
# minute of 30 fps video decodes with non-reference frames skipped); True downloads each decoded
# picture as PyAV does by default, kept for scripts/gpu_bench.py to compare the two on one machine
NVDEC_DOWNLOADS_ALL = False


def pick_decode_device(setting: str, embeds_on: str) -> str:
    """The decoding device, "cpu" or "cuda", from ASTRADUP_DECODE_DEVICE: `auto` decodes on the GPU when the worker
    embeds on one (it holds the CUDA context NVDEC then shares), else on the CPU."""
    if setting == "auto":
        return "cuda" if embeds_on == "cuda" else "cpu"
    if setting not in ("cpu", "cuda"):
        raise ValueError(f"ASTRADUP_DECODE_DEVICE must be auto, cpu or cuda, not '{setting}'")
    return setting


CU_CTX_SCHED_BLOCKING_SYNC = 0x04
_primary_context = None  # retained for the process's life: no CUDA context made and destroyed per file


def _cuda_context_current() -> None:
    """Make the GPU's primary CUDA context (torch's) current on this thread unless one is, so that
    FFmpeg decodes in it (`current_ctx`) and opening a file creates no CUDA context of its own.

    FFmpeg's `primary_ctx` option cannot be used beside torch: it refuses a primary context that
    is already active with flags other than blocking sync, and torch's is (seen on an H100:
    "Operation not supported"). Blocking sync is set here instead, once per process: with the
    default flags a process waiting for NVDEC's next picture spins its core, which on a box of
    many worker processes is CPU the other stages need."""
    import ctypes

    global _primary_context
    cuda = ctypes.CDLL("libcuda.so.1")
    if _primary_context is None:
        ctx, device = ctypes.c_void_p(), ctypes.c_int()
        for name, call in (
            ("cuInit", lambda: cuda.cuInit(0)),
            ("cuDeviceGet", lambda: cuda.cuDeviceGet(ctypes.byref(device), 0)),
            # CUDA >= 11 allows this on an active context; the flags govern every later wait
            (
                "cuDevicePrimaryCtxSetFlags",
                lambda: cuda.cuDevicePrimaryCtxSetFlags_v2(device, CU_CTX_SCHED_BLOCKING_SYNC),
            ),
            ("cuDevicePrimaryCtxRetain", lambda: cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), device)),
        ):
            status = call()
            if status != 0:
                raise OSError(f"{name} failed with CUDA error {status}")
        _primary_context = ctx
    current = ctypes.c_void_p()
    if cuda.cuCtxGetCurrent(ctypes.byref(current)) == 0 and current.value:
        return
    status = cuda.cuCtxSetCurrent(_primary_context)
    if status != 0:
        raise OSError(f"cuCtxSetCurrent failed with CUDA error {status}")


def _open_video(path: Path, device: str):
    """(container, whether NVDEC was set up for its video stream): the file opened for decoding
    on `device`.

    NVDEC decodes in the CUDA context torch uses (see `_cuda_context_current`); its pictures stay
    on the GPU until `decode_frames` scales one it samples, which downloads that one. A stream NVDEC
    cannot take (a codec or profile it lacks) is decoded by FFmpeg on the CPU; a GPU that cannot
    be opened at all leaves this process on the CPU."""
    import av

    global _gpu_decode_failure
    gpu_error = None
    if device == "cuda" and _gpu_decode_failure is None:
        from av.codec.hwaccel import HWAccel

        # is_hw_owned would otherwise add primary_ctx=1, which fails beside torch's context
        options = {"current_ctx": "1", "primary_ctx": "0"}
        nvdec = HWAccel(
            "cuda", allow_software_fallback=True, options=options, is_hw_owned=not NVDEC_DOWNLOADS_ALL
        )
        try:
            _cuda_context_current()
            container = av.open(str(path), hwaccel=nvdec)
        except (av.error.FFmpegError, OSError) as exc:
            gpu_error = exc  # the GPU, or the file itself: opening it without the GPU tells which
        else:
            video = main_video_stream(container)
            return container, bool(video is not None and video.codec_context.is_hwaccel)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise ExtractionError(f"cannot open the video: {exc}") from exc
    if gpu_error is not None:
        _gpu_decode_failure = f"{type(gpu_error).__name__}: {gpu_error}"
        logger.warning("decoding on the CPU: NVDEC could not be opened (%s)", _gpu_decode_failure)
    return container, False


def display_matrix(frame) -> bytes | None:
    """The display matrix a decoded frame carries (from the container: an MP4/MOV track's matrix,
    which phones write), None where there is none.

    Read through a side-data container of its own: `frame.side_data` caches one on the frame that
    refers back to it, a cycle PyAV 18's classes leave uncollected, so every frame asked kept its
    pictures in memory (+90 MB per one-minute video in a worker, measured)."""
    from av.sidedata.sidedata import SideDataContainer

    data = SideDataContainer(frame).get("DISPLAYMATRIX")
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


# x264 records its settings in an SEI message at the start of its first picture
X264_SETTINGS = b"x264 - core "
HEAD_WINDOW = 64 * 1024  # bytes at a packet's start searched for those settings or a slice header


def x264_settings(data: bytes) -> dict[str, str] | None:
    """The options x264 recorded at the start of a compressed picture ("ref=1 bframes=3 ..."), or
    None where there are none (another encoder, or a picture after the first)."""
    at = data.find(X264_SETTINGS)
    if at < 0:
        return None
    end = data.find(b"\x00", at)
    text = data[at : end if end >= 0 else len(data)].decode("ascii", "replace")
    _, found, options = text.partition(" - options: ")
    if not found:
        return None
    return dict(item.split("=", 1) for item in options.split() if "=" in item)


def p_frames_ignore_b_frames(settings: dict[str, str]) -> bool:
    """Whether x264 with these settings never predicts a P-frame from a B-frame, so that a decoder
    may skip every B-frame and still decode each I- and P-frame exactly.

    x264 lists a P-frame's references nearest first in display order and keeps `ref` of them; the
    nearest is always the previous I- or P-frame (the B-frames that are references are shown
    before it). Without a B-pyramid no B-frame is a reference; the strict (Blu-ray) pyramid drops
    the B-frame references before each P-frame. Interlaced coding is left out (field references)."""
    if settings.get("interlaced", "0") != "0" or settings.get("bframes", "0") == "0":
        return False
    pyramid = settings.get("b_pyramid", "0")
    # without a pyramid no B-frame is a reference: skipping the non-reference frames skips them all
    return pyramid != "0" and (settings.get("ref") == "1" or pyramid == "1")


def _nal_length_size(extradata: bytes | None) -> int:
    """Bytes of each NAL unit's length in an H.264 packet (from the avcC record); 0 for start codes."""
    if extradata and len(extradata) > 4 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return 0


def _is_reference(packet, length_size: int) -> bool:
    """Whether the picture in an H.264 packet is a reference (nal_ref_idc of its first slice);
    True where no slice is found, which keeps the packet decoded."""
    data = memoryview(packet)
    if length_size:
        at = 0
        while at + length_size < len(data):
            header = data[at + length_size]
            if header & 0x1F in (1, 5):
                return header >> 5 != 0
            at += length_size + int.from_bytes(data[at : at + length_size], "big")
        return True
    head = bytes(data[:HEAD_WINDOW])
    at = head.find(b"\x00\x00\x01")
    while 0 <= at < len(head) - 3:
        header = head[at + 3]
        if header & 0x1F in (1, 5):
            return header >> 5 != 0
        at = head.find(b"\x00\x00\x01", at + 3)
    return True


class _Index(NamedTuple):
    keyframes: list[float]  # seconds, in order
    # the reference frames in decoding order, as (pts, is a B-frame: not an I- or P-frame, see
    # `_SkipGate`); only where the first keyframe allows `skip_b`
    references: list[tuple[int, bool]]
    skip_b: bool  # the encoder's settings allow skipping reference B-frames
    max_refs: int  # x264's `ref`
    packets: int = -1  # the stream's packets with data (-1: not counted)
    timed: int = -1  # ... of them with a timestamp (a raw H.264 or HEVC stream has none)


def _index(container, stream) -> _Index:
    """One pass over the packets: the keyframes, the reference frames, and whether the encoder's
    settings allow skipping reference B-frames (the first keyframe must carry x264's settings and
    no later one, from a stream joined to another, may forbid it). Leaves the container at the end."""
    keyframes, references, verdicts = [], [], []
    max_refs = 1
    packets = timed = 0
    shown_last = None  # the latest time shown so far, in decoding order
    tb = float(stream.time_base)
    length_size = _nal_length_size(stream.codec_context.extradata)
    h264 = stream.codec_context.name == "h264"
    for packet in container.demux(stream):
        packets += packet.size > 0
        if packet.pts is None:
            continue
        timed += 1
        anchor = shown_last is None or packet.pts > shown_last  # an I- or P-frame
        if anchor:
            shown_last = packet.pts
        if packet.is_keyframe:
            keyframes.append(packet.pts * tb)
            settings = x264_settings(memoryview(packet)[:HEAD_WINDOW].tobytes())
            verdicts.append(None if settings is None else p_frames_ignore_b_frames(settings))
            if settings is not None and settings.get("ref", "").isdigit():
                max_refs = max(max_refs, int(settings["ref"]))
        if h264 and verdicts and verdicts[0] and (anchor or _is_reference(packet, length_size)):
            references.append((packet.pts, not anchor))
    skip_b = h264 and bool(verdicts) and verdicts[0] is True and False not in verdicts
    return _Index(sorted(keyframes), references, skip_b, max_refs, packets, timed)


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


class _SkipGate:
    """Which frames the decoder may skip, packet by packet.

    Non-reference frames always. With `skip_b` (see `p_frames_ignore_b_frames`) the reference
    B-frames too, except those the sampler may take and the ones decoded shortly before them, so
    that the sampler, which takes the first picture shown from 0.05 s before each wanted time,
    gets the very pictures, at the very times, that skipping only the non-reference frames gives.

    The sampler may take the reference B-frames of the mini-GOP (the B-frames shown between two
    I- or P-frames) where a wanted time falls. Such a B-frame is predicted from the I- or P-frames
    around it only, but a skipped reference frame leaves a gap in the decoder's reference buffer
    that pushes those out, until enough references have been decoded since: so the reference
    B-frames among the `REFS_BEFORE` references (beyond x264's `ref`) decoded before a wanted one
    are decoded too. In decoding order an I- or P-frame is shown after every frame decoded before
    it, and the B-frames that follow it are shown before it."""

    REFS_BEFORE = 2

    def __init__(self, targets: list[float], index: _Index, tb: float, skip: bool = True):
        self.base = "NONREF" if skip else "DEFAULT"  # without `skip`, nothing is skipped
        self.skip_b = index.skip_b and skip
        self.skipped = "BIDIR" if self.skip_b else self.base  # for `Decoded.skipped`
        refs = index.references
        self.b_refs = {pts for pts, is_b in refs if is_b}
        self.decoded = set()  # the reference B-frames to decode
        anchors = [i for i, (_, is_b) in enumerate(refs) if not is_b]  # positions in `refs`
        shown = [refs[i][0] for i in anchors]  # their times, increasing
        back = index.max_refs + self.REFS_BEFORE
        for t in targets:
            j = bisect_right(shown, (t - 0.05) / tb)  # shown[j - 1] <= start < shown[j]
            if j >= len(anchors):
                continue
            # the mini-GOP's B-frames follow its closing I- or P-frame in decoding order
            i = anchors[j]
            end = anchors[j + 1] if j + 1 < len(anchors) else len(refs)
            if end > i + 1:
                self.decoded.update(pts for pts, is_b in refs[max(0, i - back) : end] if is_b)

    def mode(self, pts: int | None) -> str:
        if not self.skip_b or pts is None or pts not in self.b_refs or pts in self.decoded:
            return self.base
        return "BIDIR"

    def feed(self, codec, packet) -> list:
        mode = self.mode(packet.pts)
        if codec.skip_frame != mode:
            codec.skip_frame = mode
        return codec.decode(packet)


def _picture_after_seek(container, stream, key: float, wanted: float, gate: _SkipGate):
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
) -> Decoded:
    """One frame per 1/fps seconds plus the last frame; `device` "cuda" decodes with NVDEC where it
    can (see `_open_video`). `skip` lets the decoder skip the frames that no sampled picture needs
    (see `_SkipGate`); without it every frame is decoded."""
    import av
    from av.video.reformatter import VideoReformatter

    container, on_gpu = _open_video(path, device)
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
        out_w, out_h = _working_size(width, height)
        turned_w, turned_h = _working_size(height, width)
        n_targets = min(max_frames, max(1, int(np.floor(duration * fps)) + 1 if duration > 0 else max_frames))
        targets = [start + i / fps for i in range(n_targets)]
        try:
            index = _index(container, stream)
        except av.error.FFmpegError:
            index = _Index([], [], False, 1)
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
            container, on_gpu = _open_video(path, device)
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
        gate = _SkipGate(targets, index, tb, skip)
        codec = stream.codec_context

        times: list[float] = []
        images: list[np.ndarray] = []
        turned = False
        last: tuple[float, object] | None = None
        # one scaler for all pictures: `frame.to_ndarray(width=…)` sets up a new one per frame, which
        # took half of its 3.2 ms at 720p; the pixels are the same
        scaler = VideoReformatter()

        def picture(frame) -> np.ndarray:
            """The frame upright at the working size of the picture players show."""
            nonlocal turned
            matrix = display_matrix(frame)
            turned = turns_sideways(matrix)
            # scaled as stored, to the size that is the working size once turned
            w, h = (turned_h, turned_w) if turned else (out_w, out_h)
            return upright(scaler.reformat(frame, width=w, height=h, format="rgb24").to_ndarray(), matrix)

        ti = 0
        pos = -1e9

        def frames_from(seek_to: float | None):
            if seek_to is not None:
                # the keyframe's own pts: truncating would land on the keyframe before it
                container.seek(round(seek_to / tb), stream=stream, backward=True)
            for packet in container.demux(stream):
                yield from gate.feed(codec, packet)

        gen = frames_from(None)
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
        return decode_frames(path, duration, fps=fps, max_frames=max_frames, skip=False, device=device)
    if not images:
        raise ExtractionError("no decodable video frames (truncated or corrupt file)")
    return Decoded(
        np.asarray(times, dtype=np.float32), images, "cuda" if on_gpu else "cpu", gate.skipped, turned
    )


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
    w, h = _working_size(height, width) if turned else _working_size(width, height)
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
    path: Path, duration: float, *, fps: float | None = None, max_frames: int = 3600, device: str = "cpu"
) -> SampledFrames:
    fps = sampling_fps(duration, max_frames=max_frames) if fps is None else fps
    times, images, decoded_on, skipped, turned = decode_frames(
        path, duration, fps=fps, max_frames=max_frames, device=device
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
