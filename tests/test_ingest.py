"""Ingest and extraction against the real database, with media made by ffmpeg."""

import shutil
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from dedup import services
from dedup.features import FEATURE_VERSION, UNCHANGED_SINCE
from dedup.models import AudioHash, Frame, Pair, ScoringConfig, Video

from .media import SOURCES, ffmpeg, make_clip, transcode, with_display_matrix

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def library(tmp_path, clip, other_clip):
    root = tmp_path / "library"
    (root / "sub").mkdir(parents=True)
    shutil.copy(clip, root / "a.mp4")
    shutil.copy(other_clip, root / "sub" / "b.mkv.renamed")  # a video whose name says nothing
    shutil.copy(clip, root / "sub" / "a-again.mp4")  # byte-identical copy under another path
    (root / "readme.txt").write_text("not a video")
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 200)
    return root


def _ingest_sync(*paths):
    call_command("ingest", *[str(p) for p in paths], "--sync", "--workers", "1")


def test_it_records_every_video_once_and_extracts_them(library):
    _ingest_sync(library)
    videos = {v.rel_path: v for v in Video.objects.all()}
    assert set(videos) == {"a.mp4", "sub/a-again.mp4", "sub/b.mkv.renamed"}
    assert all(v.status == Video.Status.READY for v in videos.values()), [v.error for v in videos.values()]
    a = videos["a.mp4"]
    assert a.root == str(library) and a.path == str(library / "a.mp4")
    assert videos["sub/a-again.mp4"].identical_to == a
    assert a.feature_version == FEATURE_VERSION and a.backbone == "efficientnet_lite0"
    # 6 s: sampled at 4 fps, one frame per second in the candidate index
    n = a.frames.count()
    assert 24 <= n <= 25 and a.frames.filter(informative=True).count() == n  # the last frame may be 6.0 s's
    assert a.frames.filter(indexed=True).count() == 7  # 0, 0.96, 1.96, ... 5.96 s
    assert all(len(bytes(t)) == 256 for t in a.frames.values_list("thumb", flat=True))
    assert a.audio_fingerprint and AudioHash.objects.filter(video=a).exists()
    assert (
        videos["sub/b.mkv.renamed"].has_audio is False and not videos["sub/b.mkv.renamed"].audio_fingerprint
    )
    assert set(a.timings) >= {"probe", "decode", "hash", "embed", "audio", "database"}


def test_reingesting_does_no_duplicate_work(library):
    _ingest_sync(library)
    stamps = dict(Video.objects.values_list("pk", "finished_at"))
    _ingest_sync(library)
    assert Video.objects.count() == 3
    assert dict(Video.objects.values_list("pk", "finished_at")) == stamps


def test_identical_files_are_paired_as_exact(library):
    _ingest_sync(library)
    a = Video.objects.get(rel_path="a.mp4")
    again = Video.objects.get(rel_path="sub/a-again.mp4")
    pair = Pair.objects.get(
        video_a=min(a, again, key=lambda v: v.pk), video_b=max(a, again, key=lambda v: v.pk)
    )
    assert pair.label == "exact" and pair.breakdown["byte_identical"]


@pytest.mark.parametrize(
    "name, make, reason",
    [
        ("zero.mp4", lambda p, clip: p.write_bytes(b""), "empty"),
        ("text.mp4", lambda p, clip: p.write_text("plain text, not a video\n" * 50), "not a readable video"),
        ("truncated.mp4", lambda p, clip: p.write_bytes(clip.read_bytes()[:3000]), ""),
        (
            "song.m4v",
            lambda p, clip: ffmpeg(
                "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", "-f", "mp4", str(p)
            ),
            "audio-only",
        ),
    ],
)
def test_bad_files_fail_with_a_reason(tmp_path, clip, name, make, reason):
    path = tmp_path / name
    make(path, clip)
    _ingest_sync(path)
    video = Video.objects.get(path=str(path))
    assert video.status == Video.Status.FAILED
    assert reason in video.error and video.error
    assert not video.frames.exists()


def test_video_only_and_tiny_and_4k_files_are_processed(tmp_path):
    silent = make_clip(tmp_path / "silent.mp4", duration=2, tone=None)
    tiny = make_clip(tmp_path / "tiny.mp4", duration=0.3)
    big = make_clip(tmp_path / "big.mp4", source="testsrc", duration=1, size=(3840, 2160), fps=5, tone=None)
    _ingest_sync(silent, tiny, big)
    for path in (silent, tiny, big):
        video = Video.objects.get(path=str(path))
        assert video.status == Video.Status.READY, video.error
        assert video.frames.count() >= 1
    assert Video.objects.get(path=str(big)).width == 3840


