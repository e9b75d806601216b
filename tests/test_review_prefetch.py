"""The pair screen names the pair a decision will bring next (its keyframes and files are fetched
ahead by static/decide.js), and the media it serves can be kept by the browser's cache."""

import re
import shutil

import pytest
from django.contrib.auth.models import Group, User

from dedup.models import Pair, ScoringConfig, Video
from review import services

from . import factories as make


@pytest.fixture
def pairs(db, tmp_path, clip):
    videos = []
    for i in range(3):
        path = shutil.copy(clip, tmp_path / f"v{i}.mp4")
        video = Video.objects.create(
            path=str(path),
            root=str(tmp_path),
            rel_path=f"v{i}.mp4",
            file_name=f"v{i}.mp4",
            status="ready",
            width=160,
            height=120,
            duration=6.0,
            size=1000,
            video_codec="h264",
        )
        make.frames(video, 3)
        videos.append(video)
    segments = {"a": [[0.0, 6.0]], "b": [[0.0, 6.0]], "coverage_a": 1.0, "coverage_b": 1.0, "offset": 0.0}
    return [
        Pair.objects.create(
            video_a=videos[0],
            video_b=other,
            score=score,
            label="near_duplicate",
            visual=0.9,
            metadata=0.9,
            segments={**segments, "speed": 1.0},
            config=ScoringConfig.active(),
        )
        for other, score in ((videos[1], 0.86), (videos[2], 0.80))
    ]


def _upcoming(html: str) -> dict | None:
    found = re.search(r'class="upcoming" data-pair="(\d+)" data-media="([^"]*)" data-frames="([^"]*)"', html)
    if not found:
        return None
    return {"pair": int(found[1]), "media": found[2].split(), "frames": found[3].split()}


def test_the_pair_page_names_the_next_pair_with_its_keyframes_and_files(client, moderator, pairs):
    first, second = pairs
    client.force_login(moderator)
    upcoming = _upcoming(client.get(f"/review/pairs/{first.pk}").content.decode())
    assert upcoming["pair"] == second.pk
    assert upcoming["media"] == [
        f"/review/videos/{second.video_a_id}/media",
        f"/review/videos/{second.video_b_id}/media",
    ]
    assert f"/review/videos/{second.video_b_id}/frames/2.jpg" in upcoming["frames"]
    assert len(upcoming["frames"]) == 6

    # the last pair has none; a decided pair or a viewer's page neither
    services.pair_decide(pair_id=first.pk, user=moderator, action="confirm")
    assert _upcoming(client.get(f"/review/pairs/{second.pk}").content.decode()) is None
    assert _upcoming(client.get(f"/review/pairs/{first.pk}").content.decode()) is None
    viewer = User.objects.create_user("vera", password="pw")
    viewer.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client.force_login(viewer)
    assert _upcoming(client.get(f"/review/pairs/{second.pk}").content.decode()) is None


def test_media_carries_a_validator_and_honours_if_range(client, moderator, pairs, clip):
    client.force_login(moderator)
    url = f"/review/videos/{pairs[0].video_b_id}/media"
    part = client.get(url, HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and part["Cache-Control"] == "private, max-age=3600"
    etag = part["ETag"]
    assert client.get(url)["ETag"] == etag  # the same file: the same validator, whole or in part
    again = client.get(url, HTTP_RANGE="bytes=100-199", HTTP_IF_RANGE=etag)
    assert again.status_code == 206 and again["Content-Range"].startswith("bytes 100-199/")
    # a browser holding a part of an older file gets all of the new one, never a mixture
    stale = client.get(url, HTTP_RANGE="bytes=100-199", HTTP_IF_RANGE='"0-0"')
    assert stale.status_code == 200
    assert b"".join(stale.streaming_content) == clip.read_bytes()
