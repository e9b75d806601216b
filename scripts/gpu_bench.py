"""GPU check for a lent CUDA machine: embedding throughput of the backbones in fp16 with large
batches, and what that means in videos per hour once CPU decoding feeds it.

Self-contained on purpose (no database, no Django): the lent machine only needs this checkout's
Python environment with torch/torchvision/timm/open_clip. Finishes in well under 5 minutes.

    python scripts/gpu_bench.py [--seconds 20] [--batch 256] [--decode-cores N]

Prints one JSON line: device name, frames/s per backbone (fp16, channels-last, batch --batch,
frame + mirror image per frame as AstraDup embeds), the decode rate measured on this machine's
CPUs for a synthetic 720p H.264 minute, and videos/hour = min(GPU, CPU decode) for one-minute
videos at 1 frame per second.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def gpu_rate(name: str, batch: int, seconds: float) -> float:
    import torch

    from dedup.features.embed import BACKBONES

    backbone = BACKBONES[name]
    # random weights: throughput does not depend on their values, and the lent machine has none
    model = _random_model(name).eval().half().cuda().to(memory_format=torch.channels_last)
    s = backbone.input_size
    x = torch.randn(2 * batch, 3, s, s, device="cuda", dtype=torch.half).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(x)
            n += batch
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def _random_model(name: str):
    import torch

    if name == "efficientnet_lite0":
        import timm

        return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    if name == "resnet50":
        import torchvision

        model = torchvision.models.resnet50(weights=None)
        model.fc = torch.nn.Identity()
        return model
    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None)
    return model.visual


def decode_rate(cores: int) -> float:
    """Frames/s all cores decode at 1 fps from 720p H.264 (AstraDup's sampler, one process per core)."""
    from concurrent.futures import ProcessPoolExecutor

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=1280x720:r=30",
                "-t",
                "60",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                "-pix_fmt",
                "yuv420p",
                str(clip),
            ],
            check=True,
        )
        t0 = time.perf_counter()
        with ProcessPoolExecutor(cores) as pool:
            frames = sum(pool.map(_sample, [str(clip)] * (2 * cores)))
        return frames / (time.perf_counter() - t0)


def _sample(path: str) -> int:
    from dedup.features.frames import sample_frames

    return len(sample_frames(path, 60.0).images)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--decode-cores", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        sys.exit(2)
    result = {"device": torch.cuda.get_device_name(0), "batch": args.batch, "frames_per_s": {}}
    for name in ("efficientnet_lite0", "resnet50", "clip_vit_b32"):
        try:
            result["frames_per_s"][name] = round(gpu_rate(name, args.batch, args.seconds))
        except Exception as exc:  # one backbone failing must not hide the others' numbers
            result["frames_per_s"][name] = f"failed: {exc}"
    decode = decode_rate(args.decode_cores)
    result["cpu_decode_frames_per_s"] = round(decode)
    result["decode_cores"] = args.decode_cores
    lite0 = result["frames_per_s"].get("efficientnet_lite0")
    if isinstance(lite0, int):
        per_video = 61  # a one-minute video at 1 fps
        result["videos_per_hour_gpu_only"] = round(lite0 / per_video * 3600)
        result["videos_per_hour"] = round(min(lite0, decode) / per_video * 3600)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
