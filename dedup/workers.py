"""Entry points for extraction processes started with `spawn` (ingest --sync, benchmarks).

Kept free of model imports at module level: a spawned child imports this module before Django is set up.
"""

import os


def init() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "astradup_site.settings")
    django.setup()
    from dedup.features.audio import warm_up

    warm_up()


def startup_cpu() -> float:
    """CPU-seconds a fresh worker spent before its first video: Django, the audio warm-up (init)
    and loading the embedding model. For bench-perf, run in a pool whose initializer is init."""
    import resource

    from dedup.services import current_embedder

    current_embedder()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def extract(video_id: int) -> tuple[int, str, str]:
    from dedup import services

    video = services.video_extract(video_id=video_id)
    return video.pk, video.status, video.error


def extract_many(video_ids: list[int], *, workers: int, progress=lambda items, desc: items) -> None:
    """Extract videos in this process (workers <= 1) or in a pool of spawned processes."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from django.db import connections

    from dedup import services
    from dedup.features.audio import warm_up

    if not video_ids:
        return
    if workers <= 1 or len(video_ids) == 1:
        warm_up()
        for video_id in progress(video_ids, "extract"):
            services.video_extract(video_id=video_id)
        return
    services.embedder_prepare()
    connections.close_all()  # children open their own connections
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=init) as pool:
        for _ in progress(pool.map(extract, video_ids, chunksize=1), "extract"):
            pass
