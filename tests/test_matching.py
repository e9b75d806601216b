"""The pure matching engine on synthetic frame sequences (no database, no decoding)."""

import numpy as np
import pytest

from dedup.matching.groups import Link, group_components, keep_best, keep_choice
from dedup.matching.score import score_pair
from dedup.matching.signals import ScoringParams, VideoSignals

DIM = 64
DUPLICATE = {"exact", "near_duplicate", "partial"}


class Footage:
    """Smoothly changing content: an embedding for any moment of a source timeline."""

    def __init__(self, seed: int, seconds: int, pace: float = 1.0):
        rng = np.random.default_rng(seed)
        self.pace = pace  # scenes per second
        self.anchors = rng.standard_normal((int(seconds * pace) + 2, DIM))

    def at(self, t: float) -> np.ndarray:
        t = t * self.pace
        i = int(np.floor(t))
        w = t - i
        v = (1 - w) * self.anchors[i] + w * self.anchors[i + 1]
        return v / np.linalg.norm(v)


class LookAlike(Footage):
    """Footage that looks alike throughout (a visualiser, a fixed camera): one picture, a little change."""

    def __init__(self, seed: int, seconds: int, change: float = 0.12):
        super().__init__(seed, seconds)
        base = np.random.default_rng(seed + 77).standard_normal(DIM)
        self.base = base / np.linalg.norm(base)
        self.change = change

    def at(self, t: float) -> np.ndarray:
        v = self.base + self.change * super().at(t)
        return v / np.linalg.norm(v)


class Thumbnails:
    """16x16 grey thumbnails of a timeline, changing twice a second."""

    def __init__(self, seed: int, seconds: int):
        self.anchors = np.random.default_rng(seed).standard_normal((seconds * 2 + 2, 256))

    def at(self, t: float) -> np.ndarray:
        i = int(np.floor(t * 2))
        w = t * 2 - i
        return np.clip(128 + 40 * ((1 - w) * self.anchors[i] + w * self.anchors[i + 1]), 0, 255).astype(
            np.uint8
        )

    def seconds(self, start: float, n: int) -> np.ndarray:
        return np.stack([self.at(start + k) for k in range(n)])


def video(
    frames: list[np.ndarray],
    *,
    id: int,
    noise: float = 0.35,
    seed: int = 0,
    fingerprint=None,
    size: int = 1_000_000,
    width: int = 640,
    height: int = 360,
    rate: float = 1.0,
    thumbs: np.ndarray | None = None,
) -> VideoSignals:
    rng = np.random.default_rng(seed + 1000 * id)
    emb = np.stack(frames) + noise * rng.standard_normal((len(frames), DIM)) / np.sqrt(DIM)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    n = len(frames)
    return VideoSignals(
        id=id,
        times=(np.arange(n) / rate).astype(np.float32),
        embeddings=emb.astype(np.float32),
        phashes=rng.integers(-(2**62), 2**62, n, dtype=np.int64),
        informative=np.ones(n, dtype=bool),
        duration=float(n / rate),
        width=width,
        height=height,
        fps=25.0,
        size=size,
        bitrate=size * 8 // max(n, 1),
        fingerprint=fingerprint,
        mfcc=None,
        has_audio=fingerprint is not None,
        thumbs=thumbs,
    )


def sample(
    footage: Footage, start: float, seconds: int, speed: float = 1.0, rate: float = 1.0
) -> list[np.ndarray]:
    return [footage.at(start + speed * k / rate) for k in range(int(seconds * rate))]


@pytest.fixture
def source() -> Footage:
    return Footage(1, 80)


def test_a_copy_of_the_whole_video_is_a_duplicate(source):
    result = score_pair(video(sample(source, 0, 20), id=1), video(sample(source, 0, 20), id=2))
    assert result.label in {"exact", "near_duplicate"}
    assert result.segments.coverage_a == result.segments.coverage_b == 1.0


def test_a_trimmed_copy_aligns_at_its_offset(source):
    result = score_pair(video(sample(source, 0, 20), id=1), video(sample(source, 3, 14), id=2))
    assert result.label in DUPLICATE
    assert result.segments.offset == pytest.approx(-3, abs=0.6)
    assert result.segments.a[0][0] == pytest.approx(3, abs=1)