def test_a_file_deleted_between_ingest_and_extraction_fails_clearly(tmp_path, clip):
    path = tmp_path / "soon-gone.mp4"
    shutil.copy(clip, path)
    result = services.video_ingest(paths=[path], enqueue=False)
    path.unlink()
    video = services.video_extract(video_id=result.created[0])
    assert video.status == Video.Status.FAILED and "not found" in video.error


def test_a_worker_killed_mid_extraction_is_finished_by_the_retry(tmp_path, clip):
    path = tmp_path / "interrupted.mp4"
    shutil.copy(clip, path)
    video_id = services.video_ingest(paths=[path], enqueue=False).created[0]
    # what a killed worker leaves behind: the row claimed long ago, nothing written
    Video.objects.filter(pk=video_id).update(
        status=Video.Status.PROCESSING, started_at=timezone.now() - timedelta(hours=2)
    )
    fresh_claim = services.video_claim(video_id=video_id, stale_after=timedelta(hours=3))
    assert fresh_claim is False  # still within its time: a second worker must not take it
    video = services.video_extract(video_id=video_id)
    assert video.status == Video.Status.READY
    assert Frame.objects.filter(video_id=video_id, indexed=True).count() == 7  # one per second, all written


def test_a_claimed_video_is_not_processed_twice(tmp_path, clip):
    path = tmp_path / "once.mp4"
    shutil.copy(clip, path)
    video_id = services.video_ingest(paths=[path], enqueue=False).created[0]
    assert services.video_claim(video_id=video_id) is True
    assert services.video_claim(video_id=video_id) is False


def test_reextract_redoes_only_stale_videos(tmp_path, clip, other_clip):
    _ingest_sync(clip, other_clip)
    stale = Video.objects.get(path=str(clip))
    Video.objects.filter(pk=stale.pk).update(feature_version=UNCHANGED_SINCE - 1)
    fresh_finished = Video.objects.get(path=str(other_clip)).finished_at
    call_command("reextract", "--sync")
    assert Video.objects.get(pk=stale.pk).feature_version == FEATURE_VERSION
    assert Video.objects.get(path=str(other_clip)).finished_at == fresh_finished


@pytest.fixture
def phone_clip(tmp_path):
    """A portrait phone video: the picture stored sideways and a display matrix that turns it."""
    sideways = make_clip(
        tmp_path / "sideways.mp4", source="testsrc", duration=6, size=(160, 120), vf="transpose=clock"
    )
    return with_display_matrix(sideways, tmp_path / "phone.mp4", 90)


def test_a_phone_video_is_matched_with_its_upright_reencode(tmp_path, phone_clip, other_clip):
    """ffmpeg (and so most transcoders and sharing sites) writes the copy upright without a matrix."""
    shared = transcode(phone_clip, tmp_path / "shared.mp4", crf=30)
    _ingest_sync(phone_clip, shared, other_clip)
    phone = Video.objects.get(path=str(phone_clip))
    copy = Video.objects.get(path=str(shared))
    assert (phone.width, phone.height) == (copy.width, copy.height) == (160, 120)  # as players show them
    pair = Pair.objects.get(video_a=phone, video_b=copy)
    assert pair.label in ("exact", "near_duplicate"), pair.breakdown
    assert pair.visual >= 0.9, pair.breakdown


def test_an_anamorphic_video_and_its_square_pixel_copy_agree_on_their_shape(tmp_path, other_clip):
    """1440 x 1080 broadcast video shown at 16:9 and its 1920 x 1080 web copy: the same picture, so
    the metadata's aspect comparison must not count them apart (it did: 0.58 for the resolution)."""
    anamorphic = make_clip(
        tmp_path / "broadcast.mp4", source="testsrc", duration=6, size=(240, 180), vf="setsar=4/3"
    )
    copy = transcode(anamorphic, tmp_path / "web.mp4", vf="scale=320:180,setsar=1", crf=28)
    _ingest_sync(anamorphic, copy, other_clip)
    stored = Video.objects.get(path=str(anamorphic))
    web = Video.objects.get(path=str(copy))
    assert (stored.width, stored.height, round(stored.sar, 3)) == (240, 180, 1.333)
    assert (web.width, web.height, web.sar) == (320, 180, 1.0)
    assert stored.shown_size == "240×180 shown as 320×180" and web.shown_size == "320×180"
    pair = Pair.objects.get(video_a=stored, video_b=web)
    # the same aspect; the stored pixels are three quarters of the copy's: 0.5 + 0.5 * sqrt(0.75)
    assert pair.breakdown["metadata_parts"]["resolution"] == pytest.approx(0.933, abs=0.001)
    assert pair.label in ("exact", "near_duplicate"), pair.breakdown


