"""Duplicate groups: the copy to keep and why, the groups page, resolving one group or every exact
group at once, and undo; per role."""

import re

import pytest

from dedup.models import DuplicateGroup, Frame, Pair, ScoringConfig, Verdict, Video
from dedup.services import groups_refresh
from review import services
from review.groups import group_resolve, groups_exact_resolve, groups_overview
from review.models import Decision, Resolution

from . import factories as make

pytestmark = pytest.mark.django_db

MB = 1_000_000


@pytest.fixture
def people():
    return {
        role: make.user(role, None if role == "outsider" else role)
        for role in ("moderator", "admin", "viewer", "outsider")
    }


def _video(name: str, **facts) -> Video:
    defaults = dict(
        width=640,
        height=360,
        duration=10.0,
        size=MB,
        bitrate=800_000,
        fps=25.0,
        video_codec="h264",
        mtime=100.0,
    )
    return make.video(name, root="/lib", status="ready", **{**defaults, **facts})


def _pair(a: Video, b: Video, label: str, score: float, speed: float = 1.0) -> Pair:
    return make.pair(
        a,
        b,
        label,
        score,
        visual=score,
        metadata=0.9,
        segments={"a": [[0.0, 10.0]], "b": [[0.0, 10.0]], "speed": speed, "offset": 0.0},
        config=ScoringConfig.active(),
    )


@pytest.fixture
def library():
    """Two exact groups (one byte-identical), a group of an original with a noisy re-upload and a
    slowed copy, and a montage quoting a clip and its re-encode."""
    v = {}
    v["first"] = _video("first.mp4", sha256="ab" * 32, size=600 * MB, mtime=500.0)
    v["again"] = _video(
        "again.mp4", sha256="ab" * 32, size=600 * MB, mtime=100.0
    )  # same bytes, ingested later
    v["x"] = _video("x.mp4", size=500 * MB)
    v["x-copy"] = _video("x-copy.mp4", size=500 * MB, mtime=200.0)
    v["noisy"] = _video("noisy.mp4", size=13 * MB, bitrate=10_000_000, mtime=300.0)
    v["original"] = _video("original.mp4", size=700_000, bitrate=560_000, mtime=100.0)
    v["slowed"] = _video("slowed.mp4", duration=12.5, mtime=400.0)
    v["montage"] = _video("montage.mp4", width=1920, height=1080, duration=60.0, size=40 * MB)
    v["clip"] = _video("clip.mp4")
    v["clip-hevc"] = _video("clip-hevc.mp4", video_codec="hevc", mtime=200.0)
    p = {
        "identical": _pair(v["first"], v["again"], "exact", 1.0),
        "exact": _pair(v["x"], v["x-copy"], "exact", 0.97),
        "noisy": _pair(v["original"], v["noisy"], "near_duplicate", 0.9),
        "slowed": _pair(v["original"], v["slowed"], "near_duplicate", 0.88, speed=1.25),
        "noisy-slowed": _pair(v["noisy"], v["slowed"], "near_duplicate", 0.87, speed=1.25),
        "montage-clip": _pair(v["montage"], v["clip"], "partial", 0.8),
        "montage-hevc": _pair(v["montage"], v["clip-hevc"], "partial", 0.8),
        "clips": _pair(v["clip"], v["clip-hevc"], "near_duplicate", 0.9),
    }
    groups_refresh()
    for video in v.values():
        video.refresh_from_db()
    return v, p


def _overview(video: Video):
    (overview,) = groups_overview(group_ids=[video.group_id])
    return overview


def test_a_byte_identical_group_keeps_the_earliest_ingested_file(library):
    v, _ = library
    assert v["first"].group.suggested_keep_id == v["first"].pk  # not the one with the older mtime
    overview = _overview(v["first"])
    assert overview.exact and "byte-identical" in overview.reasons[0]
    assert [m.kind for m in overview.members] == ["", "exact copy"]


def test_the_original_is_kept_not_the_noisy_re_upload_nor_the_slowed_copy(library):
    v, _ = library
    overview = _overview(v["original"])
    assert v["original"].group.suggested_keep_id == v["original"].pk
    assert overview.keep == v["original"]
    assert "playback speed" in " ".join(overview.reasons)
    assert {m.video.file_name: m.kind for m in overview.members} == {
        "noisy.mp4": "near duplicate",
        "original.mp4": "",
        "slowed.mp4": "near duplicate",
    }
    assert overview.freed_bytes == 13 * MB + MB


def test_a_montage_is_never_suggested_as_the_canonical_of_the_clips_it_quotes(library):
    v, _ = library
    overview = _overview(v["clip"])
    assert overview.keep == v["clip-hevc"]  # the more efficient codec, never the (bigger) montage
    assert overview.has_partial
    assert {m.video.file_name for m in overview.members if m.partial} == {"montage.mp4"}
    assert v["clip"].group.suggested_keep_id == v["clip-hevc"].pk


