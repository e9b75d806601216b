"""The decision screen of issue 27 in a real browser: one 1366×768 viewport, players on the aligned
line, keyboard-first with shortcuts that can be turned off. Playwright drives Debian's Chromium."""

import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from dedup.models import Frame, Pair, ScoringConfig, Video
from review.models import Decision

from . import test_browser
from .media import make_clip, transcode
from .test_browser import CHROMIUM, _log_in, _until

browser_page = test_browser.browser_page  # the same Chromium, set up once in test_browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

SPEED = 0.8  # stored as the matcher does: t_b = speed · t_a + offset, so B plays A at 1.25×


def _video(path, root, duration: float, frames: list[float]) -> Video:
    video = Video.objects.create(
        path=str(path),
        root=str(root),
        rel_path=path.name,
        file_name=path.name,
        status="ready",
        width=320,
        height=240,
        duration=duration,
        size=path.stat().st_size,
        fps=25.0,
        video_codec="h264",
    )
    Frame.objects.bulk_create(
        Frame(
            video=video,
            idx=i,
            t=t,
            phash=0,
            phash_b0=0,
            phash_b1=0,
            phash_b2=0,
            phash_b3=0,
            embedding=[0.0] * 8,
        )
        for i, t in enumerate(frames)
    )
    return video


@pytest.fixture
def speed_pairs(tmp_path):
    """A 10 s clip, B: the same clip sped up to 8 s (a pair stored at speed 0.8), and two plain
    copies of A, so that a decision has a next pair to swap in."""
    a_path = make_clip(tmp_path / "a.mp4", source="mandelbrot", duration=10, size=(320, 240), tone=None)
    b_path = transcode(a_path, tmp_path / "b.mp4", vf=f"setpts={SPEED}*PTS", audio=False)
    a = _video(a_path, tmp_path, 10.0, [float(i) for i in range(10)])
    b = _video(b_path, tmp_path, 8.0, [SPEED * i for i in range(10)])
    copies = [
        _video(Path(shutil.copy(a_path, tmp_path / f"c{i}.mp4")), tmp_path, 10.0, [0.0, 5.0]) for i in (1, 2)
    ]
    config = ScoringConfig.active()

    def pair(other, speed, score):
        return Pair.objects.create(
            video_a=a,
            video_b=other,
            score=score,
            label="near_duplicate",
            visual=0.9,
            audio=None,
            metadata=0.9,
            breakdown={"matched_quality": 0.93, "matched_frames": 8, "audio_missing": True},
            segments={
                "a": [[0.0, 10.0]],
                "b": [[0.0, round(10.0 * speed, 2)]],
                "coverage_a": 1.0,
                "coverage_b": 1.0,
                "offset": 0.0,
                "speed": speed,
            },
            config=config,
        )

    pairs = [pair(b, SPEED, 0.86), pair(copies[0], 1.0, 0.85), pair(copies[1], 1.0, 0.84)]
    User.objects.create_user("maria", password="review-me-123").groups.add(
        Group.objects.get_or_create(name="moderator")[0]
    )
    return pairs


def _box_bottom(page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box["y"] + box["height"]


def test_the_players_keyframes_and_decision_bar_fit_one_1366x768_screen(
    live_server, browser_page, speed_pairs
):
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 768})
    first = speed_pairs[0]
    _log_in(page, f"{live_server.url}/review/pairs/{first.pk}", "maria")
    assert page.locator("#player-a").bounding_box()["y"] >= 0
    assert _box_bottom(page, ".strips") <= 768
    for bar in ("#pair-card form.actions", "#pair-card form.undo"):  # the decision bar, Undo and Previous
        assert _box_bottom(page, bar) <= 768, bar
    # the one-liner at the top says why, in words; the numbers are one click away
    assert (
        page.inner_text("#pair-card .why")
        == "B is A at 1.25× speed, covers 100 % of A, no comparable audio on one side"
    )
    assert not page.locator("details.numbers table.breakdown").is_visible()

    page.click("details.numbers summary")  # the numbers open below: the page grows, the reader scrolls
    assert page.locator("details.numbers table.breakdown").is_visible()
    page.mouse.wheel(0, 2000)
    _until(page, lambda: page.evaluate("window.scrollY") > 0, "the page did not scroll")
    page.keyboard.press("c")
    page.wait_for_url(lambda url: not url.endswith(f"/review/pairs/{first.pk}"))
    # the next pair is read from the top, under a line saying what was done and how to undo it
    _until(page, lambda: page.evaluate("window.scrollY") == 0, "the swap left the page scrolled")
    assert (
        page.inner_text("#pair-card ul.messages")
        == f"Pair {first.pk} confirmed as a duplicate. Press u to undo."
    )
    assert _box_bottom(page, "#pair-card form.undo") <= 768
    assert Decision.objects.filter(pair=first, action="confirm").exists()