def test_a_copy_with_an_added_intro_aligns_after_the_intro(source):
    intro = sample(Footage(99, 10), 0, 4)
    result = score_pair(video(sample(source, 0, 16), id=1), video(intro + sample(source, 0, 16), id=2))
    assert result.label in DUPLICATE
    assert result.segments.offset == pytest.approx(4, abs=0.6)
    assert result.segments.b[0][0] == pytest.approx(4, abs=1)


def test_a_ten_second_clip_inside_a_long_video_is_partial(source):
    long = video(sample(source, 0, 70), id=1)
    clip = video(sample(source, 30, 10), id=2)
    result = score_pair(long, clip)
    assert result.label == "partial"
    assert result.segments.a[0][0] == pytest.approx(30, abs=1)
    assert result.segments.coverage_b == 1.0 and result.segments.coverage_a < 0.2


@pytest.mark.parametrize("speed", [1.25, 0.8])
def test_a_speed_changed_copy_aligns(source, speed):
    result = score_pair(
        video(sample(source, 0, 30), id=1), video(sample(source, 0, int(30 / speed) - 1, speed), id=2)
    )
    assert result.label in DUPLICATE
    assert result.segments.speed == pytest.approx(
        1 / speed, abs=0.05
    ) or result.segments.speed == pytest.approx(speed, abs=0.05)


def test_a_short_copy_cut_half_a_second_off_aligns_when_sampled_at_4_fps():
    # footage that changes twice a second: at 1 fps every frame of the copy falls between two
    # frames of the original; short videos are sampled at 4 fps for that reason
    fast = Footage(3, 20, pace=2.0)
    dense = score_pair(
        video(sample(fast, 0, 9, rate=4), id=1, rate=4), video(sample(fast, 0.5, 6, rate=4), id=2, rate=4)
    )
    assert dense.label in DUPLICATE
    assert dense.segments.offset == pytest.approx(-0.5, abs=0.15)
    assert dense.segments.a[0][0] == pytest.approx(0.5, abs=0.6)
    sparse = score_pair(video(sample(fast, 0, 9), id=1), video(sample(fast, 0.5, 6), id=2))
    assert sparse.score < dense.score - 0.2


def test_a_densely_sampled_clip_aligns_inside_a_long_video_sampled_at_1_fps(source):
    long = video(sample(source, 0, 70), id=1)
    clip = video(sample(source, 30.5, 8, rate=4), id=2, rate=4)
    result = score_pair(long, clip)
    assert result.label == "partial"
    assert result.segments.offset == pytest.approx(-30.5, abs=0.15)
    assert result.segments.a[0][0] == pytest.approx(31, abs=0.6)
    assert result.segments.coverage_b > 0.85 and result.segments.coverage_a < 0.15


def test_three_shared_seconds_are_not_a_partial_copy_but_a_three_second_clip_is(source):
    a = video(sample(Footage(5, 20), 0, 8) + sample(source, 10, 3) + sample(Footage(6, 20), 0, 8), id=1)
    b = video(sample(Footage(7, 20), 0, 6) + sample(source, 10, 3) + sample(Footage(8, 20), 0, 6), id=2)
    shared = score_pair(a, b)
    assert shared.breakdown.matched_frames == 3 and shared.label not in DUPLICATE
    clip = score_pair(video(sample(source, 0, 20), id=3), video(sample(source, 10, 3), id=4))
    assert clip.label == "partial"
    longer = score_pair(
        video(sample(Footage(5, 20), 0, 8) + sample(source, 8, 7) + sample(Footage(6, 20), 0, 8), id=5),
        video(sample(Footage(7, 20), 0, 6) + sample(source, 8, 7) + sample(Footage(8, 20), 0, 6), id=6),
    )
    assert longer.label == "partial"


