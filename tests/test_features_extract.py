import numpy as np
import pytest

from dedup.features import ExtractionError
from dedup.features.embed import Embedder, resolve_weights
from dedup.features.extract import extract_features
from dedup.features.probe import sha256_file


@pytest.fixture(scope="module")
def lite0() -> Embedder:
    return Embedder("efficientnet_lite0", resolve_weights("efficientnet_lite0"))


def _features(path, embedder, **kwargs):
    return extract_features(path, embedder, embed_batch=2, dense_min_frames=16, max_frames=3600, **kwargs)


def test_every_stage_of_a_video_with_sound_is_run_and_timed(lite0, clip):
    features = _features(clip, lite0)
    n = len(features.frames.images)  # 6 s at 4 fps, and the last frame
    assert n == len(features.hashes) == len(features.thumbs) == features.embeddings.shape[0] == 25
    assert features.sha256 == sha256_file(clip)
    assert features.audio is not None and features.audio.fingerprint is not None
    assert set(features.cpu) == {"probe", "decode", "hash", "embed", "audio", "views"}
    assert features.views == []  # plain footage: no sub-pictures
    assert all(seconds >= 0 for seconds in features.cpu.values())
    # the same frames embedded on their own: the pipeline hands the embedder what the sampler made
    assert np.allclose(features.embeddings, lite0.embed(features.frames.images), atol=1e-5)


def test_a_silent_video_has_no_audio_stage_and_a_known_hash_is_not_recomputed(lite0, other_clip):
    features = _features(other_clip, lite0, sha256=False)
    assert features.audio is None and "audio" not in features.cpu
    assert features.sha256 == ""


def test_a_file_that_is_not_a_video_fails_with_a_reason(lite0, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(ExtractionError):
        _features(junk, lite0)


def test_the_frame_budget_follows_the_memory_its_pictures_take(lite0, tmp_path):
    """A phone video turned upright to 320 x 568 pictures, 545 KB each: with 2 MB for pictures it
    gets three frames spread over all of it; without a limit one a second."""
    from .media import make_clip, with_display_matrix

    sideways = make_clip(tmp_path / "sideways.mp4", duration=6, size=(640, 360), tone=None)
    phone = with_display_matrix(sideways, tmp_path / "phone.mp4", 90)
    free = extract_features(phone, lite0, embed_batch=2, dense_min_frames=1, max_frames=3600)
    tight = extract_features(
        phone, lite0, embed_batch=2, dense_min_frames=1, max_frames=3600, frame_memory_mb=2
    )
    assert free.frames.images[0].shape == (568, 320, 3)
    assert len(free.frames.times) == 7  # 0..5 s and the last frame
    assert len(tight.frames.times) == tight.embeddings.shape[0] == 3
    assert np.allclose(tight.frames.times, [0, 3, 5.96], atol=0.05)  # the last frame for 6 s
    assert sum(img.nbytes for img in tight.frames.images) <= 2 << 20


def test_a_turned_anamorphic_video_is_described_as_players_show_it(lite0, tmp_path):
    """Stored sideways with a display matrix, its pixels taller than wide: turned as players turn it,
    they are wider than tall again (the stored pixel aspect inverted), so it is shown 320 x 180."""
    from .media import make_clip, with_display_matrix

    # a 240 x 180 picture with 4:3 pixels (shown 320 x 180), stored turned: 180 x 240 with 3:4 pixels
    sideways = make_clip(
        tmp_path / "sideways.mp4", duration=2, size=(240, 180), tone=None, vf="setsar=4/3,transpose=clock"
    )
    phone = with_display_matrix(sideways, tmp_path / "phone.mp4", 90)
    probe = _features(phone, lite0).probe
    assert (probe.width, probe.height) == (240, 180)
    assert probe.sar == pytest.approx(4 / 3, abs=1e-3)