def test_reextract_reads_the_pixel_aspect_of_earlier_videos_without_extracting_them(
    tmp_path, other_clip, capsys
):
    """Videos extracted before the pixel aspect was probed: `reextract` reads it with a probe per
    file and scores the anamorphic ones' pairs again; nothing is extracted again."""
    anamorphic = make_clip(
        tmp_path / "broadcast.mp4", source="testsrc", duration=6, size=(240, 180), vf="setsar=4/3"
    )
    copy = transcode(anamorphic, tmp_path / "web.mp4", vf="scale=320:180,setsar=1", crf=28)
    # the same, stored turned with a display matrix: its pixels are taller than wide as stored
    sideways = make_clip(
        tmp_path / "sideways.mp4", duration=6, size=(240, 180), tone=None, vf="setsar=4/3,transpose=clock"
    )
    phone = with_display_matrix(sideways, tmp_path / "phone.mp4", 90)
    _ingest_sync(anamorphic, copy, phone, other_clip)
    Video.objects.update(sar=None)
    stored = Video.objects.get(path=str(anamorphic))
    web = Video.objects.get(path=str(copy))
    config = ScoringConfig.active()
    earlier = services.pair_score(a=stored, b=web, config=config)
    assert earlier.breakdown["metadata_parts"]["resolution"] == pytest.approx(0.578, abs=0.001)
    assert stored.shown_size == "240×180"  # not read yet: shown as stored
    finished = dict(Video.objects.values_list("path", "finished_at"))

    call_command("reextract", "--sync")
    out = capsys.readouterr().out
    assert "4 videos: pixel aspect read (2 anamorphic, their pairs scored again)" in out
    assert "0 videos to re-extract" in out
    assert dict(Video.objects.values_list("path", "finished_at")) == finished
    assert {v.path: v.sar for v in Video.objects.all()} == {
        str(anamorphic): pytest.approx(4 / 3, abs=1e-3),
        str(copy): 1.0,
        str(phone): pytest.approx(4 / 3, abs=1e-3),
        str(other_clip): 1.0,
    }
    pair = Pair.objects.get(pk=earlier.pk)
    assert pair.breakdown["metadata_parts"]["resolution"] == pytest.approx(0.933, abs=0.001)
    call_command("reextract", "--sync")
    assert "pixel aspect" not in capsys.readouterr().out  # read once


def test_a_pair_scored_before_fusion_inputs_were_stored_is_scored_again_in_full(tmp_path, clip):
    """Re-scoring under a new config is arithmetic on each pair's stored fusion inputs; a pair
    without them (an earlier release's) is scored from its videos again."""
    copy = transcode(clip, tmp_path / "copy.mp4", crf=30)
    _ingest_sync(clip, copy)
    pair = Pair.objects.get()
    label, score = pair.label, pair.score
    assert label in ("exact", "near_duplicate")
    older = {k: v for k, v in pair.breakdown.items() if k != "fusion"}
    Pair.objects.filter(pk=pair.pk).update(breakdown=older, label="different", score=0.0)
    config = services.config_activate(
        config=ScoringConfig.objects.create(name="again"), via="command", rescore="none"
    )
    counts = services.pairs_rescore(config_id=config.pk)
    assert (counts["rescored"], counts["rescored_in_full"], counts["changed_label"]) == (0, 1, 1)
    pair.refresh_from_db()
    assert (pair.label, pair.config_id) == (label, config.pk)
    assert pair.score == pytest.approx(score, abs=1e-6) and "fusion" in pair.breakdown


def test_reextract_keeps_the_previous_versions_unchanged_videos(tmp_path, clip, phone_clip, capsys, settings):
    """Version 5 differed only for files with a display matrix and for videos longer than the
    frame budget: only those are extracted again."""
    _ingest_sync(clip, phone_clip)
    Video.objects.update(feature_version=UNCHANGED_SINCE)
    finished = dict(Video.objects.values_list("path", "finished_at"))
    call_command("reextract", "--sync")
    assert "1 videos kept" in capsys.readouterr().out
    after = {v.path: v for v in Video.objects.all()}
    assert {v.feature_version for v in after.values()} == {FEATURE_VERSION}
    assert after[str(clip)].finished_at == finished[str(clip)]
    assert after[str(phone_clip)].finished_at > finished[str(phone_clip)]

    # the 6 s clip, sampled at 4 fps, no longer fits a budget of 20 frames
    settings.ASTRADUP = {**settings.ASTRADUP, "MAX_FRAMES": 20}
    Video.objects.filter(path=str(clip)).update(feature_version=UNCHANGED_SINCE)
    call_command("reextract", "--sync")
    assert "kept" not in capsys.readouterr().out
    video = Video.objects.get(path=str(clip))
    assert video.feature_version == FEATURE_VERSION and video.finished_at > finished[str(clip)]
    assert video.frames.count() == 20