def test_thumbnail_motion_confirms_a_blurred_copy_that_the_embeddings_doubt():
    # look-alike footage, and a copy whose embeddings are far off (heavy blur): the pictures'
    # own line is right but they cannot tell this moment from another; the thumbnails can
    look, thumbs = LookAlike(3, 30), Thumbnails(3, 30)
    original = video(sample(look, 0, 14), id=1, noise=0.2, thumbs=thumbs.seconds(0, 14))

    def clip(clip_thumbs):
        return video(sample(look, 5, 6), id=2, noise=0.5, thumbs=clip_thumbs)

    assert score_pair(original, clip(None)).label not in DUPLICATE
    confirmed = score_pair(original, clip(thumbs.seconds(5, 6)))
    assert confirmed.label == "partial" and confirmed.breakdown.low_res_motion > 0.95
    assert confirmed.segments.offset == pytest.approx(-5, abs=0.5)
    mirrored = thumbs.seconds(5, 6).reshape(-1, 16, 16)[:, :, ::-1].reshape(6, 256)
    assert score_pair(original, clip(mirrored)).label == "partial"
    # thumbnails of another moment move otherwise: no help
    other_moment = score_pair(original, clip(thumbs.seconds(9, 6)))
    assert other_moment.label not in DUPLICATE and other_moment.breakdown.low_res_motion < 0.5


def test_in_look_alike_footage_the_thumbnails_find_the_moment_the_pictures_miss():
    look, thumbs = LookAlike(6, 30), Thumbnails(6, 30)
    original = video(sample(look, 0, 14), id=1, noise=0.2, thumbs=thumbs.seconds(0, 14))
    blind = score_pair(original, video(sample(look, 5, 6), id=2, noise=0.5))
    assert blind.segments.offset != pytest.approx(-5, abs=0.5)  # the vote picks another moment
    found = score_pair(original, video(sample(look, 5, 6), id=2, noise=0.5, thumbs=thumbs.seconds(5, 6)))
    assert found.breakdown.aligned_by == "motion"
    assert found.segments.offset == pytest.approx(-5, abs=0.5) and found.label == "partial"


def test_in_look_alike_footage_the_soundtrack_finds_the_moment_the_pictures_miss():
    from dedup.features.audio import FP_ITEM_SECONDS

    look = LookAlike(6, 30)
    song = np.random.default_rng(6).integers(0, 2**32, int(14 / FP_ITEM_SECONDS), dtype=np.uint64)
    song = song.astype(np.uint32)
    start = int(round(5 / FP_ITEM_SECONDS))
    original = video(sample(look, 0, 14), id=1, noise=0.2, fingerprint=song)
    clip = video(sample(look, 5, 6), id=2, noise=0.5, fingerprint=song[start : start + 48].copy())
    blind = score_pair(original, video(sample(look, 5, 6), id=2, noise=0.5))
    assert blind.segments.offset != pytest.approx(-5, abs=0.5)
    found = score_pair(original, clip)
    assert found.breakdown.aligned_by == "audio"
    assert found.segments.offset == pytest.approx(-5, abs=0.5) and found.label == "partial"


def test_a_clip_of_a_few_seconds_is_heard_on_one_second_of_fingerprint_overlap():
    # each file's last ~2 s give no sub-fingerprints, so a 3.7 s clip overlaps its source by ~9
    from dedup.matching.score import fingerprint_similarity

    rng = np.random.default_rng(4)
    source = rng.integers(0, 2**32, 42, dtype=np.uint64).astype(np.uint32)
    clip = np.concatenate([source[33:], rng.integers(0, 2**32, 22, dtype=np.uint64).astype(np.uint32)])
    sim, offset, overlap = fingerprint_similarity(source, clip, offset_hint=-4.0)
    assert sim > 0.8 and overlap == 9 and offset == pytest.approx(-33 * 1365 / 11025)
    assert fingerprint_similarity(source, clip)[0] < 0.5  # unguided, 1 s is too little to trust


def test_different_footage_is_different(source):
    result = score_pair(video(sample(source, 0, 20), id=1), video(sample(Footage(2, 30), 0, 20), id=2))
    assert result.label == "different"


def test_a_silent_copy_is_not_punished_for_its_silence(source):
    fp = np.random.default_rng(5).integers(0, 2**32, 160, dtype=np.uint64).astype(np.uint32)
    with_sound = video(sample(source, 0, 20), id=1, fingerprint=fp)
    silent = video(sample(source, 0, 20), id=2)
    result = score_pair(with_sound, silent)
    assert result.audio is None and result.breakdown.audio_missing
    twin = score_pair(video(sample(source, 0, 20), id=3), silent)
    assert result.score == pytest.approx(twin.score, abs=0.02)
    assert result.label in {"exact", "near_duplicate"}


