"""Candidate search goes through the indexes: a 10 s clip is found inside a long video."""

import pytest
from django.core.management import call_command
from django.db import connection

from dedup import services
from dedup.models import Pair, Video

from .media import concat, make_clip, transcode

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def long_and_clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    parts = [
        make_clip(d / "p1.mp4", source="life", duration=25, tone=300),
        make_clip(d / "p2.mp4", source="mandelbrot", duration=10, noise_seed=3),
        make_clip(d / "p3.mp4", source="cells", duration=25, tone=500),
    ]
    long = concat(parts, d / "long.mp4")
    clip = transcode(parts[1], d / "clip.mp4", vf="scale=200:150", crf=32)
    unrelated = make_clip(d / "unrelated.mp4", source="testsrc", duration=12, tone=700)
    return long, clip, unrelated


def test_a_ten_second_clip_is_found_in_a_long_video_through_the_index(long_and_clip):
    long, clip, unrelated = long_and_clip
    call_command("ingest", str(long), str(unrelated), "--sync", "--workers", "1")
    call_command("ingest", str(clip), "--sync", "--workers", "1")
    clip_video = Video.objects.get(path=str(clip))
    long_video = Video.objects.get(path=str(long))
    candidates = services.find_candidates(clip_video)
    assert long_video.pk in candidates.votes
    assert "embedding" in candidates.reasons[long_video.pk]
    pair = Pair.objects.get(video_a=long_video, video_b=clip_video)
    assert pair.label == "partial", pair.breakdown
    start, end = pair.segments["a"][0]
    assert 23 <= start <= 27 and 33 <= end <= 37


def test_the_frame_query_uses_the_hnsw_index(long_and_clip):
    long, _, _ = long_and_clip
    call_command("ingest", str(long), "--sync", "--workers", "1")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM dedup_frame WHERE model = 'efficientnet_lite0' AND informative "
            "ORDER BY (embedding::halfvec(1280)) <=> (SELECT embedding::halfvec(1280) FROM dedup_frame LIMIT 1) LIMIT 5"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "frame_emb_hnsw_efficientnet_lite0" in plan


def test_ingest_order_does_not_matter(long_and_clip):
    long, clip, _ = long_and_clip
    call_command("ingest", str(clip), "--sync", "--workers", "1")
    call_command("ingest", str(long), "--sync", "--workers", "1")
    pair = Pair.objects.get()
    assert pair.label == "partial"
