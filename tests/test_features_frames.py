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


def test_a_video_longer_than_the_frame_budget_is_sampled_over_all_of_it(clip):
    assert sampling_fps(7200, max_frames=3600) == pytest.approx(3599 / 7200)
    assert sampling_fps(3599, max_frames=3600) == 1.0  # 0..3599 s: 3,600 frames
    assert sampling_fps(12, max_frames=10) == pytest.approx(9 / 12)  # 2 fps would take 25
    frames = sample_frames(clip, probe_video(clip).duration, max_frames=4)  # 6 s: 4 fps would take 25
    assert len(frames.times) == 4
    assert np.allclose(frames.times, [0, 1.96, 3.92, 5.88], atol=0.1)  # every 1.96 s, to the end


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
        f"print(len(decode_frames({str(path)!r}, 8.0).times))"
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
    from dedup.features.frames import decode

    from .media import ffmpeg

    path = tmp_path / "short_gop.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={rate}", "-t", "10",
        "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-pix_fmt", "yuv420p",
        "-force_key_frames", keys, "-sc_threshold", "0", str(path),
    )  # fmt: skip
    used = []
    seek_and_drain = decode._picture_after_seek
    monkeypatch.setattr(decode, "_picture_after_seek", lambda *a: used.append(seek_and_drain(*a)) or used[-1])
    times, images = decode.decode_frames(path, 10.0)[:2]
    assert sum(p is not None for p in used) >= 3

    # the same seeks, each followed by decoding on until the picture comes out
    monkeypatch.setattr(decode, "_picture_after_seek", lambda *a: None)
    forward_times, forward_images = decode.decode_frames(path, 10.0)[:2]
    assert np.array_equal(times, forward_times) and len(times) == 11
    assert all(np.array_equal(a, b) for a, b in zip(images, forward_images, strict=True))


def _encoded(tmp_path, name: str, *x264: str, keep_settings: bool = True):
    """Ten seconds of moving 30 fps footage, x264 with a 250-frame GOP and the given options."""
    from .media import ffmpeg

    out = tmp_path / name
    # without its SEI messages the stream no longer says which encoder made it
    strip = [] if keep_settings else ["-bsf:v", "filter_units=remove_types=6"]
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30,noise=alls=12:allf=t", "-t", "10",
        "-c:v", "libx264", *x264, "-g", "250", "-pix_fmt", "yuv420p", *strip, str(out),
    )  # fmt: skip
    return out