def test_fusion_renormalises_the_weights_present():
    from dedup.matching.score import fuse

    params = ScoringParams()
    assert fuse(params, 0.8, None, 0.5) == pytest.approx((0.65 * 0.8 + 0.10 * 0.5) / 0.75)
    assert fuse(params, 0.8, 0.9, 0.5) == pytest.approx(0.65 * 0.8 + 0.25 * 0.9 + 0.10 * 0.5)
    # a soundtrack that agrees less than the rest is left out, as if missing: it never vetoes
    assert fuse(params, 0.8, 0.4, 0.5) == pytest.approx(fuse(params, 0.8, None, 0.5))


def test_the_same_pictures_under_another_soundtrack_are_a_duplicate(source):
    rng = np.random.default_rng(6)
    song = rng.integers(0, 2**32, 160, dtype=np.uint64).astype(np.uint32)
    other = rng.integers(0, 2**32, 160, dtype=np.uint64).astype(np.uint32)
    a = video(sample(source, 0, 20), id=1, fingerprint=song)
    replaced = score_pair(a, video(sample(source, 0, 20), id=2, fingerprint=other))
    kept = score_pair(a, video(sample(source, 0, 20), id=3, fingerprint=song.copy()))
    assert replaced.label in {"exact", "near_duplicate"} and replaced.audio < 0.2
    assert replaced.breakdown.soundtrack == "replaced" and kept.breakdown.soundtrack == "agrees"
    assert kept.score >= replaced.score  # an agreeing soundtrack still supports


def test_a_shared_intro_does_not_make_two_videos_duplicates():
    intro = sample(Footage(7, 5), 0, 3)
    a = video(intro + sample(Footage(10, 30), 0, 20), id=1)
    b = video(intro + sample(Footage(11, 30), 0, 20), id=2)
    result = score_pair(a, b)
    assert result.breakdown.boilerplate is True
    assert result.label not in DUPLICATE


def test_the_same_song_over_different_footage_is_not_a_duplicate():
    fp = np.random.default_rng(9).integers(0, 2**32, 160, dtype=np.uint64).astype(np.uint32)
    a = video(sample(Footage(20, 30), 0, 20), id=1, fingerprint=fp)
    b = video(sample(Footage(21, 30), 0, 20), id=2, fingerprint=fp.copy())
    result = score_pair(a, b)
    assert result.audio is not None and result.audio > 0.9
    assert result.label not in DUPLICATE


def test_identical_files_are_exact_without_looking_further(source):
    a = video(sample(source, 0, 5), id=1)
    b = video(sample(Footage(3, 10), 0, 5), id=2)
    a = a.__class__(**{**a.__dict__, "sha256": "ab" * 32})
    b = b.__class__(**{**b.__dict__, "sha256": "ab" * 32})
    assert score_pair(a, b).label == "exact"


def test_a_daisy_chain_is_two_links_not_one_group():
    edges = [(1, 2, 0.9, "near_duplicate"), (2, 3, 0.88, "near_duplicate")]
    assert group_components(edges) == [[1, 2]]


def test_a_group_of_mutual_copies_stays_together():
    edges = [(a, b, 0.9, "near_duplicate") for a in range(1, 6) for b in range(a + 1, 6) if (a, b) != (2, 5)]
    assert group_components(edges) == [[1, 2, 3, 4, 5]]


def test_two_groups_joined_by_one_weak_link_stay_apart():
    edges = [
        (1, 2, 0.95, "exact"),
        (1, 3, 0.95, "exact"),
        (2, 3, 0.95, "exact"),
        (4, 5, 0.95, "exact"),
        (4, 6, 0.95, "exact"),
        (5, 6, 0.95, "exact"),
        (3, 4, 0.86, "near_duplicate"),
    ]
    assert sorted(group_components(edges)) == [[1, 2, 3], [4, 5, 6]]


def test_keep_best_prefers_resolution_then_duration_then_codec_then_the_earliest_file():
    base = {"pixels": 1280 * 720, "duration": 60.0, "codec": "h264", "sha256": "", "mtime": 100.0}
    assert keep_best([{**base, "id": 1}, {**base, "id": 2, "pixels": 1920 * 1080}]) == 2
    assert keep_best([{**base, "id": 1}, {**base, "id": 2, "duration": 61.5}]) == 2
    assert keep_best([{**base, "id": 1}, {**base, "id": 2, "codec": "hevc"}]) == 2
    assert keep_best([{**base, "id": 1, "mtime": 200.0}, {**base, "id": 2}]) == 2
    assert keep_best([{**base, "id": 3}, {**base, "id": 2}]) == 2


