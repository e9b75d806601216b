"""The index benchmark's own machinery: exact search over streamed blocks, COPY rows made by numpy,
and a small run of the product's candidate search."""

import numpy as np
import pytest
from django.db import connection

from bench.management.commands.bench_index import (
    COPY_SIGNATURE,
    COPY_TRAILER,
    FRAMES_PER_VIDEO,
    ExactTopK,
    frame_rows,
    ready_videos,
)
from dedup.services import FRAME_COLUMNS


def _unit(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_streamed_exact_search_equals_search_over_everything_at_once():
    rng = np.random.default_rng(0)
    queries, library = _unit(rng, (30, 16)), _unit(rng, (5000, 16))
    k = 7
    streamed = ExactTopK(queries, k)
    for start in range(0, len(library), 700):  # uneven blocks, the last one short
        streamed.add(library[start : start + 700], start)
    truth = np.argsort(-(queries @ library.T), axis=1)[:, :k]
    assert all(set(a) == set(b) for a, b in zip(streamed.ids(), truth, strict=True))


@pytest.mark.django_db
def test_numpy_copy_rows_load_as_the_frames_extraction_writes():
    from dedup.features.phash import bands
    from dedup.models import Frame

    rng = np.random.default_rng(1)
    frames, small = _unit(rng, (120, 1280)), rng.standard_normal((120, 256)).astype(np.float32)
    videos = ready_videos([f"/synthetic/{i}.mp4" for i in range(2)], "efficientnet_lite0")
    video_ids = np.repeat([v.pk for v in videos], FRAMES_PER_VIDEO)
    with connection.cursor() as cursor:
        columns = ", ".join(FRAME_COLUMNS)
        with cursor.cursor.copy(f"COPY dedup_frame ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.write(COPY_SIGNATURE)
            copy.write(frame_rows(video_ids[:60], frames[:60], small[:60], "efficientnet_lite0", 3))
            copy.write(frame_rows(video_ids[60:], frames[60:], None, "efficientnet_lite0", 3))
            copy.write(COPY_TRAILER)
    rows = list(Frame.objects.order_by("video_id", "idx"))
    assert [(r.video_id, r.idx, r.t) for r in rows] == [
        (int(v), i % FRAMES_PER_VIDEO, float(i % FRAMES_PER_VIDEO)) for i, v in enumerate(video_ids)
    ]
    assert all(
        r.informative and r.indexed and r.model == "efficientnet_lite0" and r.thumb is None for r in rows
    )
    assert all((r.phash_b0, r.phash_b1, r.phash_b2, r.phash_b3) == bands(r.phash) for r in rows)
    assert len({r.phash for r in rows}) == 120
    # halfvecs read back as the same float16 values
    loaded = np.array([r.embedding for r in rows], dtype=np.float32)
    assert np.array_equal(loaded.astype(np.float16), frames.astype(np.float16))
    loaded_small = np.array([r.index_embedding for r in rows[:60]], dtype=np.float32)
    assert np.array_equal(loaded_small.astype(np.float16), small[:60].astype(np.float16))
    assert all(r.index_embedding is None for r in rows[60:])


@pytest.mark.django_db(transaction=True)
def test_the_benchmark_searches_a_small_index_on_one_and_on_several_connections():
    """Both search paths (one lateral query, and the video's frames split over connections) find
    the copied video, with the same recall against exact search."""
    import json
    from io import StringIO

    from django.core.management import call_command

    from bench.management.commands import bench_index

    out = StringIO()
    # the command itself, not its name: the bench app is installed only with ASTRADUP_BENCH=1
    call_command(
        bench_index.Command(),
        *("--vectors", "6000", "--queries", "3", "--k", "10", "--warm-up", "1"),
        *("--ef-search", "40", "--connections", "1", "3", "--spectrum-decay", "1.5", "--project", "256"),
        stdout=out,
        stderr=StringIO(),
    )
    result = json.loads(out.getvalue())
    assert result["app_search_plan"] == {"ef_search": 100, "connections": 1}  # a small library
    assert result["machine"]["cores"] >= 1
    search = result["search"]
    assert set(search) == {"40 x1", "40 x3"}
    for run in search.values():
        assert run["copied_video_ranked_first"] == "3/3"
    assert search["40 x3"]["recall_at_10"] == search["40 x1"]["recall_at_10"] > 0.5
