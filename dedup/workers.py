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


def extract(video_id: int) -> tuple[int, str, str]:
    from dedup import services

    video = services.video_extract(video_id=video_id)
    return video.pk, video.status, video.error