def test_keep_choice_never_picks_for_bitrate_size_or_a_slowed_copys_length():
    base = {"pixels": 640 * 360, "duration": 10.0, "codec": "h264", "sha256": "", "mtime": 100.0}
    # a noise-added re-upload is bigger with a higher bitrate; those are not facts keep_choice reads
    noisy = {**base, "id": 1, "mtime": 300.0, "bitrate": 13_000_000, "size": 13_000_000}
    original = {**base, "id": 2, "bitrate": 700_000, "size": 700_000}
    assert keep_best([noisy, original], [Link(1, 2, "near_duplicate")]) == 2
    # B is A at 0.8x: longer, but not more content
    slowed = {**base, "id": 3, "duration": 12.5, "mtime": 400.0}
    choice = keep_choice([original, slowed], [Link(2, 3, "near_duplicate", speed=1.25)])
    assert choice.keep == 2
    assert any("playback speed" in r for r in choice.reasons)


def test_keep_choice_keeps_the_earliest_ingested_of_byte_identical_files():
    base = {"pixels": 640 * 360, "duration": 10.0, "codec": "h264", "sha256": "ab" * 32}
    choice = keep_choice(
        [{**base, "id": 5, "mtime": 1.0}, {**base, "id": 4, "mtime": 9.0}], [Link(4, 5, "exact")]
    )
    assert choice.keep == 4
    assert "byte-identical" in choice.reasons[0]


def test_keep_choice_never_picks_a_partial_member():
    base = {"pixels": 640 * 360, "duration": 10.0, "codec": "h264", "sha256": "", "mtime": 1.0}
    montage = {**base, "id": 1, "duration": 60.0, "pixels": 1920 * 1080}
    clip, copy = {**base, "id": 2}, {**base, "id": 3}
    links = [Link(1, 2, "partial"), Link(1, 3, "partial"), Link(2, 3, "near_duplicate")]
    choice = keep_choice([montage, clip, copy], links)
    assert choice.keep == 2 and choice.partial == {1}
    # only partial links: nobody is chosen, a person must
    alone = keep_choice([montage, clip], [Link(1, 2, "partial")])
    assert alone.keep is None and alone.partial == {1, 2}


OTHER_PARAMS = [
    ScoringParams(
        visual_weight=0.5, audio_weight=0.4, metadata_weight=0.1, near_threshold=0.6, partial_threshold=0.9
    ),
    ScoringParams(exact_threshold=0.9, near_threshold=0.88, similar_threshold=0.2, partial_threshold=0.5),
    ScoringParams(visual_weight=1.0, audio_weight=0.0, metadata_weight=0.0, similar_threshold=0.9),
]


@pytest.mark.parametrize("params", OTHER_PARAMS)
def test_stored_fusion_inputs_rescore_exactly_like_a_full_score(source, params):
    """Calibration and config changes re-score pairs from breakdown['fusion'] alone."""
    from dedup.matching.score import FusionInputs, classify_one

    fp = np.random.default_rng(5).integers(0, 2**32, 160, dtype=np.uint64).astype(np.uint32)
    intro = sample(Footage(7, 5), 0, 3)
    cases = [
        (video(sample(source, 0, 20), id=1), video(sample(source, 3, 14), id=2)),
        (video(sample(source, 0, 70), id=1), video(sample(source, 30, 10), id=2)),
        (video(sample(source, 0, 20), id=1, fingerprint=fp), video(sample(source, 0, 20), id=2, noise=0.9)),
        (
            video(intro + sample(Footage(10, 30), 0, 20), id=1),
            video(intro + sample(Footage(11, 30), 0, 20), id=2),
        ),
        (
            video(sample(Footage(20, 30), 0, 20), id=1, fingerprint=fp),
            video(sample(Footage(21, 30), 0, 20), id=2, fingerprint=fp),
        ),
    ]
    for a, b in cases:
        stored = score_pair(a, b).breakdown.as_json()["fusion"]
        again = score_pair(a, b, params)
        assert classify_one(FusionInputs.from_dict(stored), params) == (again.score, again.label)


