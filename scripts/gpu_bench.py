"""GPU check for a lent CUDA machine: does the app's CUDA path pick the GPU, how far do its fp16
embeddings drift from the CPU's fp32 ones, how fast is each backbone, and how many one-minute
videos an hour the machine's CPU cores and GPU manage together through the app's own extractors.

Self-contained on purpose (no database, no Django): the lent machine needs this checkout, torch,
timm, PyAV, imagehash, opencv and (for the CLIP figure) open_clip; Chromaprint and librosa where
present (else the audio stage is the PCM decoding alone). The database stages are not run; their
CPU cost is measured by `make bench-perf`. Finishes in about two minutes.

    python scripts/gpu_bench.py [--clip CLIP.mp4] [--workers N] [--videos N] [--out result.json]

What it measures, each figure in the printed JSON:
- `pick_device_auto`: what `ASTRADUP_DEVICE=auto` resolves to (must be `cuda` there).
- `drift`: cosine between the app's embeddings of the clip's sampled frames on CUDA (fp16) and
  on the CPU (fp32), EfficientNet-Lite0 with its packaged ImageNet weights.
- `network_images_per_s`: each backbone alone, fp16, channels-last, at the app's GPU batch
  (256 frames + their mirror images) and at one minute's frames (61 + 61); Lite0 with real
  weights, ResNet-50 and CLIP ViT-B/32 with random ones (throughput does not depend on them).
- `embed_frames_per_s`: the app's `Embedder.embed` in one process (CPU preparation included).
- `nvdec`: the clip sampled at 1 fps with the decoding on the CPU and on the GPU (NVDEC, what
  `ASTRADUP_DECODE_DEVICE=auto` does beside a CUDA embedder): where each ran, CPU-s and wall
  seconds per decode, and how far the GPU's pictures and their embeddings are from the CPU's;
  also NVDEC downloading every decoded picture instead of the sampled ones (`cuda_download_all`).
- `pipeline_cpu_decode` / `pipeline_nvdec`: a pool of worker processes, each loading the model
  once as a worker does, each task probing a video, decoding it at 1 fps (PyAV; on the CPU, or
  on the GPU), hashing its frames, embedding them on the shared GPU and decoding its audio
  (video_extract without the database); videos/hour, CPU-s per stage per video; and beside each
  the decode-only rate of the same pool (`decode_only_*`); `*_nvdec_download_all`: the same with
  every decoded picture downloaded.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MIN = 60.0


def make_clip(path: Path, seconds: int = 60) -> None:
    """A 720p30 H.264 clip with moving texture, encoded with PyAV (no ffmpeg CLI needed)."""
    import av
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    # smooth blobs with a little grain: white noise alone would cost several times a real clip's decode
    coarse = rng.integers(0, 256, (25, 42, 3), dtype=np.uint8)
    texture = cv2.resize(coarse, (1280 + 64, 720 + 64), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    texture = np.clip(texture + rng.integers(-6, 7, texture.shape), 0, 255).astype(np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(seconds * 30):
            scene = (i // 150) % 4  # a cut every 5 s so frames differ as in real footage
            dy, dx = (i * 2 + scene * 16) % 64, (i * 3) % 64
            img = np.ascontiguousarray(texture[dy : dy + 720, dx : dx + 1280])
            img = np.roll(img, scene * 300, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def clip_duration(path: Path) -> float:
    from dedup.features.probe import probe_video

    return probe_video(path).duration


def lite0(device: str, threads: int = 1):
    from dedup.features.embed import Embedder, resolve_weights

    return Embedder(
        "efficientnet_lite0", resolve_weights("efficientnet_lite0"), device=device, threads=threads
    )


def nvdec(clip: Path, device: str, repeats: int = 3) -> dict:
    """CPU vs GPU decoding of the clip in this process (whose torch holds the CUDA context);
    `cuda_download_all`: NVDEC downloading every decoded picture (the release before the sampled
    ones alone were)."""
    import numpy as np

    from dedup.features.frames import sample_frames

    out, sampled = {}, {}
    for where in ("cpu", "cuda", "cuda_download_all"):
        cpu, wall = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            sampled[where] = sample_frames(
                clip,
                clip_duration(clip),
                device=where.split("_")[0],
                nvdec_download_all=where == "cuda_download_all",
            )
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - t)
        out[where] = {
            "decoded_on": sampled[where].decoder,
            "skipped": sampled[where].skipped,
            "frames": len(sampled[where].images),
            "cpu_s": round(min(cpu), 3),
            "wall_s": round(min(wall), 3),
        }
    a, b = sampled["cpu"], sampled["cuda"]
    same = len(a.images) == len(b.images) and all(
        x.shape == y.shape for x, y in zip(a.images, b.images, strict=False)
    )
    out["same_times"] = bool(len(a.times) == len(b.times) and np.allclose(a.times, b.times, atol=1e-3))
    c = sampled["cuda_download_all"]
    out["download_all_same_pixels"] = bool(
        len(b.images) == len(c.images)
        and all(np.array_equal(x, y) for x, y in zip(b.images, c.images, strict=False))
    )
    if same:
        diff = np.stack(
            [np.abs(x.astype(np.int16) - y.astype(np.int16)) for x, y in zip(a.images, b.images, strict=True)]
        )
        out["pixel_abs_diff_mean"] = round(float(diff.mean()), 4)
        out["pixel_abs_diff_max"] = int(diff.max())
        embedder = lite0(device)
        cos = (embedder.embed(a.images, batch=256) * embedder.embed(b.images, batch=256)).sum(axis=1)
        out["embedding_cosine_min"] = round(float(cos.min()), 5)
    return out


def drift(clip: Path, device: str) -> dict:
    from dedup.features.frames import sample_frames

    frames = sample_frames(clip, clip_duration(clip))
    a = lite0("cpu", threads=max(1, min(8, os.cpu_count() or 1))).embed(frames.images)
    b = lite0(device).embed(frames.images, batch=256)
    cos = (a * b).sum(axis=1)
    return {
        "frames": len(cos),
        "cosine_mean": round(float(cos.mean()), 5),
        "cosine_min": round(float(cos.min()), 5),
        "drift_mean": round(float(1 - cos.mean()), 5),
        "drift_max": round(float(1 - cos.min()), 5),
    }


def _random_model(name: str):
    import torch

    if name == "resnet50":
        import torchvision

        model = torchvision.models.resnet50(weights=None)
        model.fc = torch.nn.Identity()
        return model
    import open_clip

    return open_clip.create_model("ViT-B-32", pretrained=None).visual


def network_rate(model, images: int, seconds: float, device: str) -> float:
    """Images/s of one model in the app's CUDA setting (fp16, channels-last)."""
    import torch

    half = device == "cuda"
    x = torch.randn(images, 3, 224, 224, device=device, dtype=torch.half if half else torch.float)
    x = x.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if half else (lambda: None)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        sync()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(x)
            n += images
        sync()
    return n / (time.perf_counter() - t0)


