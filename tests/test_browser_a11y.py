"""The review pages for keyboard and screen-reader users (issue 27), in Debian's Chromium: axe-core
finds no serious or critical violation on the queue, a pair, the groups and the dashboard; focus
and an announcement follow each swap; `a` / `b` choose the copy to keep; the frame view; the next
pair fetched ahead; B muted while it follows A."""

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from dedup.models import Frame, Pair
from review import services
from review.models import Decision

from . import test_browser, test_browser_decide
from .test_browser import CHROMIUM, _log_in, _until

browser_page = test_browser.browser_page  # the fixtures, shared
light_pairs = test_browser.light_pairs
speed_pairs = test_browser_decide.speed_pairs

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now. The script goes in
    through the DevTools protocol: the page's Content-Security-Policy refuses any script the server
    did not send (an injected <script> tag), and the product serves no test tool."""
    cdp = page.context.new_cdp_session(page)
    try:
        if not page.evaluate("typeof window.axe === 'object'"):
            result = cdp.send("Runtime.evaluate", {"expression": AXE.read_text(), "returnByValue": False})
            assert "exceptionDetails" not in result, result.get("exceptionDetails")
    finally:
        cdp.detach()
    found = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary),
            }));
        }"""
    )
    return found


def _no_violations(page, where: str) -> None:
    found = axe_violations(page)
    assert not found, f"{where}: " + json.dumps(found, indent=1)


def _focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def _announced(page) -> str:
    return page.inner_text("#announce")


def test_review_pages_pass_axe_and_a_swap_moves_focus_and_is_announced(
    live_server, browser_page, speed_pairs
):
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 768})
    first = speed_pairs[0]
    _log_in(page, f"{live_server.url}/review/", "maria")
    _no_violations(page, "queue")

    page.goto(f"{live_server.url}/review/pairs/{first.pk}")
    _no_violations(page, "pair")
    page.keyboard.press("?")
    _until(page, page.locator("#shortcuts-help").is_visible, "? did not show the shortcuts")
    assert "choose A or B as the copy to keep" in page.inner_text("#shortcuts-help")
    _no_violations(page, "shortcuts")
    page.keyboard.press("Escape")

    # a and b choose the copy to keep, also while a radio has the focus (arrow keys would move it)
    radio_a = page.locator(f"input[name=canonical][value='{first.video_a_id}']")
    radio_b = page.locator(f"input[name=canonical][value='{first.video_b_id}']")
    radio_a.focus()
    page.keyboard.press("b")
    _until(page, radio_b.is_checked, "b did not choose B")
    _until(
        page,
        lambda: _announced(page) == "B is the copy to keep when merging.",
        "the choice was not announced",
    )
    page.keyboard.press("a")
    _until(page, radio_a.is_checked, "a did not choose A")
    page.keyboard.press("b")
    _until(page, radio_b.is_checked, "b did not choose B again")

    page.keyboard.press("m")  # merge, keeping B: the next pair swaps in
    page.wait_for_url(lambda url: not url.endswith(f"/review/pairs/{first.pk}"))
    decision = Decision.objects.get(pair=first)
    assert decision.action == "merge" and decision.canonical_id == first.video_b_id
    shown = int(page.url.rstrip("/").rsplit("/", 1)[1])
    # the focus is on the new pair's heading, and the live region says what was done and what is shown
    _until(page, lambda: _focused_id(page) == "pair-heading", "the focus did not move to the new pair")
    _until(page, lambda: f"Pair {shown}:" in _announced(page), "the swap was not announced")
    said = _announced(page)
    assert said.startswith(f"Pair {first.pk} merged, keeping B (b.mp4). Press u to undo."), said
    assert "c1.mp4" not in said and "score" in said  # the heading and the why, not the file list
    _no_violations(page, "pair after a swap")

    page.goto(f"{live_server.url}/review/groups/?show=all")
    assert page.locator("section.group-card").count() == 1
    _no_violations(page, "groups")
    page.goto(f"{live_server.url}/review/dashboard")
    _no_violations(page, "dashboard")


def test_a_refusal_takes_the_focus_and_is_announced(live_server, browser_page, light_pairs):
    pair = light_pairs[0]
    services.pair_claim(pair=pair, user=User.objects.get(username="maria"))
    page = browser_page
    _log_in(page, f"{live_server.url}/review/pairs/{pair.pk}", "bob")
    page.keyboard.press("Tab")  # whatever has the keyboard's focus shows it
    ring = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; })()"
    )
    assert ring == ["solid", "3px"], ring
    page.locator("button[data-key=c]").focus()
    page.keyboard.press("Enter")  # refused (409): swapped in, focused, said
    page.wait_for_selector("#pair-card ul.messages li.error")
    _until(page, lambda: _focused_id(page) == "pair-heading", "the focus stayed on a button that is gone")
    _until(
        page,
        lambda: _announced(page).startswith("maria is reviewing this pair right now"),
        "the refusal was not announced",
    )
    _no_violations(page, "a refused decision")


def _canvas_mean(page) -> float:
    return page.evaluate(
        """(() => { const c = document.getElementById("frame-canvas");
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
            return s / (d.length / 4) / 3; })()"""
    )