def _fingerprint_similarity_by_scan(fa, fb, offsets, min_overlap):
    """The offset-by-offset scan the vectorised search replaced: the reference it must equal."""
    from dedup.features.audio import FP_ITEM_SECONDS

    best = (0.0, 0.0, 0)
    for off in offsets:
        a0, b0 = max(0, -off), max(0, off)
        n = min(len(fa) - a0, len(fb) - b0)
        if n < min_overlap:
            continue
        sim = (1.0 - 2.0 * float(np.bitwise_count(fa[a0 : a0 + n] ^ fb[b0 : b0 + n]).mean() / 32.0)) * min(
            1.0, 0.85 + 0.15 * n / 80
        )
        if sim > best[0]:
            best = (sim, off * FP_ITEM_SECONDS, n)
    return best


@pytest.mark.parametrize(
    "na, nb, shift", [(480, 480, 0), (480, 200, 150), (60, 900, -1), (9, 12, 0), (300, 30, 0)]
)
def test_the_fingerprint_search_finds_what_a_scan_of_every_offset_finds(na, nb, shift):
    from dedup.features.audio import FP_ITEM_SECONDS
    from dedup.matching.audio import MIN_FP_OVERLAP, MIN_FP_OVERLAP_SHORT, fingerprint_similarity

    rng = np.random.default_rng(na + nb)
    song = rng.integers(0, 2**32, na + nb + 400, dtype=np.uint64).astype(np.uint32)
    fa = song[200 : 200 + na].copy()
    start = 200 + shift if shift >= 0 else rng.integers(0, 400)
    fb = song[start : start + nb] ^ (rng.random(nb) < 0.3).astype(np.uint32) << 7  # some bit errors
    min_overlap = max(MIN_FP_OVERLAP_SHORT, min(MIN_FP_OVERLAP, int(0.8 * min(na, nb))))
    found = fingerprint_similarity(fa, fb)
    assert found == _fingerprint_similarity_by_scan(
        fa, fb, range(-(na - min_overlap), nb - min_overlap + 1), min_overlap
    )
    hinted = fingerprint_similarity(fa, fb, offset_hint=-0.5)
    width = round(3.0 / FP_ITEM_SECONDS)  # fingerprint_similarity's default search: ± 3 s
    centre = round(-0.5 / FP_ITEM_SECONDS)
    offsets = range(
        max(-(na - MIN_FP_OVERLAP_SHORT), centre - width), min(nb - MIN_FP_OVERLAP_SHORT, centre + width) + 1
    )
    assert hinted == _fingerprint_similarity_by_scan(fa, fb, offsets, MIN_FP_OVERLAP_SHORT)
    if shift >= 0 and min(na, nb) >= min_overlap:
        assert found[0] > 0.8 and found[1] == pytest.approx(-shift * FP_ITEM_SECONDS)


def test_two_copies_matching_one_stretch_of_an_original_are_one_family():
    from dedup.matching.groups import Span, family_edges

    # 1 = original (0-20 s); 2 and 3 copy all of it; 4 copies 12-20 s; 5 copies 0-6 s
    spans = [
        Span(1, 2, 0.9, (0, 20), (0, 20)),
        Span(1, 3, 0.8, (0, 20), (0, 19)),
        Span(1, 4, 0.88, (12, 20), (0, 8)),
        Span(5, 1, 0.87, (0, 6), (0, 6)),
    ]
    linked = {(a, b): score for a, b, score, _ in family_edges(spans)}
    assert linked[(2, 3)] == 0.8 and (2, 4) in linked and (3, 5) in linked
    assert (4, 5) not in linked  # 12-20 s and 0-6 s of the original: no footage in common
    assert (1, 2) not in linked  # direct pairs are not inferred again


def test_a_montage_does_not_link_the_clips_it_quotes():
    from dedup.matching.groups import Span, family_edges, group_components

    # 9 = a montage holding 0-10 s of 1 and then 10-20 s of 2 (two different originals)
    spans = [Span(9, 1, 0.9, (0, 10), (0, 10)), Span(9, 2, 0.9, (10, 20), (5, 15))]
    assert family_edges(spans) == []
    assert len(group_components([(9, 1, 0.9, "partial"), (9, 2, 0.9, "partial")])) == 1  # never {1, 2, 9}


