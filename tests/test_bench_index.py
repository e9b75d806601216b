"""The index benchmark's own machinery: exact search over streamed blocks, and COPY rows made by numpy."""

import numpy as np
import pytest
from django.db import connection

from bench.management.commands.bench_index import COPY_SIGNATURE, COPY_TRAILER, ExactTopK, binary_rows


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
def test_numpy_copy_rows_load_as_the_same_halfvecs():
    rng = np.random.default_rng(1)
    frames, small = _unit(rng, (50, 12)), rng.standard_normal((50, 4)).astype(np.float32)
    video_ids = np.repeat(np.arange(10, 15), 10)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE t (id serial, video_id int, embedding halfvec(12), small halfvec(4))"
        )
        with cursor.cursor.copy(
            "COPY t (video_id, embedding, small) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.write(COPY_SIGNATURE)
            copy.write(binary_rows(video_ids[:20], frames[:20], small[:20]))
            copy.write(binary_rows(video_ids[20:], frames[20:], small[20:]))
            copy.write(COPY_TRAILER)
        cursor.execute("SELECT video_id, embedding::text, small::text FROM t ORDER BY id")
        rows = cursor.fetchall()
    assert [r[0] for r in rows] == video_ids.tolist()
    loaded = np.array([np.fromstring(r[1].strip("[]"), sep=",") for r in rows])
    loaded_small = np.array([np.fromstring(r[2].strip("[]"), sep=",") for r in rows])
    # halfvec's text form is the shortest that reads back as the same float16
    assert np.array_equal(loaded.astype(np.float16), frames.astype(np.float16))
    assert np.array_equal(loaded_small.astype(np.float16), small.astype(np.float16))


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
        *("--vectors", "6000", "--dim", "64", "--queries", "3", "--k", "10", "--warm-up", "1"),
        *("--ef-search", "40", "--connections", "1", "3", "--spectrum-decay", "1.5", "--project", "16"),
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
