"""The dashboard and the library's status bar in a real browser (fixtures from test_browser)."""

import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from dedup.models import DuplicateGroup, Pair, Video
from review import services

from . import test_browser
from .test_browser import CHROMIUM, _log_in, _shot

browser_page = test_browser.browser_page  # the fixture, shared

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def _watch_policy(page) -> list[str]:
    """Console errors, where Chromium reports what the Content-Security-Policy refused."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _until(page, check, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        page.wait_for_timeout(200)


def test_the_dashboard_draws_its_plots_without_a_policy_violation(live_server, browser_page):
    videos = [
        Video.objects.create(
            path=f"/lib/{i}.mp4", rel_path=f"{i}.mp4", file_name=f"{i}.mp4", status=st, size=size
        )
        for i, (st, size) in enumerate(
            [("ready", 4_000_000), ("ready", 1_000_000), ("pending", None), ("failed", 10)]
        )
    ]
    maria = User.objects.create_user("maria", password="review-me-123")
    maria.groups.add(Group.objects.get_or_create(name="moderator")[0])
    pair = Pair.objects.create(video_a=videos[0], video_b=videos[1], label="near_duplicate", score=0.86)
    services.pair_decide(pair_id=pair.pk, user=maria, action="confirm")
    DuplicateGroup.objects.all().delete()
    group = DuplicateGroup.objects.create(suggested_keep=videos[0])
    Video.objects.filter(pk__in=[videos[0].pk, videos[1].pk]).update(group=group)
    page = browser_page
    errors = _watch_policy(page)
    _log_in(page, f"{live_server.url}/review/dashboard", "maria")
    assert page.locator("svg.chart").count() == 4
    # the bars are drawn: the status chart's, with their height, and maria's day
    assert page.locator("#dash-videos svg rect.bar").count() == 4
    box = page.locator("#dash-videos svg rect.status-ready").bounding_box()
    assert box is not None and box["height"] > 20
    assert page.locator("#dash-moderators svg rect.bar title").first.text_content() == "maria: 1"
    assert "976.6 KB" in page.inner_text("#dash-storage").replace(
        "\xa0", " "
    )  # the copy the suggested one makes redundant
    _shot(page, "dashboard")
    page.click("header nav >> text=Library")
    page.wait_for_selector("#ingest-status")
    assert not errors, errors


def test_the_library_status_bar_follows_the_workers(live_server, browser_page):
    waiting = Video.objects.create(path="/lib/w.mp4", rel_path="w.mp4", file_name="w.mp4")
    maria = User.objects.create_user("maria", password="review-me-123")
    maria.groups.add(Group.objects.get_or_create(name="viewer")[0])
    page = browser_page
    errors = _watch_policy(page)
    _log_in(page, f"{live_server.url}/", "maria")
    bar = page.locator("#ingest-status")
    assert "queued 1" in bar.inner_text()
    assert "No worker is running: start manage.py qcluster" in page.inner_text(".no-worker")
    # a worker takes it and finishes: the bar (polled) says so without a reload
    Video.objects.filter(pk=waiting.pk).update(status="ready", finished_at=timezone.now())
    _until(page, lambda: "ready 1" in bar.inner_text(), "the status bar did not refresh")
    assert "1 ready in the last minute" in bar.inner_text()
    assert page.locator(".no-worker").count() == 0
    assert not errors, errors