def test_a_clip_from_beyond_the_frame_budget_of_a_long_video_is_found(tmp_path, settings):
    """A video longer than ASTRADUP_MAX_FRAMES seconds used to be sampled over its first
    MAX_FRAMES seconds only: a clip cut from later on was not found at all."""
    settings.ASTRADUP = {**settings.ASTRADUP, "MAX_FRAMES": 24}
    long = tmp_path / "long.mp4"
    scenes = [
        SOURCES[name].format(w=160, h=120, fps=25) for name in ("mandelbrot", "life", "testsrc", "cells")
    ]
    inputs = [arg for scene in scenes for arg in ("-f", "lavfi", "-t", "12", "-i", scene)]
    chains = "".join(f"[{i}:v]format=yuv420p[v{i}];" for i in range(len(scenes)))
    joined = "".join(f"[v{i}]" for i in range(len(scenes)))
    ffmpeg(*inputs, "-filter_complex", f"{chains}{joined}concat=n={len(scenes)}:v=1:a=0[v]", "-map", "[v]",
           "-c:v", "libx264", "-preset", "ultrafast", str(long))  # fmt: skip
    tail = tmp_path / "tail.mp4"  # seconds 36-46 of 48, well past the first 24
    ffmpeg("-ss", "36", "-t", "10", "-i", str(long), "-vf", "scale=240:180", "-c:v", "libx264",
           "-preset", "ultrafast", "-crf", "28", str(tail))  # fmt: skip
    _ingest_sync(long, tail)
    source = Video.objects.get(path=str(long))
    assert source.frames.count() == 24
    pair = Pair.objects.get(video_a=source, video_b=Video.objects.get(path=str(tail)))
    assert pair.label == "partial", pair.breakdown
    assert pair.segments["offset"] == pytest.approx(-36, abs=1.5), pair.segments


def test_ingest_enqueues_extraction_after_commit(tmp_path, clip):
    from django_q.models import OrmQ

    path = tmp_path / "queued.mp4"
    shutil.copy(clip, path)
    call_command("ingest", str(path))
    assert Video.objects.get(path=str(path)).status == Video.Status.PENDING
    assert OrmQ.objects.count() == 1


def test_a_reencoded_copy_is_matched_with_its_segments(tmp_path, clip, other_clip):
    copy = transcode(clip, tmp_path / "copy.mp4", vf="scale=240:180,hflip", crf=30)
    _ingest_sync(clip, copy, other_clip)
    original = Video.objects.get(path=str(clip))
    twin = Video.objects.get(path=str(copy))
    pair = Pair.objects.get(video_a=original, video_b=twin)
    assert pair.label in ("exact", "near_duplicate"), pair.breakdown
    assert pair.segments["coverage_a"] >= 0.8 and pair.config is not None
    assert original.group_id is not None and original.group_id == twin.group_id
    other = Video.objects.get(path=str(other_clip))
    assert not Pair.objects.filter(video_b=other, label__in=Pair.DUPLICATE_LABELS).exists()


def test_the_stored_frames_and_audio_hashes_are_what_the_extractors_computed(clip):
    """video_extract writes with a binary COPY: every column lands where it belongs."""
    import numpy as np

    from dedup.features.extract import extract_features
    from dedup.features.frames import one_per_second
    from dedup.features.phash import bands

    video = Video.objects.create(path=str(clip), rel_path=clip.name, size=clip.stat().st_size)
    services.video_extract(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == Video.Status.READY, video.error
    embedder = services.current_embedder()
    expected = extract_features(clip, embedder, embed_batch=2, dense_min_frames=16, max_frames=3600)
    frames = list(Frame.objects.filter(video=video).order_by("idx"))
    assert [f.idx for f in frames] == list(range(len(expected.hashes)))
    assert [f.t for f in frames] == pytest.approx(expected.frames.times.tolist())
    assert [f.informative for f in frames] == expected.frames.informative.tolist()
    # one frame per second goes into the index (7 of this 4 fps clip's 25), unlike `informative`
    assert [f.indexed for f in frames] == one_per_second(expected.frames.times).tolist()
    assert sum(f.indexed for f in frames) < len(frames)
    assert [f.phash for f in frames] == expected.hashes
    assert [(f.phash_b0, f.phash_b1, f.phash_b2, f.phash_b3) for f in frames] == [
        bands(h) for h in expected.hashes
    ]
    assert [bytes(f.thumb) for f in frames] == expected.thumbs
    assert {f.model for f in frames} == {embedder.name}
    stored = np.array([f.embedding for f in frames], dtype=np.float32)
    assert np.allclose(stored, expected.embeddings, atol=2e-3)  # stored as half precision
    assert all(f.index_embedding is None for f in frames)  # no projection fitted
    fingerprint = expected.audio.fingerprint.astype(np.uint32).view(np.int32)
    assert sorted(AudioHash.objects.filter(video=video).values_list("value", flat=True)) == sorted(
        int(v) for v in np.unique(fingerprint)
    )
