"""A moderator's session in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium).

Screenshots go to $ASTRADUP_SCREENSHOTS when set (docs/screenshots is made this way).
"""

import os
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from dedup.models import Pair, Video

from .media import make_clip, transcode

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)"
    ),
]


@pytest.fixture
def browser_page(monkeypatch):
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test are still sync
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()
        # ORM calls made while Playwright runs (its event loop set in this thread) got a
        # connection of their own that pytest-django does not close; left open, it kept the test
        # database from being dropped at the end of the run ("being accessed by other users")
        connections.close_all()


def _shot(page, name: str) -> None:
    folder = os.environ.get("ASTRADUP_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.fixture
def review_data(tmp_path):
    """Three clips and a re-encoded copy of each, really extracted and matched; the copies are then
    put in the queue (as near duplicates) for the moderator."""
    from django.core.management import call_command

    clips = [
        make_clip(tmp_path / "intro.mp4", source="mandelbrot", duration=6, size=(320, 240), noise_seed=1),
        make_clip(tmp_path / "life.mp4", source="life", duration=6, size=(320, 240), noise_seed=2),
        make_clip(tmp_path / "cells.mp4", source="cells", duration=6, size=(320, 240), noise_seed=3),
    ]
    for c in clips:
        transcode(c, tmp_path / f"copy-{c.name}", vf="scale=240:180", crf=32)
    call_command("ingest", str(tmp_path), "--sync", "--workers", "1")
    pairs = list(Pair.objects.filter(label__in=Pair.DUPLICATE_LABELS).order_by("pk"))
    assert len(pairs) == 3
    for pair, score in zip(pairs, [0.86, 0.84, 0.80], strict=True):
        Pair.objects.filter(pk=pair.pk).update(label="near_duplicate", score=score)
    moderator = User.objects.create_user("maria", password="review-me-123")
    moderator.groups.add(Group.objects.get_or_create(name="moderator")[0])
    return [Video.objects.get(file_name=c.name) for c in clips]


def test_a_moderator_reviews_with_the_keyboard(live_server, browser_page, review_data):
    page = browser_page
    page.goto(f"{live_server.url}/review/")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", "review-me-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/review/")
    assert "near_duplicate 3" in page.inner_text(".counts")
    _shot(page, "queue")

    page.click("text=Start reviewing")
    page.wait_for_selector("#pair-card")
    first_url = page.url
    # both players load and play from the matched segment
    page.click("#play-sync")
    # polled from here: wait_for_function evaluates its predicate as a string in the page, which
    # the Content-Security-Policy refuses (no 'unsafe-eval'); page.evaluate is not page script
    deadline = time.monotonic() + 15
    while not page.evaluate(
        "document.getElementById('player-a').currentTime > 0 && document.getElementById('player-b').currentTime > 0"
    ):
        assert time.monotonic() < deadline, "the players did not start"
        page.wait_for_timeout(100)
    assert "Why they matched" in page.inner_text("#pair-card")
    page.evaluate("document.querySelectorAll('video').forEach(v => v.pause())")
    _shot(page, "pair")

    # URL waits in Python, for the same reason
    page.keyboard.press("c")  # confirm: the next pair swaps in without a page load
    page.wait_for_url(lambda url: url != first_url)
    second_url = page.url
    assert Pair.objects.filter(decisions__action="confirm").count() == 1

    page.keyboard.press("u")  # undo: back to the pair just decided
    page.wait_for_url(first_url)
    assert Pair.objects.filter(decisions__action="undo").count() == 1

    page.keyboard.press("m")  # merge, keeping the suggested (larger) copy
    page.wait_for_url(lambda url: url != first_url)
    first = Pair.objects.get(pk=int(first_url.rstrip("/").rsplit("/", 1)[1]))
    keep = max((first.video_a, first.video_b), key=lambda v: v.width)  # the suggested copy: higher resolution
    merged = Video.objects.get(pk=keep.pk)
    assert merged.group is not None and merged.group.canonical_id == keep.pk

    page.keyboard.press("n")
    page.wait_for_url(lambda url: url != second_url)
    page.goto(f"{live_server.url}/review/groups/{merged.group_id}")
    assert "canonical" in page.inner_text("main")
    _shot(page, "group")


def test_an_admin_calibrates_and_applies_in_the_browser(live_server, browser_page, settings):
    from dedup.models import ScoringConfig
    from review import services

    from .calibration_data import library, synthetic_pairs

    settings.ASTRADUP = {**settings.ASTRADUP, "CALIBRATION_MIN_LABELS": 30}
    moderator = User.objects.create_user("maria", password="review-me-123")
    moderator.groups.add(Group.objects.get_or_create(name="moderator")[0])
    admin = User.objects.create_user("ada", password="calibrate-me-123")
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    for pair, truth in library(synthetic_pairs(240, seed=4))[:160]:
        services.pair_decide(pair_id=pair.pk, user=moderator, action="confirm" if truth else "not_duplicate")
    default = ScoringConfig.active()

    page = browser_page
    page.goto(f"{live_server.url}/review/calibration")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "calibrate-me-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/review/calibration")
    page.click("text=Calibrate from the labels")
    page.wait_for_selector("svg.chart polyline")
    assert "cross-validated" in page.inner_text("main")
    _shot(page, "calibration")
    page.click("text=Apply: new config version")
    page.wait_for_selector("text=pairs are being re-scored")
    assert ScoringConfig.active().based_on == default
    page.click(f"form[action='/review/configs/{default.pk}/restore'] button")
    page.wait_for_selector(f"text=Config #{default.pk} is active again")
    assert ScoringConfig.active() == default
