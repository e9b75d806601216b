"""The review queue, decisions, claims, undo and the pair page, per role."""

import pytest
from django.utils import timezone

from dedup.models import Pair, ScoringConfig, Verdict, Video
from dedup.services import groups_refresh
from review import services
from review.models import Claim, Decision

from . import factories as make

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return {
        role: make.user(role, None if role == "outsider" else role)
        for role in ("moderator", "admin", "viewer", "outsider")
    }


@pytest.fixture
def library(clip):
    config = ScoringConfig.active()
    videos = [
        make.video(
            f"v{i}.mp4",
            path=str(clip) if i == 0 else f"/lib/v{i}.mp4",
            root=str(clip.parent) if i == 0 else "/lib",  # the media view serves only inside it
            status="ready",
            width=640 * (1 + (i == 1)),
            height=360 * (1 + (i == 1)),
            duration=10.0,
            bitrate=1_000_000,
            size=1_000_000,
            fps=25.0,
            video_codec="h264",
        )
        for i in range(4)
    ]
    a, b, c, d = videos
    seg = make.aligned(0.0, 10.0)
    pairs = {
        "near": make.pair(
            a,
            b,
            "near_duplicate",
            0.86,
            visual=0.9,
            audio=0.8,
            metadata=0.9,
            segments=seg,
            config=config,
        ),
        "similar": make.pair(
            a,
            c,
            "similar",
            0.72,
            visual=0.7,
            metadata=0.5,
            segments=seg,
            config=config,
        ),
        "exact": make.pair(c, d, "exact", 0.99, segments=seg, config=config),
    }
    return videos, pairs


def test_the_queue_holds_undecided_doubtful_pairs_most_uncertain_first(library):
    _, pairs = library
    queue = list(services.queue_pairs())
    assert queue == [pairs["near"], pairs["similar"]]  # exact pairs skip the queue
    assert services.queue_counts() == {"near_duplicate": 1, "partial": 0, "similar": 1}
    assert list(services.queue_pairs(order="-score")) == [pairs["similar"], pairs["near"]]
    assert list(services.queue_pairs(label="similar")) == [pairs["similar"]]
    assert list(services.queue_pairs(min_score=0.8)) == [pairs["near"]]


def test_not_a_duplicate_is_remembered_after_rescoring(library, people):
    videos, pairs = library
    services.pair_decide(pair_id=pairs["near"].pk, user=people["moderator"], action="not_duplicate")
    # re-scoring replaces the pair row; the verdict is keyed by the two videos
    Pair.objects.filter(pk=pairs["near"].pk).delete()
    make.pair(videos[0], videos[1], "near_duplicate", 0.9)
    assert [p.video_b_id for p in services.queue_pairs()] == [videos[2].pk]


def test_a_decision_is_atomic_and_audited(library, people):
    _, pairs = library
    decision = services.pair_decide(pair_id=pairs["near"].pk, user=people["moderator"], action="confirm")
    assert (
        decision.user == people["moderator"]
        and decision.pair_score == 0.86
        and decision.pair_label == "near_duplicate"
    )
    assert Verdict.objects.get().kind == "duplicate"
    with pytest.raises(services.DecisionRefused, match="already decided by moderator"):
        services.pair_decide(pair_id=pairs["near"].pk, user=people["admin"], action="not_duplicate")
    assert Decision.objects.count() == 1


def test_two_moderators_never_get_the_same_pair(library, people):
    first = services.next_pair(user=people["moderator"])
    second = services.next_pair(user=people["admin"])
    assert first is not None and second is not None and first != second
    with pytest.raises(services.DecisionRefused, match="is reviewing this pair"):
        services.pair_decide(pair_id=first.pk, user=people["admin"], action="confirm")


def test_an_expired_claim_frees_the_pair(library, people):
    first = services.next_pair(user=people["moderator"])
    Claim.objects.filter(pair=first).update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert services.next_pair(user=people["admin"]) == first


def test_merge_sets_the_canonical_video_of_the_group(library, people):
    videos, pairs = library
    services.pair_decide(
        pair_id=pairs["near"].pk, user=people["moderator"], action="merge", canonical_id=videos[1].pk
    )
    a, b = (Video.objects.get(pk=v.pk) for v in videos[:2])
    assert a.group_id == b.group_id and a.group.canonical_id == videos[1].pk


def test_merge_needs_a_copy_to_keep(library, people):
    _, pairs = library
    with pytest.raises(services.DecisionRefused, match="choose which"):
        services.pair_decide(
            pair_id=pairs["near"].pk, user=people["moderator"], action="merge", canonical_id=None
        )


