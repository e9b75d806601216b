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
# the longest a calibration job is waited for, as the page shows it: a deadline, not an expected time
CALIBRATION_WAIT_MS = 600_000
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
    page.set_viewport_size({"width": 1366, "height": 768})  # the screenshots' size: a common laptop
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
    if os.environ.get("ASTRADUP_SCREENSHOTS"):  # the picture with its keyframes and both frames shown
        page.evaluate("document.querySelectorAll('.strip img').forEach(i => { i.loading = 'eager'; })")
        _until(
            page,
            lambda: page.evaluate(
                "[...document.querySelectorAll('.strip img')].every(i => i.complete)"
                " && [...document.querySelectorAll('video')].every(v => v.readyState >= 2 && !v.seeking)"
            ),
            "the pair page did not finish loading",
            seconds=60,
        )
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


def test_an_admin_calibrates_and_applies_in_the_browser(
    live_server, browser_page, settings, tmp_path, monkeypatch
):
    from dedup.models import Job, ScoringConfig
    from review import services

    from .calibration_data import library, synthetic_pairs
    from .test_workers import _cluster

    settings.ASTRADUP = {**settings.ASTRADUP, "CALIBRATION_MIN_LABELS": 30}
    monkeypatch.setenv("ASTRADUP_CALIBRATION_MIN_LABELS", "30")  # the worker's setting too
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
    # the request starts a job and answers at once (Playwright's default wait); a worker cluster
    # runs it, and the page, polling the job, shows the report when it is done
    page.click("text=Calibrate from the labels")
    job = Job.objects.get(kind=Job.Kind.CALIBRATION)
    page.wait_for_selector(f"text=Calibration job #{job.pk} is queued")
    cluster = _cluster(tmp_path, 1)
    try:
        page.wait_for_selector("svg.chart polyline", timeout=CALIBRATION_WAIT_MS)
        assert "cross-validated" in page.inner_text("main")
        assert page.locator("#calibration-latest .job").count() == 0  # done: the report, no job line
        assert Job.objects.get(pk=job.pk).status == Job.Status.DONE
        _shot(page, "calibration")
        page.click("text=Apply: new config version")
        page.wait_for_selector("text=pairs are being re-scored")
        assert ScoringConfig.active().based_on == default
        page.click(f"form[action='/review/configs/{default.pk}/restore'] button")
        page.wait_for_selector(f"text=Config #{default.pk} is active again")
        assert ScoringConfig.active() == default
    finally:
        cluster.terminate()
        cluster.wait(timeout=60)


# ---- the moderator's-day bugs of issue 27


@pytest.fixture
def light_pairs(tmp_path, clip):
    """Three pairs over copies of one clip, stored as the matcher would (no extraction: quick)."""
    import shutil

    from dedup.models import ScoringConfig

    videos = []
    for i, width in enumerate((320, 640, 480, 240)):
        path = shutil.copy(clip, tmp_path / f"v{i}.mp4")
        videos.append(
            Video.objects.create(
                path=str(path),
                root=str(tmp_path),
                rel_path=f"v{i}.mp4",
                file_name=f"v{i}.mp4",
                status="ready",
                width=width,
                height=width * 3 // 4,
                duration=6.0,
                size=1000,
                fps=25.0,
                video_codec="h264",
            )
        )
    segments = {
        "a": [[0.0, 6.0]],
        "b": [[0.0, 6.0]],
        "coverage_a": 1.0,
        "coverage_b": 1.0,
        "offset": 0.0,
        "speed": 1.0,
    }
    pairs = [
        Pair.objects.create(
            video_a=videos[0],
            video_b=other,
            score=score,
            label="near_duplicate",
            visual=0.9,
            metadata=0.9,
            segments=segments,
            config=ScoringConfig.active(),
        )
        for other, score in zip(videos[1:], (0.86, 0.85, 0.84), strict=True)
    ]
    for name, role in (("maria", "moderator"), ("bob", "moderator")):
        User.objects.create_user(name, password="review-me-123").groups.add(
            Group.objects.get_or_create(name=role)[0]
        )
    return pairs


