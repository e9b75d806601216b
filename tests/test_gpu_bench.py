"""The prepared GPU check runs rarely (only where a GPU machine is lent), so its plumbing is run
here on the CPU: every step must produce its figure, none may report a failure."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_bench.py"


def test_gpu_bench_runs_every_step_on_the_cpu(clip, tmp_path):
    out = tmp_path / "result.json"
    subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--device",
            "cpu",
            "--clip",
            str(clip),
            "--seconds",
            "0.2",
            "--workers",
            "1",
            "--videos",
            "1",
            "--batches",
            "2",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = json.loads(out.read_text())
    assert result["pick_device_auto"] == "cpu"
    assert not [k for k, v in result.items() if isinstance(v, str) and v.startswith("failed")]
    assert result["drift"]["frames"] >= 16  # a 6 s clip is sampled densely
    assert result["drift"]["cosine_min"] > 0.9999  # the same runtime on both sides here
    rates = result["network_images_per_s"]
    assert set(rates) == {"efficientnet_lite0", "resnet50", "clip_vit_b32"}
    assert all(isinstance(r, dict) and r["batch_2"] > 0 for r in rates.values())
    assert result["embed_frames_per_s"] > 0
    pipeline = result["pipeline_cpu_decode"]
    assert set(pipeline["cpu_s_per_video_minute"]) == {"probe", "decode", "hash", "embed", "audio", "views"}
    assert pipeline["audio"] == "chromaprint + mfcc"  # both are installed by make test
    assert pipeline["videos_per_hour"] > 0 and pipeline["decoded_on"] == ["cpu"]
    assert set(result["decode_only_cpu"]["cpu_s_per_video_minute"]) == {"decode"}
    # asked for NVDEC: the same pictures, decoded on the CPU where there is no GPU (CI)
    nvdec = result["nvdec"]
    assert nvdec["cpu"]["decoded_on"] == "cpu"
    assert nvdec["cuda"]["decoded_on"] == "cpu" or result["pick_device_auto"] == "cuda"
    assert nvdec["same_times"] and nvdec["pixel_abs_diff_max"] == 0 and nvdec["embedding_cosine_min"] > 0.9999
    assert (
        nvdec["cuda_download_all"]["frames"] == nvdec["cuda"]["frames"] and nvdec["download_all_same_pixels"]
    )
    assert "pipeline_nvdec" not in result


def test_the_synthetic_fallback_clip_is_a_720p_h264_video(tmp_path):
    """Without --clip the script makes its own clip with PyAV (a lent machine has no ffmpeg program)."""
    import importlib.util

    from dedup.features.probe import probe_video

    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    gpu_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_bench)
    path = tmp_path / "synthetic.mp4"
    gpu_bench.make_clip(path, seconds=2)
    probe = probe_video(path)
    assert (probe.width, probe.height, probe.video_codec) == (1280, 720, "h264")
    assert probe.duration == pytest.approx(2.0, abs=0.1)
