import numpy as np
import pytest

from dedup.features.frames import sample_frames
from dedup.features.layout import Box, detect_layout
from dedup.features.probe import probe_video
from dedup.features.views import cuts, plan_views, windows

from .media import ffmpeg


def _frames(path):
    return sample_frames(path, probe_video(path).duration).images


def _composite(path, graph: str, duration: float = 6.0):
    """A clip made of two moving lavfi sources laid out by `graph` ([a], [b] in, [v] out)."""
    ffmpeg(
        "-f", "lavfi", "-i", f"mandelbrot=size=320x180:rate=10,trim=duration={duration}",
        "-f", "lavfi", "-i", f"life=size=320x180:rate=10:seed=3:mold=10:ratio=0.3,trim=duration={duration}",
        "-filter_complex", f"[0:v]null[a];[1:v]null[b];{graph}",
        "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-crf", "20",
        str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    path = tmp_path_factory.mktemp("layout") / "plain.mp4"
    return _composite(path, "[a]copy[v];[b]nullsink")


def test_a_box_crops_its_share_of_the_frame():
    image = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    crop = Box(0.5, 1.0, 0.25, 0.75).crop(image)
    assert crop.shape == (50, 100, 3)
    assert np.array_equal(crop, image[50:, 50:150])
    assert Box(0, 0.5, 0, 1).iou(Box(0, 1, 0, 1)) == pytest.approx(0.5)


def test_plain_footage_has_no_layout(plain):
    layout = detect_layout(_frames(plain))
    assert layout.kind == "plain" and layout.views == ()


def test_a_vertical_stack_is_cut_at_its_seam(tmp_path):
    # the copy takes the top 70 %: 320x126 over 320x54
    path = _composite(tmp_path / "stack.mp4", "[a]scale=320:126[t];[b]scale=320:54[u];[t][u]vstack[v]")
    layout = detect_layout(_frames(path))
    assert layout.kind == "stack"
    assert max(v.iou(Box(0, 0.7, 0, 1)) for v in layout.views) >= 0.8


def test_a_split_screen_is_cut_at_its_seam(tmp_path):
    path = _composite(tmp_path / "split.mp4", "[a]scale=192:180[l];[b]scale=128:180[r];[l][r]hstack[v]")
    layout = detect_layout(_frames(path))
    assert layout.kind == "split"
    assert max(v.iou(Box(0, 1, 0, 0.6)) for v in layout.views) >= 0.8


def test_a_picture_in_picture_is_boxed(tmp_path):
    # the copy at half size in the bottom-right corner, 8 px in from the edges
    path = _composite(tmp_path / "pip.mp4", "[a]scale=160:90[s];[b][s]overlay=152:82[v]")
    layout = detect_layout(_frames(path))
    assert layout.kind == "pip"
    truth = Box(82 / 180, 172 / 180, 152 / 320, 312 / 320)
    assert max(v.iou(truth) for v in layout.views) >= 0.7


def test_a_picture_in_picture_over_busy_moving_footage_is_boxed(tmp_path):
    # a scrolling cellular automaton behind the inset is as often as bright as the inset's edge
    # as not: no step persists there frame by frame (seams from those alone find nothing in this
    # clip), only in the window's summaries
    ffmpeg(
        "-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=10,trim=duration=6",
        "-f", "lavfi", "-i",
        "cellauto=size=320x180:rate=10:rule=30:random_fill_ratio=0.5:random_seed=4:scroll=1,trim=duration=6",
        "-filter_complex", "[0:v]scale=160:90[s];[1:v][s]overlay=152:82[v]",
        "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-crf", "20",
        str(tmp_path / "busy.mp4"),
    )  # fmt: skip
    layout = detect_layout(_frames(tmp_path / "busy.mp4"))
    assert layout.kind == "pip" and layout.kinds[0] == "pip"
    truth = Box(82 / 180, 172 / 180, 152 / 320, 312 / 320)
    assert max(v.iou(truth) for v in layout.views) >= 0.7


def test_a_laid_out_shot_of_a_longer_video_gets_a_window_of_its_own(tmp_path):
    # 12 s of plain footage, then 8 s of it as a picture-in-picture (a compilation's segment):
    # in one 30 s window the inset's seams hold in too few frames to be told from edges
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10,trim=duration=12",
        "-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=10,trim=duration=8",
        "-f", "lavfi", "-i", "life=size=320x180:rate=10:seed=3:mold=10:ratio=0.3,trim=duration=8",
        "-filter_complex",
        "[1:v]scale=160:90[s];[2:v][s]overlay=152:82,setpts=PTS-STARTPTS[p];[0:v][p]concat=n=2:v=1[v]",
        "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-crf", "20",
        str(tmp_path / "segment.mp4"),
    )  # fmt: skip
    frames = sample_frames(tmp_path / "segment.mp4", probe_video(tmp_path / "segment.mp4").duration)
    assert len(windows(frames.times)) == 1  # by time alone
    (cut,) = cuts(frames.images)
    assert abs(frames.times[cut] - 12.0) <= 1.0
    assert len(windows(frames.times, frames.images)) == 2
    planned = plan_views(frames.times, frames.images)
    truth = Box(82 / 180, 172 / 180, 152 / 320, 312 / 320)
    kind, box, idx = max(planned, key=lambda p: p[1].iou(truth))
    assert kind == "pip" and box.iou(truth) >= 0.7
    assert frames.times[idx].min() >= 11.0  # only the laid-out shot's frames are cropped


def test_a_picture_inside_wide_coloured_pads_is_boxed(tmp_path):
    path = _composite(
        tmp_path / "pad.mp4", "[a]scale=192:108,pad=320:180:64:36:color=0x3050a0[v];[b]nullsink"
    )
    layout = detect_layout(_frames(path))
    truth = Box(36 / 180, 144 / 180, 64 / 320, 256 / 320)
    assert max(v.iou(truth) for v in layout.views) >= 0.7


def test_a_sliver_of_a_picture_has_no_layout():
    # a 16384 x 16 file is a few pixels high at the working width: nothing to find, no crash
    sliver = [np.full((2, 640), 16 * i, np.uint8) for i in range(8)]
    assert detect_layout(sliver).kind == "plain"
