"""Embedding runtimes side by side on real frames: images/s on one thread, the process's resident
memory, and the drift of each runtime's embeddings from torch fp32 (make bench-embed)."""

import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from django.core.management.base import BaseCommand

from lib.machine import describe

RUNS = [
    ("torch", "f32", 32),
    ("openvino", "f32", 8),
    ("openvino", "bf16", 1),
    ("openvino", "bf16", 2),
    ("openvino", "bf16", 4),
    ("openvino", "bf16", 8),
    ("openvino", "bf16", 32),
]


def _run(clip: str, frames: int, runtime: str, precision: str, batch: int) -> dict:
    """In a fresh process, so each runtime's memory is its own."""
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "astradup_site.settings")
    django.setup()
    import psutil
    from django.conf import settings

    from dedup.features.embed import Embedder
    from dedup.features.frames import sample_frames
    from dedup.features.probe import probe_video
    from dedup.services import backbone_weights

    images = sample_frames(Path(clip), probe_video(Path(clip)).duration).images
    images = (images * (frames // len(images) + 1))[:frames]
    name = settings.ASTRADUP["BACKBONE"]
    before = psutil.Process().memory_info().rss
    embedder = Embedder(
        name,
        backbone_weights(name),
        threads=1,
        runtime=runtime,
        precision=precision,
        cache_dir=Path(settings.ASTRADUP["MODEL_CACHE"]),
    )
    embedder.embed(images[:batch], batch=batch)  # warm-up: first-call allocations and kernel choice
    t0 = time.process_time()
    vectors = embedder.embed(images, batch=batch)
    cpu = time.process_time() - t0
    return {
        "runtime": runtime,
        "precision": embedder.precision,  # what it ran in, which may not be what was asked
        "batch_frames": batch,
        "images_per_s": round(2 * frames / cpu, 1),  # each frame is embedded with its mirror image
        "rss_mb": round(psutil.Process().memory_info().rss / 2**20),
        "model_and_run_mb": round((psutil.Process().memory_info().rss - before) / 2**20),
        "vectors": vectors,
    }


class Command(BaseCommand):
    help = "Embedding runtimes compared on a clip's frames: speed, memory, drift from torch fp32."

    def add_arguments(self, parser):
        parser.add_argument("clip", type=Path)
        parser.add_argument("--frames", type=int, default=64)

    def handle(self, *args, clip: Path, frames: int, **options):
        from dedup.features.embed import openvino_has_bf16
        from dedup.services import embedder_prepare

        embedder_prepare()
        runs = RUNS
        if not openvino_has_bf16():
            runs = [run for run in RUNS if run[1] != "bf16"]
            self.stdout.write("bf16 runs left out: this CPU has no bf16 (OpenVINO would run them in f32)")
        results = []
        for runtime, precision, batch in runs:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                results.append(pool.submit(_run, str(clip), frames, runtime, precision, batch).result())
        reference = results[0]["vectors"]
        for r in results:
            r["max_cosine_drift"] = round(float((1 - (r.pop("vectors") * reference).sum(axis=1)).max()), 5)
        self.stdout.write(json.dumps({"machine": describe(), "runs": results}, indent=1))
        self.stdout.write(
            f"\n{'runtime':10}{'precision':>10}{'batch':>7}{'images/s':>10}{'+MB':>7}{'drift':>9}"
        )
        for r in results:
            self.stdout.write(
                f"{r['runtime']:10}{r['precision']:>10}{r['batch_frames']:>7}{r['images_per_s']:>10}"
                f"{r['model_and_run_mb']:>7}{r['max_cosine_drift']:>9}"
            )
