import numpy as np
import pytest

from dedup.features.frames import sample_frames
from dedup.features.probe import probe_video

from .media import make_clip


def test_it_samples_one_frame_per_second_plus_the_last(clip):
    frames = sample_frames(clip, probe_video(clip).duration)
    assert len(frames.images) == 7  # 0..5 s, then the last frame near 5.96 s
    assert np.allclose(frames.times[:6], np.arange(6), atol=0.05)
    assert frames.times[-1] > 5.5
    assert frames.images[0].shape == (120, 160, 3)
    assert frames.informative.all()


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
    frames = sample_frames(path, probe_video(path).duration)
    assert np.allclose(frames.times[:5], np.arange(5), atol=0.11)
