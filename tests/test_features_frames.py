import numpy as np
import pytest

from dedup.features.frames import one_per_second, sample_frames, sampling_fps
from dedup.features.probe import probe_video

from .media import make_clip


def test_it_samples_one_frame_per_second_plus_the_last(clip):
    frames = sample_frames(clip, probe_video(clip).duration, fps=1.0)
    assert len(frames.images) == 7  # 0..5 s, then the last frame near 5.96 s
    assert np.allclose(frames.times[:6], np.arange(6), atol=0.05)
    assert frames.times[-1] > 5.5
    assert frames.images[0].shape == (120, 160, 3)
    assert frames.informative.all()


def test_short_videos_are_sampled_faster_and_index_one_frame_per_second(clip):
    assert [sampling_fps(d) for d in (0.5, 6, 8, 12, 20, 31.9, 32, 600)] == [4, 4, 2, 2, 1, 1, 1, 1]
    frames = sample_frames(clip, probe_video(clip).duration)  # 6 s: 4 fps
    assert 24 <= len(frames.times) <= 25  # the target at 6.0 s may take the last frame, 5.96 s
    # each target takes the first decoded frame from 0.05 s before it (non-reference frames skipped)
    assert np.allclose(np.diff(frames.times), 0.25, atol=0.1)
    indexed = one_per_second(frames.times)
    # the frame nearest each whole second, the last one (5.96 s) standing for 6 s
    assert np.allclose(frames.times[indexed], np.arange(7), atol=0.05)
    assert one_per_second(np.arange(5, dtype=np.float32)).all()


def test_a_clip_shorter_than_a_second_still_gets_a_frame(tmp_path):
    short = make_clip(tmp_path / "short.mp4", duration=0.3)
    frames = sample_frames(short, probe_video(short).duration)
    assert len(frames.images) >= 1


def test_letterbox_bars_are_cropped_before_hashing(tmp_path):
    boxed = make_clip(
        tmp_path / "boxed.mp4", duration=3, size=(160, 90), vf="scale=160:60,pad=160:90:0:15:black"
    )
    frames = sample_frames(boxed, probe_video(boxed).duration)
    top, bottom, left, right = frames.crop
    assert 12 <= top <= 16 and 12 <= bottom <= 16 and left == right == 0
    assert frames.images[0].shape[0] == 90 - top - bottom


def test_a_dark_flickering_edge_of_the_picture_is_not_a_bar():
    from dedup.features.frames import detect_bars

    rng = np.random.default_rng(1)
    frames = []
    for _ in range(8):
        img = rng.integers(60, 200, (90, 160, 3), dtype=np.uint8)
        img[:, :20] = rng.integers(
            0, 25, (90, 20, 3), dtype=np.uint8
        )  # dark footage (a blurred visualiser's edge)
        img[:, 150:] = 16  # a steady pillarbox bar
        frames.append(img)
    assert detect_bars(frames) == (0, 0, 0, 10)


def test_thumbnails_are_16x16_grey_area_averages():
    from dedup.features.lowres import thumbnail

    img = np.zeros((90, 160, 3), dtype=np.uint8)
    img[:, 80:] = 255
    t = thumbnail(img)
    assert t.shape == (256,) and t.dtype == np.uint8
    assert (t.reshape(16, 16)[:, :8] == 0).all() and (t.reshape(16, 16)[:, 8:] == 255).all()


def test_black_frames_are_marked_uninformative(tmp_path):
    black = make_clip(tmp_path / "black.mp4", source="black", duration=2)
    frames = sample_frames(black, probe_video(black).duration)
    assert not frames.informative.any()


def test_4k_frames_are_scaled_down_in_the_decoder(tmp_path):
    big = make_clip(tmp_path / "big.mp4", source="testsrc", duration=1, size=(3840, 2160), fps=5, tone=None)
    frames = sample_frames(big, probe_video(big).duration)
    assert frames.images[0].shape[1] == 320


@pytest.mark.parametrize("fps", [10, 30])
def test_sampling_follows_the_timeline_whatever_the_frame_rate(tmp_path, fps):
    path = make_clip(tmp_path / f"f{fps}.mp4", duration=5, fps=fps)
    frames = sample_frames(path, probe_video(path).duration, fps=1.0)
    assert np.allclose(frames.times[:5], np.arange(5), atol=0.11)


def _keyframed(tmp_path, name: str, *, rate: str, keys: str, seconds: float = 8.0):
    from .media import ffmpeg

    out = tmp_path / name
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={rate}", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-force_key_frames", keys, str(out),
    )  # fmt: skip
    return out


