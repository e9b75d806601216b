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
    assert set(features.cpu) == {"probe", "decode", "hash", "embed", "audio"}
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
