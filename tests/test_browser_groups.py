"""The groups page in a real browser: resolve every exact group in one click, then undo it."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from dedup.models import DuplicateGroup, Pair, ScoringConfig, Verdict, Video
from dedup.services import groups_refresh
from review.models import Resolution

from .test_browser import CHROMIUM, _log_in, _shot, browser_page  # noqa: F401 (a fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def exact_groups():
    """Two byte-identical pairs, auto-confirmed as the matcher leaves them (no canonical chosen)."""
    videos = []
    for i in range(4):
        videos.append(
            Video.objects.create(
                path=f"/lib/v{i}.mp4",
                root="/lib",
                rel_path=f"v{i}.mp4",
                file_name=f"v{i}.mp4",
                status="ready",
                sha256=f"{i // 2:064x}",
                width=640,
                height=360,
                duration=8.0,
                size=300_000_000,
                video_codec="h264",
            )
        )
    for a, b in ((0, 1), (2, 3)):
        Pair.objects.create(
            video_a=videos[a], video_b=videos[b], score=1.0, label="exact", config=ScoringConfig.active()
        )
    groups_refresh()
    User.objects.create_user("maria", password="review-me-123").groups.add(
        Group.objects.get_or_create(name="moderator")[0]
    )
    return videos


def test_a_moderator_resolves_every_exact_group_and_undoes_it(live_server, browser_page, exact_groups):  # noqa: F811
    page = browser_page
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    _log_in(page, f"{live_server.url}/review/groups/", "maria")
    button = page.locator("form.exact-resolve button")
    assert button.inner_text() == "Resolve all 2 exact groups — frees 572.2\xa0MB"
    assert page.locator("section.group-card").count() == 2
    _shot(page, "groups")

    button.click()
    page.wait_for_selector("ul.messages li.success")
    assert "Resolved 2 exact groups: 2 marked duplicates" in page.inner_text("ul.messages")
    assert page.locator("form.exact-resolve").count() == 0
    assert {g.canonical_id for g in DuplicateGroup.objects.all()} == {exact_groups[0].pk, exact_groups[2].pk}
    assert Verdict.objects.count() == 2

    page.click("form.undo button")
    page.wait_for_selector("text=Undone: 2 group(s)")
    assert Resolution.objects.get().undone_at is not None
    assert not Verdict.objects.exists()
    assert {g.canonical_id for g in DuplicateGroup.objects.all()} == {None}
    assert page.locator("form.exact-resolve button").inner_text().startswith("Resolve all 2 exact groups")
    assert not refused, refused  # no Content-Security-Policy refusal or other error on the way