def test_the_frame_view_lays_b_over_a_and_shows_their_difference(live_server, browser_page, speed_pairs):
    page = browser_page
    copy = speed_pairs[1]  # A and a byte-for-byte copy of it: no difference anywhere
    _log_in(page, f"{live_server.url}/review/pairs/{copy.pk}", "maria")
    page.keyboard.press("f")
    view = page.locator("#frame-view")
    _until(page, view.is_visible, "f did not open the frame view")
    _until(
        page, lambda: page.get_attribute("#frame-canvas", "data-drawn") == "ab", "both frames were not drawn"
    )
    overlay = _canvas_mean(page)
    assert overlay > 30, overlay  # the Mandelbrot picture, not a black canvas
    page.check("input[name=frame-mode][value=difference]")
    page.fill("#frame-mix", "100")  # all of B subtracted from A
    _until(page, lambda: _canvas_mean(page) < 3, "the difference of two equal frames is not black")
    assert "A at 0.00 s, B at 0.00 s" == page.inner_text("#frame-times")
    page.click(".frame-step[data-step='1']")  # one of A's samples (1 s apart) on, the view follows
    _until(
        page, lambda: page.inner_text("#frame-times") == "A at 1.00 s, B at 1.00 s", "the button did not step"
    )
    page.keyboard.press("ArrowRight")  # the slider has no focus now: → steps too
    _until(page, lambda: page.inner_text("#frame-times") == "A at 2.00 s, B at 2.00 s", "→ did not step")
    _until(page, lambda: _canvas_mean(page) < 3, "the view did not follow both players")
    _no_violations(page, "frame view")
    page.keyboard.press("f")
    _until(page, lambda: not view.is_visible(), "f did not close the frame view")
    page.click(".frame-open")  # the button opens it too
    _until(page, view.is_visible, "the button did not open the frame view")


def test_the_next_pair_is_fetched_ahead_and_b_is_muted_in_sync(live_server, browser_page, speed_pairs):
    page = browser_page
    first = speed_pairs[0]
    fetched: list[tuple[str, str]] = []
    page.on("request", lambda r: fetched.append((r.url, r.headers.get("range", ""))))
    cached: set[str] = set()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    urls: dict[str, str] = {}
    cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on("Network.requestServedFromCache", lambda e: cached.add(urls.get(e["requestId"], "")))
    cdp.on(
        "Network.responseReceived",
        lambda e: (
            cached.add(e["response"]["url"])
            if e["response"].get("fromDiskCache") or e["response"].get("fromPrefetchCache")
            else None
        ),
    )
    _log_in(page, f"{live_server.url}/review/pairs/{first.pk}", "maria")
    upcoming = Pair.objects.get(pk=int(page.get_attribute("#pair-card .upcoming", "data-pair")))
    assert upcoming.pk in {speed_pairs[1].pk, speed_pairs[2].pk}
    frames = [
        f"{live_server.url}/review/videos/{upcoming.video_b_id}/frames/{f.idx}.jpg"
        for f in Frame.objects.filter(video=upcoming.video_b)
    ]
    media = f"{live_server.url}/review/videos/{upcoming.video_b_id}/media"
    _until(
        page,
        lambda: {u for u, _ in fetched} >= set(frames) and (media, "bytes=0-1048575") in fetched,
        "the next pair's keyframes and the start of its file were not fetched ahead",
    )

    page.keyboard.press(" ")  # play in sync: B follows A without its sound
    # `paused` changes before the play/pause event reaches the page's handler: wait for B itself
    _until(page, lambda: page.evaluate("!document.getElementById('player-a').paused"), "A did not play")
    _until(page, lambda: page.evaluate("document.getElementById('player-b').muted"), "B was not muted")
    page.keyboard.press(" ")
    _until(page, lambda: page.evaluate("document.getElementById('player-a').paused"), "A did not pause")
    _until(  # its own setting again
        page, lambda: not page.evaluate("document.getElementById('player-b').muted"), "B stayed muted"
    )

    page.keyboard.press("c")
    page.wait_for_url(lambda url: url.endswith(f"/review/pairs/{upcoming.pk}"))
    # the swapped-in pair's keyframes and file start come from the browser's cache
    page.evaluate("document.querySelectorAll('.strip img').forEach(i => { i.loading = 'eager'; })")
    _until(
        page,
        lambda: page.evaluate("[...document.querySelectorAll('.strip img')].every(i => i.complete)"),
        "the keyframes did not show",
    )
    assert set(frames) <= cached, sorted(set(frames) - cached)


def test_the_jobs_page_and_a_running_calibration_pass_axe(live_server, browser_page):
    from dedup.models import Job
    from dedup.services import job_create

    admin = User.objects.create_user("ada", password="review-me-123")
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    job_create(kind=Job.Kind.CALIBRATION, user=admin, params={"target": 0.99})
    Job.objects.update(status=Job.Status.RUNNING, done=3, total=7, message="cross-validating: fold 2 of 5")
    job_create(kind=Job.Kind.RESCORE)
    failed = job_create(kind=Job.Kind.IMPORT)
    Job.objects.filter(pk=failed.pk).update(
        status=Job.Status.FAILED, error="OperationalError: the database went away"
    )
    page = browser_page
    _log_in(page, f"{live_server.url}/jobs", "ada")
    assert page.inner_text("#jobs-status") == "2 jobs running"
    _no_violations(page, "jobs")
    page.goto(f"{live_server.url}/review/calibration")
    assert "cross-validating: fold 2 of 5" in page.inner_text("#calibration-latest")
    _no_violations(page, "calibration with a running job")