def test_undo_takes_back_the_last_decision_and_leaves_a_trace(library, people):
    _, pairs = library
    services.pair_decide(pair_id=pairs["near"].pk, user=people["moderator"], action="not_duplicate")
    undo = services.decision_undo(user=people["moderator"])
    assert undo.action == "undo" and undo.undoes.action == "not_duplicate" and undo.undoes.undone_at
    assert not Verdict.objects.exists()
    assert pairs["near"] in services.queue_pairs()
    assert services.decision_undo(user=people["moderator"]) is None


def test_a_rejected_pair_never_joins_a_group(library, people):
    videos, pairs = library
    Pair.objects.filter(pk=pairs["near"].pk).update(label="exact", score=0.97)
    groups_refresh()
    assert Video.objects.get(pk=videos[0].pk).group_id == Video.objects.get(pk=videos[1].pk).group_id
    Verdict.objects.create(video_a=videos[0], video_b=videos[1], kind="not_duplicate")
    groups_refresh()
    assert Video.objects.get(pk=videos[0].pk).group_id != Video.objects.get(pk=videos[1].pk).group_id or (
        Video.objects.get(pk=videos[0].pk).group_id is None
    )


# ---- pages, per role


@pytest.mark.parametrize("url", ["/review/", "/review/next"])
def test_anonymous_users_are_sent_to_login(client, library, url):
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_outsiders_get_403_everywhere(client, library, people):
    client.force_login(people["outsider"])
    pair = library[1]["near"]
    for url in ["/review/", f"/review/pairs/{pair.pk}", f"/review/videos/{pair.video_a_id}/media"]:
        assert client.get(url).status_code == 403
    assert client.post(f"/review/pairs/{pair.pk}/decide", {"action": "confirm"}).status_code == 403


def test_viewers_see_but_cannot_decide(client, library, people):
    client.force_login(people["viewer"])
    pair = library[1]["near"]
    page = client.get(f"/review/pairs/{pair.pk}")
    assert page.status_code == 200 and b"Confirm duplicate" not in page.content
    assert client.post(f"/review/pairs/{pair.pk}/decide", {"action": "confirm"}).status_code == 403
    assert not Verdict.objects.exists()


def test_the_pair_page_explains_the_match(client, library, people):
    client.force_login(people["moderator"])
    pair = library[1]["near"]
    page = client.get(f"/review/pairs/{pair.pk}").content.decode()
    for text in (
        "Why they matched",
        "Visual",
        "Audio",
        "Metadata",
        "suggested keep",
        "Play in sync",
        "<kbd>c</kbd>",
    ):
        assert text in page
    assert 'class="better">1280×720' in page  # the better resolution is marked