def network_rates(device: str, seconds: float, batches: list[int]) -> dict:
    import torch

    out = {}
    for name in ("efficientnet_lite0", "resnet50", "clip_vit_b32"):
        try:
            if name == "efficientnet_lite0":
                model = lite0(device).model
            else:
                model = _random_model(name).eval().to(device)
                if device == "cuda":
                    model = model.half()
            model = model.to(memory_format=torch.channels_last)
            out[name] = {f"batch_{n}": round(network_rate(model, n, seconds, device)) for n in batches}
        except Exception as exc:  # one backbone failing must not hide the others' numbers
            out[name] = f"failed: {type(exc).__name__}: {exc}"
    return out


def embed_rate(clip: Path, device: str, seconds: float) -> float:
    """Frames/s through Embedder.embed (preparation on the CPU, frame + mirror on the device)."""
    from dedup.features.frames import sample_frames

    # four minutes' frames per call on the GPU, so calls are as large as the app's 256-frame batch
    images = sample_frames(clip, clip_duration(clip)).images * (4 if device == "cuda" else 1)
    embedder = lite0(device)
    embedder.embed(images, batch=256)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        embedder.embed(images, batch=256)
        n += len(images)
    return n / (time.perf_counter() - t0)


_EMBEDDER = None
_AUDIO_FEATURES = False
_DECODE_DEVICE = "cpu"
_NVDEC_DOWNLOAD_ALL = False


