"""The review queue, decisions, claims, undo and the pair page, per role."""

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from dedup.models import Pair, ScoringConfig, Video
from dedup.services import groups_refresh
from review import services
from review.models import Claim, Decision, Verdict

pytestmark = pytest.mark.django_db


def _user(name: str, role: str | None) -> User:
    user = User.objects.create_user(name, password="pw")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def people():
    return {
        role: _user(role, None if role == "outsider" else role)
        for role in ("moderator", "admin", "viewer", "outsider")
    }


@pytest.fixture
def library(clip):
    config = ScoringConfig.active()
    videos = [
        Video.objects.create(
            path=str(clip) if i == 0 else f"/lib/v{i}.mp4",
            root=str(clip.parent) if i == 0 else "/lib",  # the media view serves only inside it
            rel_path=f"v{i}.mp4",
            file_name=f"v{i}.mp4",
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
    seg = {
        "a": [[0.0, 10.0]],
        "b": [[0.0, 10.0]],
        "coverage_a": 1.0,
        "coverage_b": 1.0,
        "offset": 0.0,
        "speed": 1.0,
    }
    pairs = {
        "near": Pair.objects.create(
            video_a=a,
            video_b=b,
            score=0.86,
            label="near_duplicate",
            visual=0.9,
            audio=0.8,
            metadata=0.9,
            segments=seg,
            config=config,
        ),
        "similar": Pair.objects.create(
            video_a=a,
            video_b=c,
            score=0.72,
            label="similar",
            visual=0.7,
            metadata=0.5,
            segments=seg,
            config=config,
        ),
        "exact": Pair.objects.create(
            video_a=c, video_b=d, score=0.99, label="exact", segments=seg, config=config
        ),
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
    Pair.objects.create(video_a=videos[0], video_b=videos[1], score=0.9, label="near_duplicate")
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