def test_deciding_with_htmx_swaps_in_the_next_pair(client, library, people):
    client.force_login(people["moderator"])
    pairs = library[1]
    response = client.post(
        f"/review/pairs/{pairs['near'].pk}/decide", {"action": "confirm"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response["HX-Push-Url"] == f"/review/pairs/{pairs['similar'].pk}"
    assert b'id="pair-card"' in response.content and b"<html" not in response.content


def test_a_refused_decision_says_why(client, library, people):
    pairs = library[1]
    services.pair_decide(pair_id=pairs["near"].pk, user=people["admin"], action="confirm")
    client.force_login(people["moderator"])
    response = client.post(
        f"/review/pairs/{pairs['near'].pk}/decide", {"action": "not_duplicate"}, follow=True
    )
    assert b"already decided by admin" in response.content


def test_videos_are_served_with_range_support(client, library, people, clip):
    client.force_login(people["viewer"])
    video = library[0][0]
    size = clip.stat().st_size
    whole = client.get(f"/review/videos/{video.pk}/media")
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    part = client.get(f"/review/videos/{video.pk}/media", HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{size}"
    assert b"".join(part.streaming_content) == clip.read_bytes()[100:200]
    tail = client.get(f"/review/videos/{video.pk}/media", HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == clip.read_bytes()[-10:]
    assert client.get(f"/review/videos/{video.pk}/media", HTTP_RANGE=f"bytes={size}-").status_code == 416


def test_opening_a_pair_someone_else_holds_says_who(client, library, people):
    pair = services.next_pair(user=people["moderator"])
    client.force_login(people["admin"])
    page = client.get(f"/review/pairs/{pair.pk}").content.decode()
    assert '<p class="claimed">moderator is reviewing this pair right now' in page
    client.force_login(people["moderator"])  # the holder is not told about their own claim
    assert 'class="claimed"' not in client.get(f"/review/pairs/{pair.pk}").content.decode()


def test_a_refused_htmx_decision_answers_409_with_the_message_in_the_card(client, library, people):
    pair = services.next_pair(user=people["moderator"])
    client.force_login(people["admin"])
    response = client.post(f"/review/pairs/{pair.pk}/decide", {"action": "confirm"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    body = response.content.decode()
    assert '<li class="error">moderator is reviewing this pair right now</li>' in body
    assert body.lstrip().startswith(f"<title>Pair {pair.pk} · AstraDup</title>")
    assert not Decision.objects.exists()


def test_htmx_swaps_carry_the_title_of_the_pair_they_show(client, library, people):
    client.force_login(people["moderator"])
    pairs = library[1]
    response = client.post(
        f"/review/pairs/{pairs['near'].pk}/decide", {"action": "confirm"}, HTTP_HX_REQUEST="true"
    )
    assert (
        response.content.decode().lstrip().startswith(f"<title>Pair {pairs['similar'].pk} · AstraDup</title>")
    )
    page = client.get(f"/review/pairs/{pairs['similar'].pk}").content.decode()
    assert page.count("<title>") == 1  # the full page keeps its one title in <head>


def _identical_pair(videos):
    a, b = videos[0], videos[3]
    Video.objects.filter(pk__in=[a.pk, b.pk]).update(sha256="ab" * 32)
    return make.pair(
        a,
        b,
        "near_duplicate",  # shown in the queue as a moderator would meet it
        1.0,
        visual=1.0,
        audio=1.0,
        metadata=1.0,
        breakdown={"byte_identical": True, "metadata_parts": {"duration": 1.0}},
        segments={"a": [[0.0, 10.0]], "b": [[0.0, 10.0]], "coverage_a": 1.0, "coverage_b": 1.0},
    )


def test_a_byte_identical_pair_says_so_without_blank_numbers(client, library, people):
    pair = _identical_pair(library[0])
    client.force_login(people["moderator"])
    page = client.get(f"/review/pairs/{pair.pk}").content.decode()
    assert "Byte-identical files (same SHA-256)" in page
    for blank in ("similarity ,", " at  s", "at s", "offset  s", "offset s,", "speed ×", "MFCC </", "MFCC ,"):
        assert blank not in page, blank


def test_a_partial_pair_leaves_out_the_mfcc_it_does_not_have(client, library, people):
    videos, _ = library
    pair = make.pair(
        videos[1],
        videos[2],
        "partial",
        0.8,
        visual=0.8,
        audio=0.7,
        metadata=0.4,
        breakdown={
            "matched_quality": 0.93,
            "matched_frames": 12,
            "phash_close_frames": 9,
            "fingerprint": 0.71,
            "fingerprint_offset": 3.5,
            "metadata_parts": {},
        },
        segments={
            "a": [[2.0, 8.0]],
            "b": [[0.0, 6.0]],
            "coverage_a": 0.6,
            "coverage_b": 1.0,
            "offset": -2.0,
            "speed": 1.0,
        },
    )
    client.force_login(people["moderator"])
    page = client.get(f"/review/pairs/{pair.pk}").content.decode()
    assert "aligned-frame similarity 0.93, 12 frames matched, 9 with near-identical pHash" in page
    assert "Chromaprint 0.71 at 3.5 s offset" in page and "MFCC" not in page
    assert "A 2–8 s (0.6 of A) ↔ B 0–6 s (1 of B), offset -2 s, speed 1×" in page


def test_the_queue_counts_agree_with_the_list_after_a_skip(client, library, people):
    _, pairs = library
    client.force_login(people["moderator"])
    services.pair_decide(pair_id=pairs["near"].pk, user=people["moderator"], action="skip")
    services.pair_claim(pair=pairs["similar"], user=people["admin"])
    page = client.get("/review/").content.decode()
    assert "Nothing to review." in page
    assert "near_duplicate 0" in page and "similar 0" in page
    assert (
        "Not in your queue: 1 you skipped (back within the hour), 1 being reviewed by someone else." in page
    )
    assert services.queue_counts() == {"near_duplicate": 1, "partial": 0, "similar": 1}  # for everyone


def test_keyframe_strips_reserve_the_size_of_their_images(client, library, people):
    videos, pairs = library
    for video in videos[:2]:
        make.frames(video, 3)
    Video.objects.filter(pk=videos[1].pk).update(sar=4 / 3)  # anamorphic: shown wider
    client.force_login(people["moderator"])
    page = client.get(f"/review/pairs/{pairs['near'].pk}").content.decode()
    images = [tag for tag in page.split("<img")[1:] if "/frames/" in tag.split(">")[0]]
    assert len(images) == 6
    assert all('height="54"' in tag.split(">")[0] for tag in images)
    assert sum('width="96"' in tag.split(">")[0] for tag in images) == 3  # 640×360 → 96×54
    assert sum('width="128"' in tag.split(">")[0] for tag in images) == 3  # 1280×720, sar 4/3


def test_pages_link_an_icon_and_favicon_ico_leads_to_it(client, people):
    from django.contrib.staticfiles import finders

    client.force_login(people["moderator"])
    assert '<link rel="icon" href="/static/favicon.svg"' in client.get("/review/").content.decode()
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
    assert finders.find("favicon.svg")
