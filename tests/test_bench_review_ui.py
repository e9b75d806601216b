"""A scripted moderator's 50 keyboard decisions on a generated library, timed in Debian's Chromium
(`make bench-review-ui`; docs/review.md has the numbers). A benchmark, not a test: it runs only
with ASTRADUP_BENCH_REVIEW_UI=1 and asserts nothing about time.

For each decision: the key is pressed THINK_MS (1 s) after the pair on screen is ready, and two times are
taken from the key press — the swap (the next pair's card in the page) and ready (its keyframes
shown and both players holding their file's metadata: the moment a moderator can judge it).
The file needs nothing newer than the review screen of commit dd82b70, so the same script times
the old screen: copied into `git archive dd82b70` and run there.
"""

import json
import os
import shutil
import statistics
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from dedup.models import Frame, Pair, ScoringConfig, Video

from .media import make_clip

CHROMIUM = "/usr/bin/chromium"
DECISIONS = int(os.environ.get("ASTRADUP_BENCH_DECISIONS", "50"))
# how long the scripted moderator looks at a ready pair before the key: a quick human's glance
THINK_MS = int(os.environ.get("ASTRADUP_BENCH_THINK_MS", "1000"))
FRAMES = 8  # sampled frames per video (1 fps over 8 s clips)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("ASTRADUP_BENCH_REVIEW_UI"), reason="a benchmark: ASTRADUP_BENCH_REVIEW_UI=1"
    ),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def _create(model, **fields):
    # only the fields the model has: the same script runs against older checkouts
    names = {f.name for f in model._meta.get_fields()}
    return model.objects.create(**{k: v for k, v in fields.items() if k in names})


@pytest.fixture
def library(tmp_path):
    """DECISIONS + 2 pairs of distinct files (copies of four generated clips): each pair's
    keyframes are decoded on their first request, as on a library seen for the first time."""
    sources = [
        make_clip(tmp_path / f"src-{s}.mp4", source=s, duration=8, size=(480, 270), tone=440, noise_seed=i)
        for i, s in enumerate(("mandelbrot", "life", "cells", "testsrc"))
    ]
    lib = tmp_path / "lib"
    lib.mkdir()
    config = ScoringConfig.active()
    run = uuid.uuid4().hex  # thumbnails are cached by file hash: a fresh one per run, nothing cached
    # the banded pHash columns, in the newer schemas only
    phash_bands = {
        f"phash_b{j}": 0 for j in range(4) if f"phash_b{j}" in {f.name for f in Frame._meta.get_fields()}
    }
    segments = {"a": [[0.0, 8.0]], "b": [[0.0, 8.0]], "coverage_a": 1.0, "coverage_b": 1.0, "offset": 0.0}
    for i in range(DECISIONS + 2):
        videos = []
        for side in "ab":
            path = Path(shutil.copy(sources[i % 4], lib / f"p{i:03d}{side}.mp4"))
            video = _create(
                Video,
                path=str(path),
                root=str(lib),
                rel_path=path.name,
                file_name=path.name,
                status="ready",
                sha256=f"{run}{i:04d}{side}".ljust(64, "0"),
                width=480,
                height=270,
                duration=8.0,
                size=path.stat().st_size,
                fps=25.0,
                video_codec="h264",
                audio_codec="aac",
            )
            Frame.objects.bulk_create(
                Frame(video=video, idx=k, t=float(k), phash=0, embedding=[0.0] * 8, **phash_bands)
                for k in range(FRAMES)
            )
            videos.append(video)
        _create(
            Pair,
            video_a=videos[0],
            video_b=videos[1],
            score=0.80 + 0.001 * (i % 50),
            label="near_duplicate",
            visual=0.9,
            audio=0.9,
            metadata=0.9,
            breakdown={"matched_quality": 0.93, "matched_frames": FRAMES},
            segments={**segments, "speed": 1.0},
            config=config,
        )
    User.objects.create_user("maria", password="review-me-123").groups.add(
        Group.objects.get_or_create(name="moderator")[0]
    )


READY = """(() => {
    const card = document.getElementById("pair-card");
    if (!card) return null;
    const imgs = [...card.querySelectorAll(".strip img")];
    const players = [...card.querySelectorAll("video")];
    return {
        pair: card.dataset.pair,
        ready: imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)
            && players.length === 2 && players.every(v => v.readyState >= 1),
    };
})()"""


def test_fifty_keyboard_decisions(live_server, tmp_path, library, monkeypatch):
    from django.db import connections
    from playwright.sync_api import sync_playwright

    from review.models import Decision

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    swaps, readies = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-component-update", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{live_server.url}/review/")
        page.fill("input[name=username]", "maria")
        page.fill("input[name=password]", "review-me-123")
        page.click("[type=submit]")
        page.wait_for_url("**/review/")
        page.click("text=Start reviewing")
        page.wait_for_selector("#pair-card")

        def wait(check, what: str):
            deadline = time.monotonic() + 120
            while True:
                state = page.evaluate(READY)
                if state and check(state):
                    return
                assert time.monotonic() < deadline, what
                page.wait_for_timeout(5)

        wait(lambda s: s["ready"], "the first pair did not load")
        started = time.perf_counter()
        for i in range(DECISIONS):
            page.wait_for_timeout(THINK_MS)
            shown = page.evaluate(READY)["pair"]
            t0 = time.perf_counter()
            page.keyboard.press("c" if i % 2 == 0 else "n")
            wait(lambda s, shown=shown: s["pair"] != shown, f"decision {i}: no swap")
            swaps.append(time.perf_counter() - t0)
            wait(lambda s: s["ready"], f"decision {i}: the next pair did not load")
            readies.append(time.perf_counter() - t0)
        total = time.perf_counter() - started
        browser.close()
    connections.close_all()
    assert Decision.objects.exclude(action="skip").count() == DECISIONS

    result = {
        "decisions": DECISIONS,
        "think_ms": THINK_MS,
        "total_s": round(total, 2),  # with the think times
        "swap_ms_mean": round(1000 * statistics.mean(swaps)),
        "swap_ms_median": round(1000 * statistics.median(swaps)),
        "ready_ms_mean": round(1000 * statistics.mean(readies)),
        "ready_ms_median": round(1000 * statistics.median(readies)),
        "ready_ms_max": round(1000 * max(readies)),
        "load": os.getloadavg()[0],
    }
    print("\nBENCH review-ui", json.dumps(result))
    out = os.environ.get("ASTRADUP_BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps(result) + "\n")
