import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dedup.features import ExtractionError
from dedup.features.probe import looks_like_video, probe_video, sha256_file

from .media import ffmpeg, make_clip


def test_it_reads_container_and_stream_facts(clip):
    probe = probe_video(clip)
    assert probe.width == 160 and probe.height == 120
    assert 5.9 <= probe.duration <= 6.1
    assert probe.fps == pytest.approx(25, abs=0.1)
    assert probe.video_codec == "h264" and probe.audio_codec == "aac"
    assert probe.has_audio and probe.size == clip.stat().st_size and probe.bitrate > 0


def test_it_reads_what_ffprobe_reads(clip):
    """PyAV replaced an ffprobe child: the facts stored for a video must not change with it."""
    info = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(clip)],
            capture_output=True,
            check=True,
        ).stdout
    )
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    probe = probe_video(clip)
    assert probe.container == info["format"]["format_name"]
    assert probe.duration == pytest.approx(float(info["format"]["duration"]), abs=0.01)
    assert (probe.width, probe.height) == (video["width"], video["height"])
    assert (probe.video_codec, probe.audio_codec) == (video["codec_name"], audio["codec_name"])
    assert probe.bitrate == pytest.approx(int(info["format"]["bit_rate"]), rel=0.01)


@pytest.mark.parametrize(
    ("codec", "suffix", "sar"), [("libx264", ".mp4", "4/3"), ("mpeg2video", ".mpg", "64/45")]
)
def test_it_reads_the_pixel_aspect_of_anamorphic_video(tmp_path, clip, codec, suffix, sar):
    """DVD, broadcast and HDV video stores a 16:9 picture in narrower pixels that players widen;
    ffprobe's sample_aspect_ratio is what the probe reads (1 where the pixels are square)."""
    path = make_clip(
        tmp_path / f"anamorphic{suffix}",
        size=(240, 180),
        duration=2,
        tone=None,
        vf=f"setsar={sar}",
        codec=codec,
    )
    info = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)],
            capture_output=True,
            check=True,
        ).stdout
    )
    num, den = info["streams"][0]["sample_aspect_ratio"].split(":")
    probe = probe_video(path)
    assert (probe.width, probe.height) == (240, 180)
    assert probe.sar == pytest.approx(int(num) / int(den), abs=1e-3) and probe.sar > 1.3
    assert probe_video(clip).sar == 1.0


def test_pixels_within_a_percent_of_square_count_as_square(tmp_path):
    """Encoders write such ratios from rounding (e.g. 1.005); nobody sees them, so the video is not
    anamorphic and its size is shown as stored."""
    path = make_clip(tmp_path / "nearly.mp4", size=(200, 150), duration=1, tone=None, vf="setsar=201/200")
    assert probe_video(path).sar == 1.0


def test_it_reports_a_video_without_sound(other_clip):
    assert probe_video(other_clip).has_audio is False


def test_it_sniffs_videos_by_content_not_extension(tmp_path, clip):
    renamed = tmp_path / "holiday.bin"
    renamed.write_bytes(clip.read_bytes())
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 10)
    assert looks_like_video(renamed)
    assert not looks_like_video(fake)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, I am text pretending to be a video\n" * 20), "not a readable video"),
    ],
)
def test_it_explains_why_a_file_is_not_a_video(tmp_path, make, reason):
    path = tmp_path / "bad.mp4"
    make(path)
    with pytest.raises(ExtractionError, match=reason):
        probe_video(path)


def test_it_refuses_audio_only_files(tmp_path):
    path = tmp_path / "song.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-c:a", "aac", str(path))
    with pytest.raises(ExtractionError, match="audio-only"):
        probe_video(path)


def test_it_reports_missing_files(tmp_path):
    with pytest.raises(ExtractionError, match="not found"):
        probe_video(tmp_path / "gone.mp4")


def test_it_reports_unreadable_files(clip):
    """As root every file is readable, so the probe runs in a forked child that drops to `nobody`."""
    folder = Path(tempfile.mkdtemp(prefix="astradup-perm-"))
    try:
        folder.chmod(0o755)
        locked = folder / "locked.mp4"
        shutil.copy(clip, locked)
        locked.chmod(0)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report the probe's verdict through the pipe, then leave at once
            message = "no error"
            try:
                if os.geteuid() == 0:
                    os.setuid(65534)
                probe_video(locked)
            except ExtractionError as exc:
                message = str(exc)
            except BaseException as exc:  # anything else is a failure the parent reports
                message = f"unexpected {type(exc).__name__}: {exc}"
            os.write(write_end, message.encode())
            os._exit(0)
        os.close(write_end)
        os.waitpid(pid, 0)
        message = os.read(read_end, 4096).decode()
        os.close(read_end)
        assert "permission denied" in message, message
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_sha256_is_stable(clip, tmp_path):
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(clip.read_bytes())
    assert sha256_file(copy) == sha256_file(clip) and len(sha256_file(clip)) == 64


def test_a_truncated_file_still_probes_or_fails_with_a_reason(tmp_path):
    full = make_clip(tmp_path / "full.mp4", duration=4)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(Path(full).read_bytes()[:2000])
    with pytest.raises(ExtractionError):
        probe_video(cut)


def _probe_error(path: Path) -> str:
    """probe_video's reason, in a thread given a deadline: a FIFO opened for reading blocks until
    someone writes, so a regression must fail here, not hang the suite."""
    import threading

    outcome = {}

    def probe():
        try:
            probe_video(path)
        except ExtractionError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), f"probing {path.name} hangs"
    return outcome.get("error", "")


def test_what_is_not_a_regular_file_is_named_as_such_and_never_opened(tmp_path):
    import socket

    os.mkfifo(tmp_path / "pipe.mp4")
    (tmp_path / "folder.mp4").mkdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "socket.mp4"))
        assert _probe_error(tmp_path / "socket.mp4") == "not a regular file (socket)"
    assert _probe_error(tmp_path / "pipe.mp4") == "not a regular file (FIFO)"
    assert _probe_error(tmp_path / "folder.mp4") == "not a regular file (directory)"


def test_broken_and_looping_symlinks_are_named_as_such(tmp_path):
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    assert _probe_error(tmp_path / "loop.mp4").startswith("symlink loop")
    assert _probe_error(tmp_path / "dangling.mp4").startswith("broken symlink")
    assert str(tmp_path / "gone.mp4") in _probe_error(tmp_path / "dangling.mp4")
    assert _probe_error(tmp_path / "never-there.mp4").startswith("file not found")