def test_resolving_a_group_decides_each_pair_as_a_single_decision_would(library, people):
    v, p = library
    moderator = people["moderator"]
    resolution = group_resolve(group_id=v["original"].group_id, user=moderator)
    assert (resolution.groups, resolution.duplicates, resolution.freed_bytes) == (1, 2, 14 * MB)
    decisions = {d.pair_id: d for d in Decision.objects.filter(resolution=resolution)}
    assert decisions[p["noisy"].pk].action == "merge" and decisions[p["noisy"].pk].canonical == v["original"]
    assert decisions[p["slowed"].pk].action == "merge"
    assert decisions[p["noisy-slowed"].pk].action == "confirm"  # the kept copy is not in it
    assert decisions[p["noisy"].pk].pair_score == 0.9 and decisions[p["noisy"].pk].user == moderator
    assert Verdict.objects.filter(kind="duplicate", decided_by=moderator).count() == 3
    assert DuplicateGroup.objects.get(pk=v["original"].group_id).canonical == v["original"]
    assert not {p["noisy"], p["slowed"]} & set(services.queue_pairs())  # nothing left to review there
    assert not _overview(v["original"]).resolvable
    with pytest.raises(services.DecisionRefused, match="already resolved"):
        group_resolve(group_id=v["original"].group_id, user=moderator)


def test_a_group_holding_partial_copies_is_resolved_only_once_confirmed(library, people):
    v, _ = library
    group_id = v["clip"].group_id
    with pytest.raises(services.DecisionRefused, match="partial copies"):
        group_resolve(group_id=group_id, user=people["moderator"])
    assert not Decision.objects.exists()
    group_resolve(group_id=group_id, user=people["moderator"], keep_id=v["clip"].pk, partial_ok=True)
    assert DuplicateGroup.objects.get(pk=group_id).canonical == v["clip"]


def test_a_pair_someone_else_reviews_holds_back_its_group(library, people):
    v, p = library
    other = make.user("other", "moderator")
    services.pair_claim(pair=p["noisy"], user=other)
    with pytest.raises(services.DecisionRefused, match="other is reviewing"):
        group_resolve(group_id=v["original"].group_id, user=people["moderator"])
    assert not Decision.objects.exists() and not Resolution.objects.exists()


def test_all_exact_groups_resolve_as_one_batch_and_one_undo_takes_it_back(library, people):
    v, p = library
    moderator = people["moderator"]
    resolution = groups_exact_resolve(user=moderator)
    assert (resolution.scope, resolution.groups, resolution.duplicates) == ("exact", 2, 2)
    assert resolution.freed_bytes == 1100 * MB
    assert set(resolution.kept.all()) == {v["first"], v["x"]}
    assert Decision.objects.filter(resolution=resolution, action="merge").count() == 2
    assert DuplicateGroup.objects.get(pk=v["first"].group_id).canonical == v["first"]
    with pytest.raises(services.DecisionRefused, match="no exact group"):
        groups_exact_resolve(user=moderator)

    undo = services.decision_undo(user=moderator)  # `u` anywhere: the whole batch goes
    assert undo is not None and undo.resolution == resolution
    resolution.refresh_from_db()
    assert resolution.undone_at is not None
    assert not Verdict.objects.exists()
    assert Decision.objects.filter(action="undo", resolution=resolution).count() == 2
    assert DuplicateGroup.objects.get(pk=v["first"].group_id).canonical is None
    assert DuplicateGroup.objects.get(pk=v["x"].group_id).canonical is None
    assert groups_exact_resolve(user=moderator).groups == 2  # offered again


def test_only_the_moderator_who_resolved_can_undo(client, library, people):
    resolution = groups_exact_resolve(user=people["moderator"])
    client.force_login(people["admin"])
    client.post(f"/review/resolutions/{resolution.pk}/undo")
    resolution.refresh_from_db()
    assert resolution.undone_at is None
    client.force_login(people["moderator"])
    page = client.post(f"/review/resolutions/{resolution.pk}/undo", follow=True).content.decode()
    resolution.refresh_from_db()
    assert resolution.undone_at is not None and "Undone: 2 group(s)" in page


def test_the_groups_page_shows_members_sizes_kinds_and_the_bulk_action(client, library, people):
    v, _ = library
    for idx, t in enumerate((0.0, 2.0, 4.0, 6.0)):  # the thumbnail: a frame a third of the way in
        Frame.objects.create(
            video=v["original"],
            idx=idx,
            t=t,
            phash=0,
            phash_b0=0,
            phash_b1=0,
            phash_b2=0,
            phash_b3=0,
            model="test",
            embedding=[0.0, 1.0],
        )
    client.force_login(people["moderator"])
    page = client.get("/review/groups/").content.decode()
    assert "Resolve all 2 exact groups — frees 1.0\xa0GB" in page
    assert "12.4\xa0MB" in page and "0:12.5" in page  # sizes and durations in human units
    assert "byte-identical files (same SHA-256): the earliest ingested is kept" in page
    assert "partial copy" in page and "never kept automatically" in page
    assert f'src="/review/videos/{v["original"].pk}/frames/2.jpg"' in page
    assert 'name="partial_ok"' in page  # the warning to confirm before merging partial copies

    response = client.post("/review/groups/resolve-exact", follow=True)
    page = response.content.decode()
    assert "Resolved 2 exact groups: 2 marked duplicates" in page
    assert "Undo it" in page
    client.post("/review/undo")  # the pair screen's undo takes the batch back too
    assert Resolution.objects.get().undone_at is not None


