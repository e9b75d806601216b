"""Container probing (PyAV), content sniffing and hashing."""

import errno
import hashlib
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from . import ExtractionError

VIDEO_EXTENSIONS = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".wmv",
    ".asf",
    ".flv",
    ".mpg",
    ".mpeg",
    ".ts",
    ".m2ts",
    ".mts",
    ".3gp",
    ".3g2",
    ".ogv",
    ".vob",
    ".divx",
    ".f4v",
}


@dataclass(frozen=True)
class Probe:
    container: str
    duration: float
    width: int
    height: int
    fps: float
    video_codec: str
    audio_codec: str
    bitrate: int
    size: int
    has_audio: bool
    # the pixels' own aspect (width to height): anamorphic DVD, broadcast and HDV video stores a
    # 16:9 picture in 720 x 576 or 1440 x 1080 pixels that players widen by this much
    sar: float = 1.0

    def turned(self) -> "Probe":
        """The facts of the picture players show turned a quarter: width and height swap, and the
        pixels turn with it (a pixel 4:3 wide stands 3:4)."""
        return replace(self, width=self.height, height=self.width, sar=round(1 / self.sar, 4))


def looks_like_video(path: Path) -> bool:
    """Sniff the first bytes for a video container signature (extensions lie both ways)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    if len(head) < 12:
        return False
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        brand = head[8:12]
        # Audio-only MPEG-4 brands are still "video containers" for the prober, but a library of
        # songs is not what users point us at; keep them out unless their extension says video.
        return brand not in (b"M4A ", b"M4B ", b"M4P ")
    if head[:4] == b"\x1a\x45\xdf\xa3":  # Matroska / WebM (EBML)
        return True
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return True
    if head[:3] == b"FLV":
        return True
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):  # MPEG program stream / elementary
        return True
    if head[0] == 0x47 and len(head) > 188 and head[188] == 0x47:
        return True
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):  # ASF / WMV
        return True
    if head[:4] == b"OggS":
        return b"theora" in head or b"\x80theora" in _read(path, 512)
    return False


def _read(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def has_video_extension(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def main_video_stream(container):
    """The video stream that is the film: the first one that is not a cover picture (an MP4's or
    MKV's album art is a one-picture video stream); None where there is none."""
    import av

    return next(
        (s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic),
        None,
    )


def pixel_aspect(stream) -> float:
    """A video stream's sample (pixel) aspect ratio, the container's or else the bitstream's,
    rounded to 4 places; exactly 1 where neither says (0/1), where the value is implausible (players
    then show square pixels) and where it is within 1 % of square (no one sees that), so that
    "anamorphic" is simply `sar != 1`."""
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    sar = float(sar) if sar else 1.0
    return round(sar, 4) if 0.25 <= sar <= 4.0 and abs(sar - 1.0) >= 0.01 else 1.0


NOT_REGULAR = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def _regular_file_size(path: Path) -> int:
    """The size of the regular file at `path` (a symlink followed); ExtractionError naming what is
    there instead. Checked before anything opens it: opening a FIFO blocks until someone writes."""
    try:
        mode, size = (st := path.stat()).st_mode, st.st_size
    except FileNotFoundError:
        if path.is_symlink():
            raise ExtractionError(f"broken symlink: its target {os.readlink(path)} does not exist") from None
        raise ExtractionError("file not found (moved or deleted after it was ingested)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ExtractionError("symlink loop: following the link never reaches a file") from None
        if exc.errno == errno.EACCES:
            raise ExtractionError("file is not readable (permission denied)") from None
        raise ExtractionError(f"cannot read the file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        what = next((name for test, name in NOT_REGULAR if test(mode)), "special file")
        raise ExtractionError(f"not a regular file ({what})")
    return size


def probe_video(path: Path) -> Probe:
    """Read container and stream facts; raise ExtractionError with a reason a person can act on.

    In-process through PyAV (libavformat, what ffprobe reads with): an `ffprobe` child cost
    0.07 CPU-s per video, PyAV 0.006 (docs/benchmarks.md)."""
    import av

    path = Path(path)
    size = _regular_file_size(path)
    if not os.access(path, os.R_OK):
        raise ExtractionError("file is not readable (permission denied)")
    if size == 0:
        raise ExtractionError("file is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc) or "unknown error"
        raise ExtractionError(f"not a readable video file: {detail}") from exc
    with container:
        video = main_video_stream(container)
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None:
            if audio is not None:
                raise ExtractionError("no video stream: this is an audio-only file")
            raise ExtractionError("no video stream found in the file")
        duration = 0.0
        if container.duration:
            duration = container.duration / av.time_base
        elif video.duration and video.time_base:
            duration = float(video.duration * video.time_base)
        fps = float(video.average_rate or video.base_rate or 0)
        if duration <= 0 and video.frames and fps:
            duration = video.frames / fps
        width, height = video.codec_context.width, video.codec_context.height
        if width <= 0 or height <= 0:
            raise ExtractionError("video stream has no frame size (corrupt header)")
        bitrate = int(container.bit_rate or 0) or (int(size * 8 / duration) if duration > 0 else 0)
        return Probe(
            container=container.format.name,
            duration=round(duration, 3),
            width=width,
            height=height,
            fps=round(fps, 3),
            video_codec=video.codec_context.codec.canonical_name,
            audio_codec=audio.codec_context.codec.canonical_name if audio else "",
            bitrate=bitrate,
            size=size,
            has_audio=audio is not None,
            sar=pixel_aspect(video),
        )
