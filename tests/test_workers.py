"""Two worker clusters (as on two machines) share one database and never process a video twice."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from dedup import services
from dedup.models import Pair, Video

from .media import make_clip

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _database_url() -> str:
    db = connection.settings_dict
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else db["HOST"]
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}{port}/{db['NAME']}"


def _cluster(tmp: Path, n: int) -> subprocess.Popen:
    env = dict(
        os.environ,
        DATABASE_URL=_database_url(),
        ASTRADUP_Q_WORKERS="1",
        ASTRADUP_MODEL_CACHE=settings.ASTRADUP["MODEL_CACHE"],
        ASTRADUP_LOG_LEVEL="INFO",
    )
    log = open(tmp / f"cluster{n}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_two_clusters_on_one_database_process_each_video_once(tmp_path):
    clips = [
        make_clip(tmp_path / f"c{i}.mp4", source=src, duration=4, tone=tone)
        for i, (src, tone) in enumerate(
            [("mandelbrot", 440), ("life", None), ("testsrc", 660), ("cells", 330)]
        )
    ]
    copy = make_clip(tmp_path / "copy.mp4", source="mandelbrot", duration=4, tone=440, size=(192, 144))
    result = services.video_ingest(paths=[*clips, copy])  # enqueued for the workers, on commit
    assert len(result.created) == 5
    clusters = [_cluster(tmp_path, n) for n in (1, 2)]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            done = Video.objects.exclude(status__in=[Video.Status.PENDING, Video.Status.PROCESSING]).count()
            matched = Video.objects.filter(matched_at__isnull=False).count()
            if done == 5 and matched == 5:
                break
            assert all(c.poll() is None for c in clusters), "a cluster died"
            time.sleep(1)
    finally:
        for c in clusters:
            c.terminate()
        for c in clusters:
            try:
                c.wait(timeout=30)
            except subprocess.TimeoutExpired:
                c.kill()
    logs = "\n".join((tmp_path / f"cluster{n}.log").read_text() for n in (1, 2))
    assert Video.objects.filter(status=Video.Status.READY).count() == 5, logs
    # a video is claimed atomically: every one was extracted by exactly one worker, once
    assert sorted(Video.objects.values_list("attempts", flat=True)) == [1] * 5
    original = Video.objects.get(path=str(clips[0]))
    copied = Video.objects.get(path=str(copy))
    a, b = sorted((original.pk, copied.pk))
    assert Pair.objects.get(video_a_id=a, video_b_id=b).is_duplicate