def _audio_features_available() -> bool:
    try:
        import chromaprint  # noqa: F401
        import librosa  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def _worker_init(device: str, decode_device: str, download_all: bool = False) -> None:
    global _EMBEDDER, _AUDIO_FEATURES, _DECODE_DEVICE, _NVDEC_DOWNLOAD_ALL
    import torch

    _NVDEC_DOWNLOAD_ALL = download_all
    torch.set_num_threads(1)
    _DECODE_DEVICE = decode_device
    if device == "none" and decode_device == "cuda":
        torch.zeros(1, device="cuda")  # hold the primary context NVDEC runs on, as a worker's model does
    if device != "none":
        _EMBEDDER = lite0(device)
        _AUDIO_FEATURES = _audio_features_available()
        if _AUDIO_FEATURES:
            from dedup.features.audio import warm_up

            warm_up()


def _pcm_only(path: Path) -> None:
    """The audio stage's decoding alone, where Chromaprint or librosa is missing."""
    from dedup.features.audio import decode_audio

    decode_audio(path)


def _task(path: str) -> dict:
    """One video through the app's extractors (`extract_features`, what video_extract runs before
    its database writes), CPU seconds per stage as it times them. Audio: Chromaprint and MFCC
    where their libraries are installed, else the PCM decoding alone (`audio` says which)."""
    from dedup.features.audio import extract_audio
    from dedup.features.extract import extract_features
    from dedup.features.frames import DENSE_MIN_FRAMES, sample_frames

    if _EMBEDDER is None:
        t = time.process_time()
        frames = sample_frames(
            Path(path),
            clip_duration(Path(path)),
            device=_DECODE_DEVICE,
            nvdec_download_all=_NVDEC_DOWNLOAD_ALL,
        )
        return {
            "cpu": {"decode": time.process_time() - t},
            "frames": len(frames.images),
            "gpu_mb": 0,
            "audio": "not run",
            "decoded_on": frames.decoder,
        }
    features = extract_features(
        Path(path),
        _EMBEDDER,
        embed_batch=256,  # the app's CUDA batch
        dense_min_frames=DENSE_MIN_FRAMES,
        max_frames=3600,  # the app's defaults: ASTRADUP_MAX_FRAMES
        frame_memory_mb=800,  # ... and ASTRADUP_FRAME_MEMORY_MB
        decode_device=_DECODE_DEVICE,
        nvdec_download_all=_NVDEC_DOWNLOAD_ALL,
        audio=extract_audio if _AUDIO_FEATURES else _pcm_only,
    )
    gpu_mb = 0
    if _EMBEDDER.half:
        import torch

        gpu_mb = round(torch.cuda.max_memory_reserved() / 2**20)
    audio = "chromaprint + mfcc" if _AUDIO_FEATURES else "pcm decode only"
    return {
        "cpu": features.cpu,
        "frames": len(features.frames.images),
        "gpu_mb": gpu_mb,
        "audio": audio,
        "decoded_on": features.frames.decoder,
    }