def _clock(page) -> dict:
    return page.evaluate(
        "(() => { const a = document.getElementById('player-a'), b = document.getElementById('player-b');"
        " return {a: a.currentTime, b: b.currentTime, pa: a.paused, pb: b.paused, rate: b.playbackRate}; })()"
    )


def test_both_players_stay_on_the_aligned_line_at_a_matched_speed_of_0_8(
    live_server, browser_page, speed_pairs
):
    page = browser_page
    pair = speed_pairs[0]
    _log_in(page, f"{live_server.url}/review/pairs/{pair.pk}", "maria")
    page.keyboard.press(" ")  # play in sync from the matched segment
    _until(page, lambda: _clock(page)["a"] >= 3.0, "A did not play 3 s", seconds=60)
    errors = []
    for _ in range(5):  # a few readings a moment apart: B stays where A's moment is, at 0.8× A's rate
        now = _clock(page)
        if now["pa"] or now["a"] >= 9.5:
            break
        errors.append(abs(now["b"] - SPEED * now["a"]))
        page.wait_for_timeout(250)
    assert errors, "A stopped before it could be compared"
    # at rate 1, B would be 0.2 s off per second of A: ≥ 0.6 s by now
    assert sorted(errors)[len(errors) // 2] < 0.25 and max(errors) < 0.5, errors

    page.keyboard.press(" ")  # space pauses both
    _until(page, lambda: _clock(page)["pa"] and _clock(page)["pb"], "space did not pause both")
    before = _clock(page)["a"]
    page.keyboard.press("ArrowRight")  # one of A's samples (1 s apart) forward, B along the line
    _until(
        page,
        lambda: abs(_clock(page)["a"] - min(before + 1.0, 10.0)) < 0.05,
        "→ did not step A by one sample",
    )
    now = _clock(page)
    assert abs(now["b"] - SPEED * now["a"]) < 0.05
    page.keyboard.press("ArrowLeft")
    _until(page, lambda: abs(_clock(page)["a"] - before) < 0.05, "← did not step back")

    # a keyframe of B seeks both to its moment
    b_frame = Frame.objects.get(video=pair.video_b, idx=5)  # B at 4.0 s = A at 5.0 s
    page.click(f"#fb-{b_frame.idx}")
    _until(
        page,
        lambda: abs(_clock(page)["a"] - 5.0) < 0.05 and abs(_clock(page)["b"] - 4.0) < 0.05,
        "a keyframe did not seek both",
    )


def test_shortcuts_work_after_a_radio_show_with_question_mark_and_can_be_turned_off(
    live_server, browser_page, speed_pairs
):
    page = browser_page
    first = speed_pairs[0]
    _log_in(page, f"{live_server.url}/review/pairs/{first.pk}", "maria")
    page.check(f"input[name=canonical][value='{first.video_b_id}']")  # focus is on the radio now
    page.keyboard.press("c")
    page.wait_for_url(lambda url: not url.endswith(f"/review/pairs/{first.pk}"))
    assert Decision.objects.filter(pair=first, action="confirm").exists()

    page.keyboard.press("?")
    help_ = page.locator("#shortcuts-help")
    _until(page, help_.is_visible, "? did not show the shortcuts")
    assert "step both videos by one sample" in help_.inner_text()
    page.uncheck("#shortcuts-on")  # WCAG 2.1.4: single-key shortcuts can be turned off
    page.click("#shortcuts-help button")
    _until(page, lambda: not help_.is_visible(), "the help did not close")

    shown = page.url
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.keyboard.press("c")
    page.keyboard.press("?")
    page.reload()  # remembered across pages: the switch lives in localStorage
    assert page.url == shown and not posts
    assert Decision.objects.filter(action="confirm").count() == 1
    assert page.evaluate("document.documentElement.dataset.shortcuts") == "off"
    assert not page.locator("#pair-card button[data-key=c] kbd").is_visible()
    page.click(".shortcuts-open")  # the button still opens the list, to turn them back on
    _until(page, help_.is_visible, "the button did not show the shortcuts")
    assert not page.is_checked("#shortcuts-on")
    page.check("#shortcuts-on")
    page.click("#shortcuts-help button")
    page.keyboard.press("s")
    page.wait_for_url(lambda url: url != shown)
    assert Decision.objects.filter(action="skip").count() == 1
