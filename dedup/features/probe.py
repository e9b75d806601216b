"""Container probing (PyAV), content sniffing and hashing."""

import errno
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

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


class FileRefused(Exception):
    """A path the product will not open; the message names the real cause, for a person to act on."""


_KINDS = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFDIR: "directory",
}


def file_kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "special file")


def refusal_of(path: str | Path, exc: OSError) -> str:
    """Why an OSError met while resolving or opening `path` stops us, in words naming the cause (a
    symlink loop is not "file not found", a FIFO is not "file is empty")."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        if os.path.islink(path):
            target = os.path.join(os.path.dirname(path), os.readlink(path))
            return f"broken symlink (its target {target} was not found)"
        return "file not found"
    return exc.strerror or str(exc)


def is_inside(path: str, root: str) -> bool:
    """`path` is `root` or below it; both already resolved."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def regular_file(path: str | Path, *, within: Iterable[str | Path]) -> tuple[str, os.stat_result]:
    """The resolved path of `path` and its stat, if it is a readable regular file that resolves
    (every symlink on the way followed) inside one of the folders `within`; FileRefused saying why
    otherwise. Opens nothing, so a FIFO or a device is refused without blocking on it."""
    try:
        real = os.path.realpath(path, strict=True)
        found = os.stat(real)
    except OSError as exc:
        raise FileRefused(refusal_of(path, exc)) from None
    if not any(is_inside(real, os.path.realpath(root)) for root in within):
        if real != os.path.abspath(path):
            raise FileRefused("symlink points outside the import root")
        raise FileRefused("outside the import roots")
    if not stat.S_ISREG(found.st_mode):
        raise FileRefused(f"not a regular file ({file_kind(found.st_mode)})")
    if not os.access(real, os.R_OK):
        raise FileRefused("permission denied")
    return real, found


def open_regular(path: str | Path, *, within: Iterable[str | Path]) -> BinaryIO:
    """Open `path` for reading where `regular_file` admits it. The resolved path is opened with
    O_NOFOLLOW and the descriptor must be the very file that was checked, so a symlink or FIFO
    swapped in between the check and the open is refused too."""
    real, checked = regular_file(path, within=within)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink that was not there a moment ago
            raise FileRefused("file changed while it was opened") from None
        raise FileRefused(refusal_of(real, exc)) from None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            raise FileRefused("file changed while it was opened")
        os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
        fh.raw.name = real  # type: ignore[attr-defined]  # a FileIO: not the descriptor's number: what was opened, for messages and reopening
        return fh
    except BaseException:
        os.close(fd)
        raise


def reopenable_path(fh: BinaryIO) -> str:
    """A path by which a library that opens by name (PyAV) reaches the very file `fh` holds, even
    if the name has since been pointed elsewhere (Linux's /proc); else the file's name."""
    proc = f"/proc/self/fd/{fh.fileno()}"
    return proc if os.path.exists(proc) else fh.name


def looks_like_video(path: Path) -> bool:
    """Sniff the first bytes for a video container signature (extensions lie both ways). Only a
    regular file is read: opening a FIFO would wait for a writer forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        start = fh.read(512)
    head = start[:64]
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
        return b"theora" in start
    return False


def has_video_extension(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def sha256_file(path: Path | BinaryIO, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, by path or of an already opened binary file (read from where it is)."""
    if not isinstance(path, str | os.PathLike):
        return _sha256_of(path, chunk)
    with open(path, "rb") as fh:
        return _sha256_of(fh, chunk)


def _sha256_of(fh: BinaryIO, chunk: int) -> str:
    digest = hashlib.sha256()
    while block := fh.read(chunk):
        digest.update(block)
    return digest.hexdigest()


def main_video_stream(container: Any) -> Any:
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


def probe_video(path: Path) -> Probe:
    """Read container and stream facts; raise ExtractionError with a reason a person can act on.

    In-process through PyAV (libavformat, what ffprobe reads with): an `ffprobe` child cost
    0.07 CPU-s per video, PyAV 0.006 (docs/benchmarks.md)."""
    import av

    path = Path(path)
    try:
        found = path.stat()
    except OSError as exc:
        if exc.errno == errno.ENOENT and not path.is_symlink():
            raise ExtractionError("file not found (moved or deleted after it was ingested)") from None
        raise ExtractionError(refusal_of(path, exc)) from None
    if not stat.S_ISREG(found.st_mode):  # av.open on a FIFO waits for a writer forever
        raise ExtractionError(f"not a regular file ({file_kind(found.st_mode)})")
    if not os.access(path, os.R_OK):
        raise ExtractionError("file is not readable (permission denied)")
    size = found.st_size
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
