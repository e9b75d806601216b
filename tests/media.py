"""Test media made with ffmpeg at test time: small, a few seconds, deterministic."""

import subprocess
from pathlib import Path

SOURCES = {
    "mandelbrot": "mandelbrot=size={w}x{h}:rate={fps}",
    "life": "life=size={w}x{h}:rate={fps}:seed=7:mold=10:ratio=0.3",
    "testsrc": "testsrc2=size={w}x{h}:rate={fps}",
    "cells": "cellauto=size={w}x{h}:rate={fps}:rule=110:seed=3",
    "black": "color=c=black:size={w}x{h}:rate={fps}",
}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def make_clip(
    path: Path,
    *,
    source: str = "mandelbrot",
    duration: float = 4.0,
    size: tuple[int, int] = (160, 120),
    fps: int = 25,
    tone: float | None = 440.0,
    noise_seed: int | None = None,
    start: float = 0.0,
    vf: str | None = None,
    codec: str = "libx264",
    crf: int = 23,
) -> Path:
    """An H.264 + AAC mp4; `tone` None means no audio track. `start` skips into the source."""
    w, h = size
    src = SOURCES[source].format(w=w, h=h, fps=fps)
    args = ["-f", "lavfi", "-i", src]
    if tone is not None:
        audio = f"sine=frequency={tone}:sample_rate=22050"
        if noise_seed is not None:
            # a seeded "melody": the pitch changes every third of a second, differently per seed
            pitch = f"(220+110*mod(floor(t*3)*{2 * noise_seed + 3}+{noise_seed}\\,9))"
            audio = f"aevalsrc=0.4*sin(2*PI*t*{pitch})+0.2*sin(4*PI*t*{pitch}):s=22050"
        args += ["-f", "lavfi", "-i", audio]
    filters = [f"trim=start={start}:duration={duration}", "setpts=PTS-STARTPTS"]
    if vf:
        filters.append(vf)
    args += ["-filter:v", ",".join(filters)]
    if tone is not None:
        args += ["-filter:a", f"atrim=start={start}:duration={duration},asetpts=PTS-STARTPTS", "-c:a", "aac"]
    args += [
        "-c:v",
        codec,
        "-pix_fmt",
        "yuv420p",
        "-crf",
        str(crf),
        "-preset",
        "ultrafast",
        "-t",
        str(duration),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(*args, str(path))
    return path


def transcode(src: Path, dst: Path, *, vf: str | None = None, crf: int = 30, audio: bool = True) -> Path:
    args = ["-i", str(src)]
    if vf:
        args += ["-vf", vf]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac"] if audio else ["-an"]
    ffmpeg(*args, str(dst))
    return dst


def concat(parts: list[Path], dst: Path, size: tuple[int, int] = (160, 120)) -> Path:
    """Concatenate clips (re-encoded to one size) with their audio."""
    args = []
    for p in parts:
        args += ["-i", str(p)]
    n = len(parts)
    w, h = size
    chains = "".join(f"[{i}:v]scale={w}:{h},setsar=1,fps=25[v{i}];" for i in range(n))
    inputs = "".join(f"[v{i}][{i}:a]" for i in range(n))
    graph = f"{chains}{inputs}concat=n={n}:v=1:a=1[v][a]"
    ffmpeg(
        *args,
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(dst),
    )
    return dst


def with_display_matrix(src: Path, dst: Path, degrees: int, *, hflip: bool = False) -> Path:
    """`src` remuxed (the same packets) into an MP4 whose video track carries a display matrix, as
    phones write them: `degrees` counter-clockwise, then mirrored where `hflip`."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {}
        for stream in inp.streams:
            copied = out.add_stream_from_template(stream)
            if stream.type == "video":
                copied.set_display_rotation(degrees, hflip=hflip)
            streams[stream.index] = copied
        for packet in inp.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst
