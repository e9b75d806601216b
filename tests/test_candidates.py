"""Candidate search goes through the indexes: a 10 s clip is found inside a long video."""

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from dedup import services
from dedup.features.projection import PROJECTED_DIM
from dedup.models import Frame, IndexProjection, Pair, Video
from dedup.services import candidates as candidate_search

from . import factories as make
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
    video = Video.objects.get(path=str(long))
    # the query find_candidates runs, with the planner told that the table is large: the exact
    # plan for a big library, where a sort of every frame per query frame would take minutes
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_sort = off")
        cursor.execute("EXPLAIN " + services.frame_neighbours_sql(video.backbone), [40, video.pk])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "frame_emb_hnsw_efficientnet_lite0" in plan, plan


def test_ingest_order_does_not_matter(long_and_clip):
    long, clip, _ = long_and_clip
    call_command("ingest", str(clip), "--sync", "--workers", "1")
    call_command("ingest", str(long), "--sync", "--workers", "1")
    pair = Pair.objects.get()
    assert pair.label == "partial"


def test_rematching_keeps_pairs_that_another_video_found(long_and_clip):
    from django.utils import timezone

    long, clip, _ = long_and_clip
    call_command("ingest", str(long), str(clip), "--sync", "--workers", "1")
    pair = Pair.objects.get()
    long_video = Video.objects.get(path=str(long))
    # the long video's own search may not return the clip; its pair found by the clip must survive
    Video.objects.filter(pk=long_video.pk).update(finished_at=timezone.now() - timezone.timedelta(hours=1))
    services.video_match(video_id=long_video.pk)
    assert Pair.objects.filter(pk=pair.pk).exists()


def test_rematching_after_new_features_drops_pairs_no_longer_found(long_and_clip):
    from django.utils import timezone

    long, clip, unrelated = long_and_clip
    call_command("ingest", str(long), str(clip), str(unrelated), "--sync", "--workers", "1")
    long_video = Video.objects.get(path=str(long))
    other = Video.objects.get(path=str(unrelated))
    ghost = make.pair(long_video, other, "near_duplicate", 0.9)
    Pair.objects.filter(pk=ghost.pk).update(updated_at=timezone.now() - timezone.timedelta(hours=1))
    Video.objects.filter(pk=long_video.pk).update(finished_at=timezone.now())
    services.video_match(video_id=long_video.pk)
    assert not Pair.objects.filter(pk=ghost.pk).exists()


def test_a_new_config_rescores_stored_pairs_exactly_as_a_full_score_would(long_and_clip):
    from dedup.models import ScoringConfig

    call_command("ingest", *map(str, long_and_clip), "--sync", "--workers", "1")
    assert Pair.objects.exists()
    config = ScoringConfig.objects.create(
        name="other",
        visual_weight=0.5,
        audio_weight=0.4,
        metadata_weight=0.1,
        near_threshold=0.7,
        partial_threshold=0.95,
    )
    services.config_activate(config=config, via="command", rescore="sync")
    rescored = {p.pk: (p.score, p.label, p.config_id) for p in Pair.objects.all()}
    for pair in Pair.objects.select_related("video_a", "video_b"):
        full = services.pair_score(a=pair.video_a, b=pair.video_b, config=config)
        assert rescored[pair.pk] == (full.score, full.label, config.pk)


def test_a_fitted_index_projection_finds_the_clip_through_the_smaller_index(long_and_clip):
    long, clip, unrelated = long_and_clip
    call_command("ingest", str(long), str(unrelated), "--sync", "--workers", "1")
    long_video = Video.objects.get(path=str(long))
    # a real library has hundreds of thousands of frames; this one has 72, below the command's floor
    with pytest.raises(CommandError, match="at least 256"):
        call_command("fit_index_projection")
    with pytest.raises(CommandError, match="unknown backbone"):
        call_command("fit_index_projection", "--backbone", "vgg16")
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'frame_%%_hnsw_%%' ORDER BY 1"
    with connection.cursor() as cursor:
        cursor.execute(indexes)
        migrated = cursor.fetchall()
    projection = services.index_projection_fit(backbone=long_video.backbone, min_frames=1)
    assert projection.ready and projection.dim == PROJECTED_DIM
    # the fit drops and rebuilds the backbone's indexes: exactly as the migrations made them
    with connection.cursor() as cursor:
        cursor.execute(indexes)
        assert cursor.fetchall() == migrated
    assert len(migrated) == 6
    basis = projection.matrix()
    assert basis.shape == (1280, PROJECTED_DIM)
    assert np.allclose(basis.T @ basis, np.eye(PROJECTED_DIM), atol=1e-4)
    assert not Frame.objects.filter(index_embedding=None).exists()

    # frames written after the fit are projected as they are written
    call_command("ingest", str(clip), "--sync", "--workers", "1")
    clip_video = Video.objects.get(path=str(clip))
    assert not Frame.objects.filter(video=clip_video, index_embedding=None).exists()
    candidates = services.find_candidates(clip_video)
    assert "embedding" in candidates.reasons[long_video.pk]
    assert Pair.objects.get(video_a=long_video, video_b=clip_video).label == "partial"

    # the projected neighbours are re-ranked by full cosine: same distances as exact search's
    with connection.cursor() as cursor:
        cursor.execute(
            services.frame_neighbours_sql(clip_video.backbone, source="projected"), [80, 40, clip_video.pk]
        )
        projected = sorted(cursor.fetchall())
        cursor.execute(services.frame_neighbours_sql(clip_video.backbone, source="all"), [40, clip_video.pk])
        exact = sorted(cursor.fetchall())
        # projected frames stay out of the full-embedding index (migration 0009): nothing left there
        cursor.execute(services.frame_neighbours_sql(clip_video.backbone), [40, clip_video.pk])
        assert cursor.fetchall() == []
    assert [(i, v) for i, v, _ in projected] == [(i, v) for i, v, _ in exact]
    assert np.allclose([d for *_, d in projected], [d for *_, d in exact], atol=1e-6)

    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_sort = off")
        cursor.execute(
            "EXPLAIN " + services.frame_neighbours_sql(clip_video.backbone, source="projected"),
            [80, 40, clip_video.pk],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "frame_proj_hnsw_efficientnet_lite0" in plan, plan

    # a refit replaces the projection; until it is filled, search reads every frame's full embedding
    IndexProjection.objects.update(ready=False)
    assert "embedding" in services.find_candidates(clip_video).reasons[long_video.pk]
    refit = services.index_projection_fit(backbone=long_video.backbone, min_frames=1)
    assert IndexProjection.objects.get().pk == refit.pk != projection.pk


def test_the_frame_search_runs_at_the_configured_breadth_outside_a_transaction(clip):
    """`SET LOCAL` outside a transaction block does nothing: the search once ran at pgvector's
    default breadth (ef_search 40, no iterative scan) whatever ASTRADUP_HNSW_EF_SEARCH said, and
    so returned at most 40 neighbours per frame."""
    from bench.management.commands.bench_perf import fill_library

    fill_library(3, clip)  # three ready videos, 60 indexed frames each
    video = Video.objects.order_by("pk").first()
    assert not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # the index, as in a real library, not a sort
    try:
        rows = candidate_search.frame_neighbours(video.backbone, "full", [60, video.pk], 100)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan")
    per_frame = np.bincount([idx for idx, _, _ in rows])
    assert per_frame.min() == per_frame.max() == 60  # the other two videos hold 120 frames


def test_a_videos_frames_searched_over_several_connections_find_the_same_neighbours(
    clip, settings, monkeypatch
):
    from bench.management.commands.bench_perf import fill_library

    fill_library(3, clip)
    video = Video.objects.order_by("pk").first()
    one = candidate_search.frame_neighbours(video.backbone, "full", [20, video.pk], 100)
    votes = services.find_candidates(video, min_similarity=-1.0).votes
    settings.ASTRADUP = dict(settings.ASTRADUP, CANDIDATE_SEARCH_CONNECTIONS=3)
    searched = []  # (groups, group) of each statement: the split must really happen
    group_search = candidate_search._frame_neighbours_group
    monkeypatch.setattr(
        candidate_search,
        "_frame_neighbours_group",
        lambda *a, groups=1, group=0: (
            searched.append((groups, group)) or group_search(*a, groups=groups, group=group)
        ),
    )
    three = candidate_search.frame_neighbours(video.backbone, "full", [20, video.pk], 100, 3)
    assert sorted(searched) == [(3, 0), (3, 1), (3, 2)]
    assert len(one) == 60 * 20
    assert sorted(three) == sorted(one)
    assert services.find_candidates(video, min_similarity=-1.0).votes == pytest.approx(votes)
    assert votes.keys() == {v.pk for v in Video.objects.exclude(pk=video.pk)}


def test_the_search_widens_and_splits_as_the_library_grows(settings):
    settings.ASTRADUP = dict(settings.ASTRADUP, HNSW_EF_SEARCH=0, CANDIDATE_SEARCH_CONNECTIONS=0)
    plan = services.search_plan
    assert [plan(n) for n in (0, 499_999)] == [(100, 1)] * 2
    assert [plan(n) for n in (500_000, 1_000_000, 2_000_000)] == [(100, 2)] * 3
    assert [plan(n) for n in (2_000_001, 3_000_000, 5_000_000)] == [(200, 2)] * 3
    assert [plan(n) for n in (5_000_001, 10_000_000, 50_000_000)] == [(400, 2)] * 3
    settings.ASTRADUP = dict(settings.ASTRADUP, HNSW_EF_SEARCH=250, CANDIDATE_SEARCH_CONNECTIONS=3)
    assert plan(0) == plan(10_000_000) == (250, 3)


def test_the_library_size_is_the_planners_estimate_of_the_frame_table(clip):
    from bench.management.commands.bench_perf import fill_library

    fill_library(3, clip)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dedup_frame")
    assert services.library_frames() == Frame.objects.count() == 180


def test_candidate_search_runs_at_the_breadth_and_split_of_the_librarys_size(clip, settings, monkeypatch):
    from bench.management.commands.bench_perf import fill_library

    fill_library(3, clip)
    video = Video.objects.order_by("pk").first()
    settings.ASTRADUP = dict(settings.ASTRADUP, HNSW_EF_SEARCH=0, CANDIDATE_SEARCH_CONNECTIONS=0)
    searched = []
    group_search = candidate_search._frame_neighbours_group

    def record(backbone, source, params, ef_search, groups=1, group=0):
        searched.append((ef_search, groups))
        return group_search(backbone, source, params, ef_search, groups=groups, group=group)

    monkeypatch.setattr(candidate_search, "_frame_neighbours_group", record)
    small = services.find_candidates(video, min_similarity=-1.0).votes
    assert searched == [(100, 1)]
    monkeypatch.setattr(candidate_search, "library_frames", lambda: 10_000_000)
    searched.clear()
    assert services.find_candidates(video, min_similarity=-1.0).votes == pytest.approx(small)
    assert sorted(searched) == [(400, 2), (400, 2)]


def test_a_large_library_without_a_projected_index_is_advised_to_fit_one(clip, monkeypatch):
    """`migrate` (and so `make run`) warns once the library is past the size where the projected
    index is the one to search, until a projection is fitted."""
    from bench.management.commands.bench_perf import fill_library
    from dedup import checks

    fill_library(3, clip)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dedup_frame")
    assert checks.index_projection_check(None, databases=["default"]) == []  # 180 frames: small
    monkeypatch.setattr(checks, "PROJECTION_ADVISED_FRAMES", 150)
    advice = checks.index_projection_check(None, databases=["default"])
    assert [w.id for w in advice] == ["dedup.W003"] and "180 frames" in advice[0].msg
    assert checks.index_projection_check(None, databases=None) == []  # only where databases are checked
    backbone = Video.objects.values_list("backbone", flat=True).first()
    services.index_projection_fit(backbone=backbone, min_frames=1)
    assert checks.index_projection_check(None, databases=["default"]) == []