def _log_in(page, url: str, name: str, password: str = "review-me-123") -> None:
    page.goto(url)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("[type=submit]")
    page.wait_for_url(url)


def _until(page, check, what: str, seconds: float = 20) -> None:
    # polled from Python: wait_for_function evaluates a string in the page, which the CSP refuses
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        page.wait_for_timeout(100)


def test_a_refused_decision_shows_who_holds_the_pair(live_server, browser_page, light_pairs):
    from review import services
    from review.models import Decision

    pair = light_pairs[0]
    services.pair_claim(pair=pair, user=User.objects.get(username="maria"))
    page = browser_page
    _log_in(page, f"{live_server.url}/review/pairs/{pair.pk}", "bob")
    assert "maria is reviewing this pair right now" in page.inner_text("p.claimed")
    page.keyboard.press("c")  # refused with 409: the message must reach the screen
    page.wait_for_selector("#pair-card ul.messages li.error", timeout=20000)
    assert page.inner_text("#pair-card ul.messages") == "maria is reviewing this pair right now"
    assert not Decision.objects.exists()


def test_previous_shows_the_pair_as_it_stands_now_with_its_title(live_server, browser_page, light_pairs):
    first, second = light_pairs[0], light_pairs[1]
    page = browser_page
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    _log_in(page, f"{live_server.url}/review/pairs/{first.pk}", "bob")
    assert page.title() == f"Pair {first.pk} · AstraDup"
    undo = page.locator("button[data-key=u]")
    confirm = page.locator("button[data-key=c]")
    assert undo.is_disabled()
    # a disabled button must look it: faded, against the full-strength enabled ones
    opacity = page.evaluate(
        "([a, b]) => [getComputedStyle(a).opacity, getComputedStyle(b).opacity]",
        [undo.element_handle(), confirm.element_handle()],
    )
    assert float(opacity[0]) < 0.7 and float(opacity[1]) == 1.0

    page.keyboard.press("c")
    page.wait_for_url(lambda url: url.endswith(f"/review/pairs/{second.pk}"))
    _until(
        page, lambda: page.title() == f"Pair {second.pk} · AstraDup", "the tab title did not follow the swap"
    )
    assert not page.locator("button[data-key=u]").is_disabled()

    page.keyboard.press("p")  # back to the pair just decided: it must say so, not offer the buttons again
    page.wait_for_url(lambda url: url.endswith(f"/review/pairs/{first.pk}"))
    _until(page, lambda: page.locator("#pair-card .verdict").count() == 1, "the decided pair came back stale")
    assert page.locator("#pair-card form.actions").count() == 0
    assert "Decided by bob" in page.inner_text("#pair-card .verdict")
    assert page.title() == f"Pair {first.pk} · AstraDup"
    assert not missing, missing  # no favicon (or other) 404 on the way


def test_an_admin_edits_thresholds_in_django_admin(live_server, browser_page):
    from dedup.models import ScoringConfig

    old = ScoringConfig.active()
    ada = User.objects.create_user("ada", password="calibrate-me-123", is_staff=True)
    ada.groups.add(Group.objects.get(name="admin"))  # a role member, not a superuser
    page = browser_page
    change = f"{live_server.url}/admin/dedup/scoringconfig/{old.pk}/change/"
    _log_in(page, change, "ada", "calibrate-me-123")
    assert page.locator("a.deletelink").count() == 0  # the active config is replaced, never deleted
    page.fill("#id_near_threshold", "0.87")
    page.click("input[name=_save]")
    page.wait_for_selector("text=now active")
    new = ScoringConfig.active()
    old.refresh_from_db()
    assert new.near_threshold == 0.87 and new.based_on == old and old.near_threshold == 0.85