def pipeline(
    clip: Path, device: str, workers: int, videos: int, decode_device: str = "cpu", download_all: bool = False
) -> dict:
    """Videos/hour of a pool of workers (each loads the model once), after one warm-up task each;
    `download_all`: NVDEC downloads every decoded picture (see `nvdec`)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    minutes = clip_duration(clip) / MIN
    # spawn: CUDA cannot be used in a forked child once the parent has initialised it
    with ProcessPoolExecutor(
        workers,
        mp_context=mp.get_context("spawn"),
        initializer=_worker_init,
        initargs=(device, decode_device, download_all),
    ) as pool:
        list(pool.map(_task, [str(clip)] * workers))
        t0 = time.perf_counter()
        results = list(pool.map(_task, [str(clip)] * videos))
        wall = time.perf_counter() - t0
    stages = {k: round(sum(r["cpu"][k] for r in results) / videos / minutes, 3) for k in results[0]["cpu"]}
    return {
        "workers": workers,
        "videos": videos,
        "wall_s": round(wall, 2),
        "videos_per_hour": round(videos / minutes / wall * 3600),
        "frames_per_s": round(sum(r["frames"] for r in results) / wall),
        "cpu_s_per_video_minute": stages,
        "gpu_mb_per_worker": max(r["gpu_mb"] for r in results),
        "audio": results[0]["audio"],
        "decoded_on": sorted({r["decoded_on"] for r in results}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clip", type=Path, help="a one-minute 720p H.264 clip (default: a synthetic one)")
    parser.add_argument("--device", default="auto", help="auto (the app's choice), cuda or cpu")
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput figure")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--videos", type=int, default=0, help="timed pipeline tasks (default 4 per worker)")
    parser.add_argument(
        "--batches",
        type=int,
        nargs="+",
        default=[512, 122],
        help="network batch sizes in images (512: the app's 256 frames + mirrors; 122: one minute's)",
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here after each step")
    parser.add_argument("--steps", nargs="+", help="run only these steps (default: all)")
    parser.add_argument(
        "--nvdec-workers",
        type=int,
        nargs="*",
        default=[],
        help="extra NVDEC pipeline runs at these pool sizes",
    )
    args = parser.parse_args()
    import torch

    from dedup.features.embed import pick_device

    result: dict = {"torch": torch.__version__, "pick_device_auto": pick_device("auto")}
    device = result["pick_device_auto"] if args.device == "auto" else args.device
    result["device"] = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({os.cpu_count()} cores)"
    result["cpu_cores"] = len(os.sched_getaffinity(0))

    def step(key: str, fn, *a):
        if args.steps and key.split("@")[0] not in args.steps:
            return
        t0 = time.perf_counter()
        try:
            result[key] = fn(*a)
        except Exception as exc:  # report and go on: a later figure may still come back
            result[key] = f"failed: {type(exc).__name__}: {exc}"
        result.setdefault("step_s", {})[key] = round(time.perf_counter() - t0, 1)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
        print(key, json.dumps(result[key]), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip
        if clip is None:
            clip = Path(tmp) / "synthetic.mp4"
            step("clip_made", make_clip, clip)
        result["clip"] = {
            "name": clip.name,
            "seconds": round(clip_duration(clip), 2),
            "bytes": clip.stat().st_size,
        }
        step("drift", drift, clip, device)
        step("nvdec", nvdec, clip, device)  # without a GPU: its fallback to the CPU
        step("network_images_per_s", network_rates, device, args.seconds, args.batches)
        step("embed_frames_per_s", lambda: round(embed_rate(clip, device, args.seconds)))
        videos = args.videos or 4 * args.workers
        step("pipeline_cpu_decode", pipeline, clip, device, args.workers, videos, "cpu")
        step("decode_only_cpu", pipeline, clip, "none", args.workers, videos, "cpu")
        if device == "cuda":
            step("pipeline_nvdec", pipeline, clip, device, args.workers, videos, "cuda")
            step("decode_only_nvdec", pipeline, clip, "none", args.workers, videos, "cuda")
            step("pipeline_nvdec_download_all", pipeline, clip, device, args.workers, videos, "cuda", True)
            step("decode_only_nvdec_download_all", pipeline, clip, "none", args.workers, videos, "cuda", True)
            for n in args.nvdec_workers:
                step(f"pipeline_nvdec@{n}", pipeline, clip, device, n, args.videos or 4 * n, "cuda")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
