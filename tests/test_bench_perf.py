"""The throughput benchmark's library filler: its COPY must keep up with the frame table's columns
(it once broke unnoticed when a NOT NULL column was added) and leave the app's own index."""

import pytest
from django.db import connection

from bench.management.commands.bench_index import FRAMES_PER_VIDEO
from bench.management.commands.bench_perf import fill_library
from dedup.models import Frame, Video
from dedup.services import find_candidates, frame_hnsw_indexes, load_signals


@pytest.mark.django_db(transaction=True)
def test_the_synthetic_library_loads_ready_videos_into_the_candidate_index(clip):
    result = fill_library(3, clip)
    assert result["frame_vectors"] == 3 * FRAMES_PER_VIDEO
    assert Video.objects.filter(status=Video.Status.READY).count() == 3
    assert Frame.objects.filter(indexed=True, informative=True).count() == 3 * FRAMES_PER_VIDEO
    name = Video.objects.first().backbone
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [f"frame_emb_hnsw_{name}"])
        (definition,) = cursor.fetchone()
    assert "hnsw" in definition and "indexed" in definition
    assert f"frame_emb_hnsw_{name}" in dict(frame_hnsw_indexes(name))
    # a library video searches the others through that index, and the connection still reads
    # halfvecs as the app expects (raw bytes): the filler once registered its types on it
    assert isinstance(find_candidates(Video.objects.first()).votes, dict)
    signals = load_signals(Video.objects.first())
    assert signals.embeddings.shape == (FRAMES_PER_VIDEO, 1280)


def test_the_database_servers_cpu_is_split_by_process_and_sums_to_the_whole():
    """A connection that ends during the run takes its CPU-seconds from the live processes into
    the postmaster's count of exited ones: what it used before the run must not be counted again."""
    from bench.management.commands.bench_perf import _cpu_change, _postgres_kind

    assert _postgres_kind("postgres: checkpointer ") == "checkpointer"
    assert _postgres_kind("postgres: autovacuum worker astradup") == "autovacuum"
    assert _postgres_kind("postgres: astradup astradup [local] idle") == "backend"
    before = {"live": {1: ("postmaster", 1.0), 2: ("backend", 5.0), 4: ("checkpointer", 0.5)}, "exited": 10.0}
    after = {"live": {1: ("postmaster", 1.5), 3: ("backend", 2.0), 4: ("checkpointer", 0.75)}, "exited": 16.0}
    change = _cpu_change(before, after)
    assert change == {"postmaster": 0.5, "backend": 2.0, "checkpointer": 0.25, "exited": 1.0}
    assert sum(change.values()) == (1.5 + 2.0 + 0.75 + 16.0) - (1.0 + 5.0 + 0.5 + 10.0)


def test_a_baseline_from_another_cpu_is_called_out_not_read_as_a_regression():
    from bench.management.commands.bench_perf import machine_note

    zen4 = {
        "release": "8655e24",
        "embedding": "efficientnet_lite0 on openvino (bf16)",
        "machine": {"cpu": "AMD EPYC", "cores": 2, "flags": ["avx512_bf16", "avx512f", "avx2"]},
    }
    zen3 = {**zen4, "embedding": "efficientnet_lite0 on openvino (f32)"}
    zen3["machine"] = {"cpu": "AMD EPYC", "cores": 2, "flags": ["avx2"]}
    assert machine_note(zen4, dict(zen4, release="d1cbd72")) == ""
    note = machine_note(zen3, zen4)
    assert "AMD EPYC [avx512_bf16, avx512f, avx2], 2 cores, efficientnet_lite0 on openvino (bf16)" in note
    assert "AMD EPYC [avx2], 2 cores" in note and "git checkout 8655e24" in note
    assert "another machine" in machine_note(zen4, {"release": "0ld"})  # baselines from before `machine`


def test_each_machine_keeps_its_own_baseline(tmp_path):
    """A Zen 3 run compares with the Zen 3 baseline even when a Zen 4's was saved after it, and
    saving replaces only this machine's; a file of one result (as kept before) still reads."""
    import json

    from bench.management.commands.bench_perf import load_baselines, pick_baseline, save_baseline

    zen4 = {
        "release": "a",
        "embedding": "lite0 (bf16)",
        "machine": {"cpu": "EPYC", "cores": 2, "flags": ["bf16"]},
    }
    zen3 = {
        "release": "b",
        "embedding": "lite0 (f32)",
        "machine": {"cpu": "EPYC", "cores": 2, "flags": ["avx2"]},
    }
    path = tmp_path / "bench-perf.json"
    assert load_baselines(path) == [] and pick_baseline(zen3, []) is None
    path.write_text(json.dumps(zen4))
    assert load_baselines(path) == [zen4]
    assert pick_baseline(zen3, [zen4]) == zen4  # the only one there, compared with a note
    kept = save_baseline(zen4 | {"release": "c"}, save_baseline(zen3, [zen4]))
    assert [b["release"] for b in kept] == ["b", "c"]
    assert pick_baseline(zen3 | {"release": "d"}, kept)["release"] == "b"
    assert pick_baseline(zen4, kept)["release"] == "c"


def test_the_decode_floor_is_its_own_ffmpegs_cpu_time_and_a_bad_file_fails(clip, tmp_path):
    """Issue 29's yardstick: ffmpeg decoding the file's reference pictures on one thread. Its CPU
    is read from that child's own rusage; a file ffmpeg cannot read stops the benchmark."""
    from django.core.management.base import CommandError

    from bench.management.commands.bench_perf import decode_floor_cpu

    assert decode_floor_cpu(clip) > 0
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(CommandError, match="decode floor"):
        decode_floor_cpu(broken)