def _full_decode(path) -> dict:
    """Every picture of the file by its time from the stream's start, at the sampler's working size."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0  # an MPEG-TS stream starts at 1.4 s; the sampler counts from 0
        return {
            round(float((f.pts - start) * stream.time_base), 3): f.to_ndarray(
                format="rgb24", width=320, height=180
            )
            for f in container.decode(stream)
        }


@pytest.mark.parametrize(
    "name, x264, skipped",
    [
        ("clip.mp4", ["-preset", "veryfast"], "BIDIR"),  # one reference frame
        ("clip.ts", ["-preset", "veryfast"], "BIDIR"),  # start codes instead of NAL lengths
        ("clip.mp4", ["-preset", "veryslow", "-x264-params", "ref=1:bframes=8"], "BIDIR"),
        ("clip.mp4", ["-preset", "medium", "-x264-params", "b-pyramid=strict"], "BIDIR"),
        ("clip.mp4", ["-preset", "medium"], "NONREF"),  # three references: P-frames use B-frames
    ],
    ids=["veryfast", "mpeg-ts", "8 B-frames", "strict pyramid", "medium"],
)
def test_b_frames_are_skipped_only_where_no_picture_needs_them(tmp_path, monkeypatch, name, x264, skipped):
    """Skipping reference B-frames away from the wanted seconds must change nothing: the sampled
    pictures and their times are those of skipping only the non-reference frames, and each is the
    picture a full decode gives at that time."""
    from dedup.features.frames import h264

    path = _encoded(tmp_path, name, *x264)
    modes = []
    choose = h264.SkipGate.mode
    monkeypatch.setattr(h264.SkipGate, "mode", lambda gate, t: modes.append(choose(gate, t)) or modes[-1])
    decoded = sample_frames(path, 10.0, fps=1.0)
    assert decoded.skipped == skipped
    # reference B-frames skipped (one per mini-GOP of up to 3 or 8 B-frames; 300 frames, 11 wanted)
    assert (modes.count("BIDIR") >= 10) == (skipped == "BIDIR")

    monkeypatch.setattr(h264, "p_frames_ignore_b_frames", lambda settings: False)
    plain = sample_frames(path, 10.0, fps=1.0)
    assert plain.skipped == "NONREF"
    assert np.array_equal(decoded.times, plain.times) and len(decoded.times) == 11
    full = _full_decode(path)
    for t, image, same in zip(decoded.times, decoded.images, plain.images, strict=True):
        assert np.array_equal(image, same) and np.array_equal(image, full[round(float(t), 3)])


def test_a_wrong_b_frame_skip_would_show(tmp_path, monkeypatch):
    """The check above can fail: where P-frames are predicted from B-frames (x264's medium preset),
    skipping their B-frames changes the pictures."""
    from dedup.features.frames import h264

    path = _encoded(tmp_path, "medium.mp4", "-preset", "medium")
    monkeypatch.setattr(h264, "p_frames_ignore_b_frames", lambda settings: True)
    decoded = sample_frames(path, 10.0, fps=1.0)
    assert decoded.skipped == "BIDIR"
    full = _full_decode(path)
    assert any(
        not np.array_equal(image, full[round(float(t), 3)])
        for t, image in zip(decoded.times, decoded.images, strict=True)
    )


def test_a_stream_without_the_encoders_settings_keeps_its_b_frames(tmp_path):
    path = _encoded(tmp_path, "anonymous.mp4", "-preset", "veryfast", keep_settings=False)
    assert sample_frames(path, 10.0, fps=1.0).skipped == "NONREF"


def test_x264_settings_decide_the_b_frame_skip():
    from dedup.features.frames import p_frames_ignore_b_frames, x264_settings

    sei = (
        b"\x06\x05\xff" + b"x264 - core 164 r3095 - H.264/MPEG-4 AVC codec - options: cabac=1 ref=%s "
        b"interlaced=%s bframes=%s b_pyramid=%s weightp=2\x00\x80"
    )

    def verdict(ref="3", interlaced="0", bframes="3", pyramid="2"):
        settings = x264_settings(
            sei % (ref.encode(), interlaced.encode(), bframes.encode(), pyramid.encode())
        )
        return p_frames_ignore_b_frames(settings)

    assert x264_settings(sei % (b"1", b"0", b"3", b"2"))["weightp"] == "2"
    assert verdict(ref="1") and verdict(pyramid="1")
    assert not verdict(pyramid="0") and not verdict(ref="1", bframes="0")  # nothing more to skip
    assert not verdict() and not verdict(ref="2")
    assert not verdict(ref="1", interlaced="tff")
    assert x264_settings(b"\x00\x00\x01\x65" + bytes(100)) is None


def test_decoding_on_the_gpu_falls_back_to_the_cpu_with_the_same_pictures(clip, monkeypatch):
    """Asked for NVDEC where no GPU can be opened (CI), the sampler decodes on the CPU and says
    so; on a GPU machine NVDEC's pictures are the CPU's, bit for bit (H.264 decoding is exact)."""
    from dedup.features.embed import pick_device
    from dedup.features.frames import nvdec

    monkeypatch.setattr(nvdec.STATE, "failure", None)
    on_cpu = sample_frames(clip, probe_video(clip).duration, fps=1.0)
    asked_gpu = sample_frames(clip, probe_video(clip).duration, fps=1.0, device="cuda")
    assert on_cpu.decoder == "cpu"
    assert np.array_equal(on_cpu.times, asked_gpu.times)
    assert all(np.array_equal(a, b) for a, b in zip(on_cpu.images, asked_gpu.images, strict=True))
    if pick_device("auto") == "cpu":
        assert asked_gpu.decoder == "cpu"
        assert nvdec.STATE.failure  # remembered: later videos do not try the GPU again


def test_a_broken_file_asked_for_the_gpu_is_an_extraction_error_not_a_gpu_failure(tmp_path, monkeypatch):
    from dedup.features import ExtractionError
    from dedup.features.frames import decode_frames, nvdec

    monkeypatch.setattr(nvdec.STATE, "failure", None)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(ExtractionError, match="cannot open"):
        decode_frames(broken, 5.0, device="cuda")
    assert nvdec.STATE.failure is None


def test_the_decode_device_follows_the_embedding_device_unless_set():
    from dedup.features.frames import pick_decode_device

    assert pick_decode_device("auto", "cuda") == "cuda"
    assert pick_decode_device("auto", "cpu") == "cpu"
    assert pick_decode_device("cpu", "cuda") == "cpu"
    assert pick_decode_device("cuda", "cpu") == "cuda"
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        pick_decode_device("nvdec", "cuda")


def test_an_mpeg_ts_file_with_a_keyframe_each_second_keeps_every_second(tmp_path):
    """MPEG-TS seeks by byte position and can land past the keyframe asked for: the sampler then
    decodes from the start instead of losing the seconds in between (it used to keep 4 of 11)."""
    from .media import ffmpeg

    path = tmp_path / "broadcast.ts"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "10",
        "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    frames = sample_frames(path, probe_video(path).duration, fps=1.0)
    assert np.allclose(frames.times[:10], np.arange(10), atol=0.05)


def test_the_b_frame_skip_check_script_compares_both_samplings(tmp_path):
    """`scripts/b_frame_skip_check.py` reproduces the exactness figures in docs/benchmarks.md."""
    import subprocess
    import sys
    from pathlib import Path

    path = _encoded(tmp_path, "veryfast.mp4", "-preset", "veryfast")
    script = Path(__file__).resolve().parents[1] / "scripts" / "b_frame_skip_check.py"
    done = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # 10 s: sampled at 2 fps
    assert "veryfast.mp4: BIDIR, times same, max difference 0 in 0 of 21 frames" in done.stdout
    assert "1 videos, 0 differ" in done.stdout


def _asymmetric_picture() -> np.ndarray:
    """A 160x96 picture that no turn or mirror image leaves the same."""
    img = np.zeros((96, 160, 3), np.uint8)
    img[:48, :40] = 255
    img[60:, 100:] = (255, 0, 0)
    img[10:20, 120:150] = (0, 255, 0)
    return img


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
@pytest.mark.parametrize("hflip", [False, True])
def test_pictures_are_turned_upright_as_ffmpeg_turns_them(tmp_path, degrees, hflip):
    """Each of the eight orientations a display matrix can give (EXIF's eight), losslessly coded:
    `upright` must give exactly what FFmpeg's command line writes when it re-encodes the file."""
    import av

    from dedup.features.frames import display_matrix, upright

    from .media import ffmpeg

    stored = _asymmetric_picture()
    phone = tmp_path / "phone.mp4"
    with av.open(str(phone), "w") as out:
        stream = out.add_stream("libx264rgb", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "rgb24"
        stream.options = {"qp": "0"}
        stream.set_display_rotation(degrees, hflip=hflip)
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    shown = tmp_path / "shown.mkv"
    ffmpeg("-i", str(phone), "-c:v", "libx264rgb", "-qp", "0", str(shown))

    with av.open(str(phone)) as container:
        first = next(container.decode(video=0))
        matrix = display_matrix(first)
        ours = upright(first.to_ndarray(format="rgb24"), matrix)
    with av.open(str(shown)) as container:
        theirs = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert (matrix is None) == (degrees == 0 and not hflip)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)


def test_a_phone_video_is_sampled_upright(tmp_path):
    """Stored sideways with a display matrix, as phones record portrait video: the sampled
    pictures, the working size and the thumbnails are those of the picture players show."""
    from dedup.features.frames import display_matrix_of, frame_at, moves_pictures

    from .media import with_display_matrix

    shown = make_clip(tmp_path / "shown.mp4", duration=3, size=(160, 96), tone=None, crf=12)
    sideways = make_clip(
        tmp_path / "sideways.mp4", duration=3, size=(160, 96), tone=None, crf=12, vf="transpose=clock"
    )
    phone = with_display_matrix(sideways, tmp_path / "phone.mp4", 90)
    assert probe_video(phone).width == 96  # the stream's size is the stored picture's

    upright_frames = sample_frames(shown, probe_video(shown).duration, fps=1.0)
    phone_frames = sample_frames(phone, probe_video(phone).duration, fps=1.0)
    assert phone_frames.turned and not upright_frames.turned
    assert len(phone_frames.images) == len(upright_frames.images)
    for ours, players in zip(phone_frames.images, upright_frames.images, strict=True):
        assert ours.shape == players.shape == (96, 160, 3)
        assert np.abs(ours.astype(int) - players).mean() < 4  # two encodes apart (1.6-2.6)
        assert np.abs(np.rot90(ours, 2).astype(int) - players).mean() > 20  # not upside down (48-78)
    assert frame_at(phone, 1.0).shape == (96, 160, 3)
    assert moves_pictures(display_matrix_of(phone)) and not moves_pictures(display_matrix_of(shown))


def test_reading_the_display_matrix_leaves_no_reference_to_the_frame(tmp_path):
    """`frame.side_data` tied a frame to itself in a cycle nothing collects (PyAV 18.0): reading the
    matrix that way kept every sampled picture of every video in a worker's memory. Whether the
    installed PyAV still does (18.1 no longer does) the matrix must be read without a reference."""
    import sys

    import av

    from dedup.features.frames import display_matrix

    from .media import with_display_matrix

    sideways = make_clip(tmp_path / "sideways.mp4", duration=1, size=(96, 160), tone=None)
    phone = with_display_matrix(sideways, tmp_path / "phone.mp4", 90)
    with av.open(str(phone)) as container:
        frame = next(container.decode(video=0))
        references = sys.getrefcount(frame)
        assert display_matrix(frame) is not None
        assert sys.getrefcount(frame) == references


def test_a_long_portrait_video_is_sampled_more_slowly_so_its_pictures_fit_the_memory(tmp_path):
    """The working size is a width, so a portrait picture takes 3.2 times a 16:9 one: the frame
    budget shrinks with it. Whether players show a file turned decides it, read from its first
    picture, and only for a video long enough to need it."""
    from dedup.features import ExtractionError
    from dedup.features.frames import frame_budget, picture_bytes

    from .media import with_display_matrix

    landscape, portrait = 3 * 320 * 180, 3 * 320 * 568
    assert picture_bytes(1280, 720) == landscape
    assert picture_bytes(720, 1280) == picture_bytes(1280, 720, turned=True) == portrait
    assert picture_bytes(160, 90) == 3 * 160 * 90  # small pictures are not enlarged

    missing = tmp_path / "missing.mp4"  # a budget that does not bind opens nothing
    assert frame_budget(missing, 720, 1280, 600.0, max_frames=3600, memory_bytes=800 << 20) == 3600
    assert frame_budget(missing, 1280, 720, 3600.0, max_frames=3600, memory_bytes=0) == 3600
    with pytest.raises(ExtractionError):  # an hour at 1,538 portrait pictures would: it must look
        frame_budget(missing, 720, 1280, 3600.0, max_frames=3600, memory_bytes=800 << 20)
    with pytest.raises(ExtractionError):  # so would a file of unknown length, sampled until the budget
        frame_budget(missing, 720, 1280, 0.0, max_frames=3600, memory_bytes=800 << 20)

    sideways = make_clip(tmp_path / "sideways.mp4", duration=6, size=(640, 360), tone=None)
    phone = with_display_matrix(sideways, tmp_path / "phone.mp4", 90)
    memory = 4 * portrait  # room for four portrait pictures, twelve landscape ones
    assert frame_budget(sideways, 640, 360, 6.0, min_frames=1, max_frames=100, memory_bytes=memory) == 12
    assert frame_budget(phone, 640, 360, 6.0, min_frames=1, max_frames=100, memory_bytes=memory) == 4
    assert frame_budget(phone, 640, 360, 6.0, min_frames=1, max_frames=3, memory_bytes=memory) == 3
    assert frame_budget(phone, 640, 360, 6.0, min_frames=1, max_frames=100, memory_bytes=1) == 2
    assert frame_budget(phone, 640, 360, 0.0, min_frames=1, max_frames=100, memory_bytes=memory) == 4


def test_thumbnails_of_anamorphic_video_are_widened_as_players_show_them(tmp_path):
    """A moderator compares thumbnails side by side: 240 x 180 stored pixels with a 4:3 pixel
    aspect are shown 320 x 180 (16:9), like the square-pixel copy beside them."""
    from dedup.features.frames import frame_at

    anamorphic = make_clip(
        tmp_path / "anamorphic.mp4", duration=2, size=(240, 180), tone=None, vf="setsar=4/3"
    )
    square = make_clip(tmp_path / "square.mp4", duration=2, size=(320, 180), tone=None)
    assert frame_at(anamorphic, 1.0).shape == frame_at(square, 1.0).shape == (90, 160, 3)


def test_a_raw_h264_stream_without_timestamps_is_sampled(tmp_path):
    """An elementary H.264 stream (no container: no timestamps, no seeking) is timed by counting
    its pictures; it was reported as "no decodable video frames"."""
    from .media import ffmpeg

    raw = tmp_path / "raw.mp4"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-t", "2"),
        *("-c:v", "libx264", "-f", "h264"),
        str(raw),
    )
    frames = sample_frames(raw, probe_video(raw).duration, fps=4.0, max_frames=100)
    assert len(frames.times) >= 8 and frames.informative.all()
    assert np.all(np.diff(frames.times) > 0) and frames.times[0] == 0


def test_a_video_track_without_pictures_fails_as_such(tmp_path, clip):
    import av

    from dedup.features import ExtractionError

    path = tmp_path / "no-pictures.mkv"
    with av.open(str(clip)) as src, av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        sound = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = sound
                out.mux(packet)
    with pytest.raises(ExtractionError, match="holds no pictures"):
        sample_frames(path, probe_video(path).duration)
