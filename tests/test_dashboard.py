"""The team lead's dashboard: numbers on known data, bounded queries, who may see it."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dedup.models import DuplicateGroup, Pair, Verdict, Video
from review import services
from review.dashboard import dashboard_summarize
from review.models import Decision

from . import factories as make

pytestmark = pytest.mark.django_db
MB = 1_000_000


def _video(name: str, *, status: str = "ready", size: int | None = None) -> Video:
    return make.video(name, status=status, size=size)


def _pair(a: Video, b: Video, label: str, *, age: timedelta = timedelta(0), score: float = 0.8) -> Pair:
    pair = make.pair(a, b, label, score, visual=score, metadata=0.9)
    Pair.objects.filter(pk=pair.pk).update(created_at=timezone.now() - age)
    return pair


def _decide(pair: Pair, user: User, action: str, *, ago: timedelta = timedelta(0)) -> Decision:
    decision = services.pair_decide(pair_id=pair.pk, user=user, action=action)
    Decision.objects.filter(pk=decision.pk).update(created_at=timezone.now() - ago)
    return decision


@pytest.fixture
def known(db):
    """Two groups (one with a canonical chosen), a queue of three classes at three ages, and the
    decisions of two moderators over three days."""
    a, b, c = (_video(n, size=size * MB) for n, size in (("a.mp4", 100), ("b.mp4", 30), ("c.mp4", 20)))
    d, e = _video("d.mp4", size=10 * MB), _video("e.mp4", size=5 * MB)
    _video("new.mp4", status="pending")
    _video("busy.mp4", status="processing")
    _video("bad.mp4", status="failed")
    others = [_video(f"o{i}.mp4", size=MB) for i in range(8)]
    maria, bob = make.user("maria", "moderator"), make.user("bob", "moderator")
    # the queue: near duplicates of today, a partial of three days, a similar pair of ten days
    _pair(others[0], others[1], "near_duplicate")
    _pair(others[0], others[2], "near_duplicate")
    _pair(others[1], others[2], "partial", age=timedelta(days=3))
    _pair(others[3], others[4], "similar", age=timedelta(days=10))
    _pair(a, b, "exact", score=1.0)  # never queued
    # decided: out of the queue, into the per-day and per-moderator numbers
    decided = [_pair(others[5], others[i], "near_duplicate") for i in (6, 7)]
    decided += [_pair(others[6], others[7], "near_duplicate"), _pair(others[3], others[5], "similar")]
    _decide(decided[0], maria, "confirm")
    _decide(decided[1], maria, "confirm")
    _decide(decided[2], maria, "not_duplicate", ago=timedelta(days=1))
    skipped = _pair(others[4], others[6], "similar")
    _decide(skipped, maria, "skip")
    _decide(decided[3], bob, "not_duplicate", ago=timedelta(days=2))
    undone = _pair(others[4], others[7], "similar", age=timedelta(days=30))
    _decide(undone, bob, "confirm")
    services.decision_undo(user=bob)  # back in the queue, older than four weeks
    assert not Verdict.objects.filter(video_a=undone.video_a, video_b=undone.video_b).exists()
    # the groups last: decisions recompute groups from the pairs
    DuplicateGroup.objects.all().delete()
    chosen = DuplicateGroup.objects.create(canonical=a, suggested_keep=b)
    suggested = DuplicateGroup.objects.create(suggested_keep=d)
    Video.objects.filter(pk__in=[a.pk, b.pk, c.pk]).update(group=chosen)
    Video.objects.filter(pk__in=[d.pk, e.pk]).update(group=suggested)
    return {"maria": maria, "bob": bob}


def test_the_dashboard_counts_known_data(known):
    board = dashboard_summarize()
    videos = board.videos
    assert (videos.queued, videos.processing, videos.ready, videos.failed) == (1, 1, 13, 1)
    assert board.queue == {
        "near_duplicate": {"under a day": 2, "1–7 days": 0, "1–4 weeks": 0, "older": 0},
        "partial": {"under a day": 0, "1–7 days": 1, "1–4 weeks": 0, "older": 0},
        # the skipped pair is back for everyone else; the undone one waits again
        "similar": {"under a day": 1, "1–7 days": 0, "1–4 weeks": 1, "older": 1},
    }
    today = timezone.localdate()
    per_day = dict(board.per_day)
    assert len(board.per_day) == 14 and board.per_day[-1][0] == today
    assert per_day[today] == 2 and per_day[today - timedelta(days=1)] == 1
    assert per_day[today - timedelta(days=2)] == 1 and sum(per_day.values()) == 4
    assert board.per_moderator == [
        {"username": "maria", "decided": 3, "skipped": 1, "undone": 0},
        {"username": "bob", "decided": 1, "skipped": 0, "undone": 1},
    ]
    storage = board.storage
    # group 1 keeps the chosen a (b and c go), group 2 the suggested d (e goes)
    assert (storage.groups, storage.copies, storage.undecided_groups) == (2, 3, 1)
    assert storage.freeable == 55 * MB and storage.freeable_chosen == 50 * MB


def test_the_dashboard_page_shows_the_numbers_and_plots(client, known):
    client.force_login(make.user("vera", "viewer"))
    response = client.get("/review/dashboard")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") == 4
    assert "52.5\xa0MB" in html  # 55,000,000 bytes, as Django writes sizes (binary units)
    assert "videos by status: queued 1, processing 1, ready 13, failed 1" in html
    assert "<title>maria: 3</title>" in html and "<title>similar, older: 1</title>" in html
    assert 'href="/review/dashboard"' in html  # in the navigation
    assert "style=" not in html  # the Content-Security-Policy allows no inline style


def test_outsiders_cannot_see_the_dashboard(client, known):
    client.force_login(make.user("nobody", None))
    assert client.get("/review/dashboard").status_code == 403
    client.logout()
    assert client.get("/review/dashboard").status_code == 302


def _fill(n: int, users: list[User]) -> None:
    """n videos, n/2 pairs, n/4 decisions by the users over five days, n/10 groups: in bulk."""
    groups = DuplicateGroup.objects.bulk_create([DuplicateGroup() for _ in range(n // 10)])
    videos = Video.objects.bulk_create(
        [
            Video(
                path=f"/bulk/{i}.mp4",
                rel_path=f"{i}.mp4",
                file_name=f"{i}.mp4",
                status=("ready", "pending", "failed", "processing")[i % 4],
                size=i * 1000,
                group=groups[i % len(groups)] if i < len(groups) * 3 else None,
            )
            for i in range(n)
        ]
    )
    for i, group in enumerate(groups):
        DuplicateGroup.objects.filter(pk=group.pk).update(
            suggested_keep=videos[i], canonical=videos[i] if i % 2 else None
        )
    pairs = Pair.objects.bulk_create(
        [
            Pair(
                video_a=videos[i],
                video_b=videos[i + 1],
                label=("near_duplicate", "partial", "similar")[i % 3],
                score=0.8,
            )
            for i in range(0, n - 1, 2)
        ]
    )
    decisions = Decision.objects.bulk_create(
        [
            Decision(
                pair=p,
                video_a_id=p.video_a_id,
                video_b_id=p.video_b_id,
                action=("confirm", "not_duplicate", "skip", "merge")[i % 4],
                user=users[i % len(users)],
            )
            for i, p in enumerate(pairs[: n // 4])
        ]
    )
    now = timezone.now()
    for days in range(5):
        Decision.objects.filter(pk__in=[d.pk for d in decisions[days::5]]).update(
            created_at=now - timedelta(days=days)
        )
    Pair.objects.filter(pk__in=[p.pk for p in pairs[::7]]).update(created_at=now - timedelta(days=9))


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/review/dashboard").status_code == 200
    return len(queries)


def test_the_dashboard_costs_the_same_few_queries_for_any_number_of_rows(client):
    client.force_login(make.user("lead", "viewer"))
    users = [make.user(f"m{i}", "moderator") for i in range(4)]
    _fill(20, users)
    few = _queries(client)
    Video.objects.all().delete()
    DuplicateGroup.objects.all().delete()
    _fill(400, users)
    assert Decision.objects.count() == 100 and Pair.objects.count() == 200
    many = _queries(client)
    assert many == few, (few, many)
    assert many <= 12, many