def test_the_sampler_seeks_to_keyframes_at_odd_timebases(tmp_path):
    """A keyframe at 5.395 s in a 1506/125 fps stream: seeking must land on it (the truncated
    timestamp lands one keyframe early, and the sampler used to loop there forever)."""
    import subprocess
    import sys

    path = _keyframed(tmp_path, "odd.mp4", rate="1506/125", keys="0,1.992,5.395")
    code = (
        "import sys; from dedup.features.frames import decode_frames; "
        f"t, _, _ = decode_frames({str(path)!r}, 8.0); print(len(t))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == 9  # 0..7 s and the last frame


def test_an_all_intra_video_samples_the_same_seconds_as_a_long_gop_one(tmp_path):
    intra = _keyframed(tmp_path, "intra.mp4", rate="25", keys="expr:1")
    long_gop = _keyframed(tmp_path, "gop.mp4", rate="25", keys="0")
    a = sample_frames(intra, probe_video(intra).duration, fps=1.0)
    b = sample_frames(long_gop, probe_video(long_gop).duration, fps=1.0)
    # seeking (all-intra) and decoding forward (long GOP) both take each second's frame, give or
    # take one frame at 25 fps
    assert len(a.times) == len(b.times) == 9
    assert np.allclose(a.times, b.times, atol=0.05)
    assert np.allclose(a.times[:8], np.arange(8), atol=0.05)


@pytest.mark.parametrize(
    "rate, keys",
    [("30", "expr:gte(t,n_forced)"), ("25", "expr:gte(t,n_forced*1.37)")],
    ids=["a keyframe each second", "keyframes between the seconds"],
)
def test_seeking_to_each_second_gives_the_pictures_decoding_on_gives(tmp_path, monkeypatch, rate, keys):
    """Short-GOP sources are sampled by seeking to the keyframe before each second and decoding
    only up to the wanted picture, then draining the decoder: the pictures must be the very ones
    that decoding on from the keyframe yields, B-frames and all."""
    from dedup.features import frames

    from .media import ffmpeg

    path = tmp_path / "short_gop.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={rate}", "-t", "10",
        "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-pix_fmt", "yuv420p",
        "-force_key_frames", keys, "-sc_threshold", "0", str(path),
    )  # fmt: skip
    used = []
    seek_and_drain = frames._picture_after_seek
    monkeypatch.setattr(frames, "_picture_after_seek", lambda *a: used.append(seek_and_drain(*a)) or used[-1])
    times, images, _ = frames.decode_frames(path, 10.0)
    assert sum(p is not None for p in used) >= 3

    # the same seeks, each followed by decoding on until the picture comes out
    monkeypatch.setattr(frames, "_picture_after_seek", lambda *a: None)
    forward_times, forward_images, _ = frames.decode_frames(path, 10.0)
    assert np.array_equal(times, forward_times) and len(times) == 11
    assert all(np.array_equal(a, b) for a, b in zip(images, forward_images, strict=True))


def test_decoding_on_the_gpu_falls_back_to_the_cpu_with_the_same_pictures(clip, monkeypatch):
    """Asked for NVDEC where no GPU can be opened (CI), the sampler decodes on the CPU and says
    so; on a GPU machine NVDEC's pictures are the CPU's, bit for bit (H.264 decoding is exact)."""
    from dedup.features import frames
    from dedup.features.embed import pick_device

    monkeypatch.setattr(frames, "_gpu_decode_failure", None)
    on_cpu = sample_frames(clip, probe_video(clip).duration, fps=1.0)
    asked_gpu = sample_frames(clip, probe_video(clip).duration, fps=1.0, device="cuda")
    assert on_cpu.decoder == "cpu"
    assert np.array_equal(on_cpu.times, asked_gpu.times)
    assert all(np.array_equal(a, b) for a, b in zip(on_cpu.images, asked_gpu.images, strict=True))
    if pick_device("auto") == "cpu":
        assert asked_gpu.decoder == "cpu"
        assert frames._gpu_decode_failure  # remembered: later videos do not try the GPU again


def test_a_broken_file_asked_for_the_gpu_is_an_extraction_error_not_a_gpu_failure(tmp_path, monkeypatch):
    from dedup.features import ExtractionError, frames

    monkeypatch.setattr(frames, "_gpu_decode_failure", None)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(ExtractionError, match="cannot open"):
        frames.decode_frames(broken, 5.0, device="cuda")
    assert frames._gpu_decode_failure is None


def test_the_decode_device_follows_the_embedding_device_unless_set():
    from dedup.features.frames import pick_decode_device

    assert pick_decode_device("auto", "cuda") == "cuda"
    assert pick_decode_device("auto", "cpu") == "cpu"
    assert pick_decode_device("cpu", "cuda") == "cpu"
    assert pick_decode_device("cuda", "cpu") == "cuda"
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        pick_decode_device("nvdec", "cuda")
