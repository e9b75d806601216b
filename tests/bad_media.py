"""A corpus of nasty inputs, made at test time: broken containers, odd codecs, pixel formats and
audio layouts, non-regular files. Each maker writes one input at `path` (tiny frames, 1-3 s) and
may use `good`, a healthy clip, as raw material."""

import os
import random
import socket
import struct
from pathlib import Path

from .media import ffmpeg, make_clip

SIZE = "160x120"
# a few seconds of moving picture: frames the sampler can tell apart (and embed)
PICTURE = f"testsrc2=size={SIZE}:rate=10"
TONE = "sine=frequency=440:sample_rate=44100"


def encode(
    path: Path,
    *vcodec: str,
    source: str = PICTURE,
    audio: str | None = None,
    acodec: tuple[str, ...] = ("-c:a", "aac"),
    duration: float = 2.0,
    vf: str | None = None,
    af: str | None = None,
    fmt: tuple[str, ...] = (),
) -> Path:
    """`duration` seconds of `source` encoded with the `vcodec` arguments (and `audio`, a lavfi
    source, with `acodec`), into `path` (its extension picks the container unless `fmt` does)."""
    args = ["-f", "lavfi", "-i", source]
    if audio is not None:
        args += ["-f", "lavfi", "-i", audio]
    if vf:
        args += ["-vf", vf]
    args += list(vcodec)
    if audio is not None:
        if af:
            args += ["-af", af]
        args += list(acodec)
    ffmpeg(*args, "-t", str(duration), *fmt, str(path))
    return path


def x264(path: Path, *extra: str, pix_fmt: str = "yuv420p", **kwargs) -> Path:
    return encode(path, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pix_fmt, *extra, **kwargs)


def with_audio(path: Path, layout: str, *, rate: int = 44100, acodec=("-c:a", "aac")) -> Path:
    """The picture with a noise track in channel `layout` at `rate` Hz."""
    return x264(
        path,
        audio=f"anoisesrc=d=2:sample_rate={rate}:amplitude=0.3",
        af=f"aformat=channel_layouts={layout}:sample_rates={rate}",
        acodec=acodec,
    )


def random_bytes(path: Path, n: int = 200_000) -> Path:
    path.write_bytes(random.Random(24).randbytes(n))
    return path


def truncated(path: Path, good: Path, fraction: float) -> Path:
    data = good.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def faststart(path: Path) -> Path:
    """A clip whose moov atom (the index) comes first, as web video is written."""
    return x264(path, "-movflags", "+faststart", duration=3)


def without_moov(path: Path) -> Path:
    """An MP4 without its index atom: the samples are there, the table of them is not (renaming
    the atom is not enough: FFmpeg finds a moov renamed "free")."""
    data = faststart(path).read_bytes()
    at = data.find(b"moov") - 4
    size = struct.unpack(">I", data[at : at + 4])[0]
    path.write_bytes(data[:at] + data[at + size :])
    return path


def moov_cut_off(path: Path) -> Path:
    """An MP4 written as a camera writes it (index at the end), cut before the index: a recording
    that stopped when the battery died."""
    x264(path, duration=3)
    data = path.read_bytes()
    at = data.rfind(b"moov")
    assert at > len(data) // 2, "ffmpeg wrote the moov atom first"
    path.write_bytes(data[: at - 4])
    return path


def corrupted_middle(path: Path) -> Path:
    """A clip with a run of random bytes over the middle of its media data."""
    data = bytearray(faststart(path).read_bytes())
    mid = len(data) // 2
    rng = random.Random(7)
    data[mid : mid + 4000] = rng.randbytes(4000)
    path.write_bytes(bytes(data))
    return path


def declared_forever(path: Path) -> Path:
    """A two-second Matroska file whose header says it lasts some thirty years."""
    x264(path, fmt=("-f", "matroska"))
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Segment Info's Duration: an 8-byte float, in milliseconds
    assert at > 0, "no Duration element"
    data[at + 3 : at + 11] = struct.pack(">d", 1e12)
    path.write_bytes(bytes(data))
    return path


def mkv_without_cues(path: Path) -> Path:
    """Matroska written to a pipe: no seek index (Cues) and no duration in its header."""
    x264(path.with_suffix(".tmp.mkv"), audio=TONE, duration=3)
    with open(path, "wb") as out:
        import subprocess

        subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path.with_suffix(".tmp.mkv")), "-c", "copy"]
            + ["-f", "matroska", "pipe:1"],
            stdout=out,
            check=True,
        )
    path.with_suffix(".tmp.mkv").unlink()
    return path


def audio_with_cover(path: Path) -> Path:
    """A song with its album art: the only video stream is one attached picture."""
    cover = path.with_suffix(".cover.png")
    ffmpeg("-f", "lavfi", "-i", f"{PICTURE}", "-frames:v", "1", str(cover))
    ffmpeg(
        *("-f", "lavfi", "-i", "sine=duration=2", "-i", str(cover)),
        *("-map", "0:a", "-map", "1:v", "-c:a", "aac", "-c:v", "mjpeg", "-disposition:v", "attached_pic"),
        str(path),
    )
    cover.unlink()
    return path


def empty_video_track(path: Path, good: Path) -> Path:
    """A container with a video track that holds no picture, beside the sound of `good`."""
    import av

    with av.open(str(good)) as src, av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        sound = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = sound
                out.mux(packet)
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def unix_socket(path: Path) -> Path:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the socket file stays: nothing listens on it
    return path


def symlink_loop(path: Path) -> Path:
    path.symlink_to(path.name)
    return path


def dangling_symlink(path: Path) -> Path:
    path.symlink_to(path.parent / "gone-long-ago.mp4")
    return path


def good_clip(path: Path, **kwargs) -> Path:
    return make_clip(path, duration=kwargs.pop("duration", 2.0), **kwargs)
