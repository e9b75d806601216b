import numpy as np
import pytest
import torch

from dedup.features.embed import BACKBONES, Embedder, WeightsMissing, resolve_weights
from dedup.features.frames import sample_frames
from dedup.features.probe import probe_video
from lib.machine import cpu_flags

from .media import transcode


@pytest.fixture(scope="module")
def lite0() -> Embedder:
    return Embedder("efficientnet_lite0", resolve_weights("efficientnet_lite0"))


def _frames(path):
    return sample_frames(path, probe_video(path).duration)


def test_a_reencoded_resized_copy_embeds_close_frame_by_frame(lite0, clip, other_clip, tmp_path):
    copy = transcode(clip, tmp_path / "copy.mp4", vf="scale=240:180", crf=28)
    original, copied, different = _frames(clip), _frames(copy), _frames(other_clip)
    ea, eb, ec = lite0.embed(original.images), lite0.embed(copied.images), lite0.embed(different.images)
    assert ea.shape == (len(original.images), 1280)
    assert np.allclose(np.linalg.norm(ea, axis=1), 1.0, atol=1e-4)
    n = min(len(ea), len(eb))
    same = np.sum(ea[:n] * eb[:n], axis=1)
    assert same.min() >= 0.9
    cross = ea @ ec.T
    assert cross.max() < same.min() - 0.1


def test_embeddings_do_not_change_under_a_mirror(lite0, clip):
    images = _frames(clip).images[:3]
    mirrored = [np.ascontiguousarray(img[:, ::-1]) for img in images]
    assert np.allclose(lite0.embed(images), lite0.embed(mirrored), atol=1e-4)


def test_the_network_input_is_each_grey_frame_normalised_per_channel_then_its_mirror(lite0, clip):
    images = _frames(clip).images[:3]
    grey = lite0._prepare(images).astype(np.float32) / 255.0
    x = lite0.network_input(images)
    assert x.shape == (6, 3, 224, 224) and x.dtype == np.float32
    for c, (mean, std) in enumerate(
        zip(BACKBONES["efficientnet_lite0"].mean, BACKBONES["efficientnet_lite0"].std, strict=True)
    ):
        assert np.allclose(x[:3, c], (grey - np.float32(mean)) / np.float32(std), atol=1e-6)
        assert np.array_equal(x[3:, c], x[:3, c, :, ::-1])


def test_a_missing_backbone_says_where_to_put_its_weights(tmp_path):
    with pytest.raises(WeightsMissing, match=str(tmp_path / "resnet50.pth")):
        resolve_weights("resnet50", weights_dir=str(tmp_path))


def test_resnet50_loads_a_state_dict_from_disk(tmp_path, clip):
    import torchvision

    torch.manual_seed(0)
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    embedder = Embedder("resnet50", resolve_weights("resnet50", weights_dir=str(tmp_path)))
    out = embedder.embed(_frames(clip).images[:2])
    assert out.shape == (2, BACKBONES["resnet50"].dim)
    assert np.isfinite(out).all()


def test_clip_vit_b32_loads_a_state_dict_from_disk(tmp_path, clip):
    import open_clip

    torch.manual_seed(0)
    path = tmp_path / "clip_vit_b32.pt"
    torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), path)
    embedder = Embedder("clip_vit_b32", resolve_weights("clip_vit_b32", explicit=str(path)))
    out = embedder.embed(_frames(clip).images[:2])
    assert out.shape == (2, 512)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("asked", ["f32", "bf16"])
def test_the_openvino_runtime_matches_torch_fp32(lite0, clip, tmp_path, asked):
    """The CPU fast path may not move an embedding by more than a cosine of 0.005, and says which
    precision it runs in: bf16 asked of a CPU without it (AVX512-BF16 or AMX) runs f32."""
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    runs_in = "bf16" if asked == "bf16" and has_bf16 else "f32"
    fast = Embedder(
        "efficientnet_lite0",
        resolve_weights("efficientnet_lite0"),
        runtime="openvino",
        precision=asked,
        cache_dir=tmp_path,
    )
    assert fast.precision == runs_in
    frames = _frames(clip).images
    drift = 1 - (fast.embed(frames) * lite0.embed(frames)).sum(axis=1)
    assert drift.max() < (1e-4 if runs_in == "f32" else 0.005)
    # the converted model is cached and reused, not converted again
    cached = list(tmp_path.glob("efficientnet_lite0-*.xml"))
    assert len(cached) == 1 and cached[0].with_suffix(".bin").stat().st_size > 10_000_000
    mtime = cached[0].stat().st_mtime_ns
    again = Embedder(
        "efficientnet_lite0", resolve_weights("efficientnet_lite0"), runtime="openvino", cache_dir=tmp_path
    )
    assert cached[0].stat().st_mtime_ns == mtime
    # the default precision (bf16 where the CPU has it) stays within the same drift budget
    assert ((again.embed(frames[:2]) * fast.embed(frames[:2])).sum(axis=1) > 1 - 0.005).all()