def test_a_shared_opener_under_different_soundtracks_stays_apart_but_a_whole_copy_does_not():
    from dedup.matching.fusion import FusionInputs, classify_one

    params = ScoringParams()
    opener = FusionInputs(0.5, 1.0, 0.0, 0.8, long_enough=True, opener=True)
    middle = FusionInputs(0.5, 1.0, 0.0, 0.8, long_enough=True)
    assert classify_one(opener, params)[1] not in DUPLICATE  # a series' opener, each under its own sound
    assert classify_one(middle, params)[1] == "partial"  # the same pictures elsewhere: a copy


def test_in_a_still_shot_the_residual_counts_only_where_the_thumbnails_motion_agrees():
    from dedup.matching.visual import visual_evidence

    # another moment of one screen recording: its pointer and coding noise agree (residual), its
    # thumbnails' motion does not, and the aligned moment is no better than its neighbours
    other_moment = visual_evidence(0.9, 0.5, 0.85, 15, sharpness=-0.05, motion=0.0)
    same_moment = visual_evidence(0.9, 0.5, 0.85, 15, sharpness=-0.05, motion=0.6)
    sharp_moment = visual_evidence(0.9, 0.5, 0.85, 15, sharpness=0.05, motion=0.0)
    moving_footage = visual_evidence(0.9, 0.5, 0.5, 15, sharpness=-0.05, motion=0.0)
    assert other_moment < 0.6 < same_moment == sharp_moment == moving_footage


def test_under_two_soundtracks_look_alike_footage_needs_the_thumbnails_or_the_moment():
    from dedup.matching.visual import visual_evidence

    # two runs of one procedural visualiser under different music: their pictures share a trend
    look_alike = visual_evidence(0.86, 0.54, 0.69, 16, sharpness=0.004, motion=-0.01, sound_differs=True)
    replaced = visual_evidence(0.86, 0.54, 0.69, 16, sharpness=0.03, motion=0.98, sound_differs=True)
    silent = visual_evidence(0.86, 0.54, 0.69, 16, sharpness=0.004, motion=-0.01)
    assert look_alike < 0.6 < replaced == silent


@pytest.mark.parametrize("speed", [0.85, 1.37])
def test_a_short_look_alike_copy_at_another_speed_is_found_along_its_own_speed(speed):
    # ten seconds of look-alike footage line up at 1x nearly as well as at the copy's own speed,
    # so the vote keeps 1x and its motion cannot agree; walking the copy's speed meets each
    # frame's own partner
    look, thumbs = LookAlike(5, 40, change=0.25), Thumbnails(5, 40)

    def seconds(start: float, n: int, pace: float = 1.0) -> np.ndarray:
        return np.stack([thumbs.at(start + pace * k) for k in range(n)])

    n = int(10 / speed)
    original = video(sample(look, 0, 10), id=1, noise=0.2, thumbs=seconds(0, 10))
    copy = score_pair(
        original, video(sample(look, 0, n, speed), id=2, noise=0.3, thumbs=seconds(0, n, speed))
    )
    assert copy.label in DUPLICATE and copy.breakdown.aligned_by == "speed"
    assert copy.segments.speed == pytest.approx(1 / speed, rel=0.1)  # within two steps of the grid
    # another moment of the same footage at that speed: no line makes it a copy
    other = score_pair(
        original, video(sample(look, 20, n, speed), id=3, noise=0.3, thumbs=seconds(20, n, speed))
    )
    assert other.label not in DUPLICATE


def test_a_short_video_that_opens_a_montage_under_its_music_is_a_copy_not_an_opener(source):
    # the montage's first excerpt is all of a seven-second clip; the montage's music replaces the
    # clip's sound. A series' opener is a small part of both videos; this is a clip cut in.
    rng = np.random.default_rng(8)
    clip_sound = rng.integers(0, 2**32, 60, dtype=np.uint64).astype(np.uint32)
    music = rng.integers(0, 2**32, 240, dtype=np.uint64).astype(np.uint32)
    clip = video(sample(source, 0, 7), id=1, fingerprint=clip_sound)
    montage = video(sample(source, 0, 7) + sample(Footage(9, 40), 0, 23), id=2, fingerprint=music)
    result = score_pair(clip, montage)
    assert result.label == "partial" and not result.breakdown.fusion.opener
    # two long videos sharing their first seven seconds under their own sounds stay apart
    episode_a = video(
        sample(source, 0, 7) + sample(Footage(10, 40), 0, 23), id=3, fingerprint=clip_sound[:1].repeat(240)
    )
    assert score_pair(episode_a, montage).label not in DUPLICATE