def test_an_exact_group_page_offers_the_action_instead_of_not_chosen_yet(client, library, people):
    v, _ = library
    client.force_login(people["moderator"])
    page = client.get(f"/review/groups/{v['x'].group_id}").content.decode()
    assert f'action="/review/groups/{v["x"].group_id}/resolve"' in page
    response = client.post(
        f"/review/groups/{v['x'].group_id}/resolve", {"keep": v["x"].pk, "back": "group"}, follow=True
    )
    assert response.redirect_chain[-1][0] == f"/review/groups/{v['x'].group_id}"
    page = response.content.decode()
    assert "Canonical: <strong>x.mp4</strong>" in page and "group resolution #" in page


def test_viewers_see_groups_but_cannot_resolve(client, library, people):
    v, _ = library
    client.force_login(people["viewer"])
    page = client.get("/review/groups/").content.decode()
    assert "Group #" in page and '<form method="post" action="/review/groups' not in page
    assert client.post("/review/groups/resolve-exact").status_code == 403
    assert client.post(f"/review/groups/{v['x'].group_id}/resolve").status_code == 403
    assert not Decision.objects.exists()
    client.force_login(people["outsider"])
    assert client.get("/review/groups/").status_code == 403
    client.logout()
    assert client.get("/review/groups/").status_code == 302


def test_the_groups_page_makes_a_fixed_number_of_queries(
    client, library, people, django_assert_max_num_queries
):
    for i in range(20):
        a, b = _video(f"more-{i}.mp4"), _video(f"more-{i}-copy.mp4")
        _pair(a, b, "exact", 0.99)
    groups_refresh()
    client.force_login(people["moderator"])
    with django_assert_max_num_queries(20):
        assert client.get("/review/groups/?show=all").status_code == 200


@pytest.mark.parametrize("other", ["noisy", "slowed"])
def test_the_pair_screen_suggests_the_original_not_the_bigger_or_slowed_copy(client, library, people, other):
    v, p = library
    client.force_login(people["moderator"])
    page = client.get(f"/review/pairs/{p[other].pk}").content.decode()
    assert re.search(f'name="canonical" value="{v["original"].pk}"[^>]* checked', page)


def test_two_edited_copies_of_one_original_are_one_group_and_exported_as_duplicates():
    from dedup.exports import pair_rows

    original, mirrored, shrunk = (_video(f"{n}.mp4") for n in ("orig", "mirrored", "shrunk"))
    _pair(original, mirrored, "near_duplicate", 0.9)
    _pair(original, shrunk, "near_duplicate", 0.86)
    _pair(mirrored, shrunk, "similar", 0.6)  # their own comparison fell short
    groups_refresh()
    members = set(Video.objects.filter(group__isnull=False).values_list("pk", flat=True))
    assert members == {original.pk, mirrored.pk, shrunk.pk}
    (row,) = [r for r in pair_rows() if {r["a"], r["b"]} == {"mirrored.mp4", "shrunk.mp4"}]
    assert row["label"] == "duplicate" and row["via"] == "group"


def test_a_moderators_not_duplicate_keeps_two_copies_apart():
    original, one, two = (_video(f"{n}.mp4") for n in ("orig", "one", "two"))
    _pair(original, one, "near_duplicate", 0.9)
    _pair(original, two, "near_duplicate", 0.86)
    Verdict.objects.create(video_a=one, video_b=two, kind=Verdict.Kind.NOT_DUPLICATE)
    groups_refresh()
    assert Video.objects.filter(group__isnull=False).count() == 2  # the original and one copy


def test_a_partial_match_links_its_two_videos_and_no_further():
    original, copy = _video("orig.mp4"), _video("copy.mp4")
    other_moment = _video("other.mp4")  # a look-alike stretch matched the copy, wrongly
    _pair(original, copy, "near_duplicate", 0.9)
    _pair(copy, other_moment, "partial", 0.9)
    groups_refresh()
    grouped = set(Video.objects.filter(group__isnull=False).values_list("pk", flat=True))
    assert other_moment.pk not in grouped or original.pk not in grouped


def test_clips_of_different_stretches_of_one_original_are_not_linked():
    original = _video("orig.mp4", duration=60.0)
    head, tail = _video("head.mp4"), _video("tail.mp4")
    for clip, start in ((head, 0.0), (tail, 40.0)):
        Pair.objects.create(
            video_a=original,
            video_b=clip,
            score=0.85,
            label="partial",
            visual=0.85,
            segments={"a": [[start, start + 10.0]], "b": [[0.0, 10.0]], "speed": 1.0, "offset": -start},
            config=ScoringConfig.active(),
        )
    groups_refresh()
    assert Video.objects.filter(group__isnull=False).count() == 2
