"""Review and library features that need real extracted videos: keyframe strips, thumbnails,
uploads, and API bulk import giving the same pairs as `manage.py ingest`."""

import shutil

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from dedup.models import Pair, Video

from . import factories as make
from .media import make_clip, transcode

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("import")
    original = make_clip(
        root / "original.mp4", source="mandelbrot", duration=6, size=(320, 240), noise_seed=4
    )
    transcode(original, root / "copy.mp4", vf="scale=240:180,hflip", crf=30)
    make_clip(root / "other.mp4", source="life", duration=6, size=(320, 240), noise_seed=5)
    return root


def _pairs() -> set[tuple[str, str, str]]:
    return {
        (p.video_a.rel_path, p.video_b.rel_path, p.label)
        for p in Pair.objects.select_related("video_a", "video_b")
    }


def test_pair_page_shows_keyframe_strips_with_aligned_frames_linked(client, folder):
    call_command("ingest", str(folder), "--sync", "--workers", "1")
    twins = ["original.mp4", "copy.mp4"]
    pair = Pair.objects.get(video_a__file_name__in=twins, video_b__file_name__in=twins)
    client.force_login(make.user("viewer", "viewer"))
    page = client.get(f"/review/pairs/{pair.pk}").content.decode()
    assert page.count('class="thumb aligned"') >= 10  # every frame of both 6 s clips is aligned
    assert 'href="#fb-0"' in page and 'id="fa-0"' in page  # first frame of A links to the first of B
    frame = client.get(f"/review/videos/{pair.video_a_id}/frames/0.jpg")
    assert frame.status_code == 200 and frame["Content-Type"] == "image/jpeg"
    assert b"".join(frame.streaming_content)[:2] == b"\xff\xd8"
    assert client.get(f"/review/videos/{pair.video_a_id}/frames/999.jpg").status_code == 404
    library = client.get("/").content.decode()
    assert f"/review/videos/{pair.video_a_id}/frames/0.jpg" in library


def test_moderators_upload_from_the_library_page(client, folder, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(make.user("moderator", "moderator"))
    upload = SimpleUploadedFile("new.mp4", (folder / "other.mp4").read_bytes(), content_type="video/mp4")
    response = client.post("/upload", {"file": upload}, follow=True)
    assert b"new.mp4 added" in response.content
    assert Video.objects.get(file_name="new.mp4").status == "pending"
    settings.ASTRADUP = {**settings.ASTRADUP, "UPLOAD_MAX_MB": 0}
    big = SimpleUploadedFile("big.mp4", (folder / "other.mp4").read_bytes(), content_type="video/mp4")
    assert b"larger than 0 MB" in client.post("/upload", {"file": big}, follow=True).content


def test_viewers_cannot_upload(client, folder):
    client.force_login(make.user("viewer", "viewer"))
    upload = SimpleUploadedFile("x.mp4", b"\0" * 10, content_type="video/mp4")
    assert client.post("/upload", {"file": upload}).status_code == 403
    assert b'action="/upload"' not in client.get("/").content


def test_bulk_import_through_the_api_finds_the_same_pairs_as_ingest(folder, settings, monkeypatch, tmp_path):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the worker's tasks run in this process, after each commit
    root = tmp_path / "imports"
    shutil.copytree(folder, root / "batch")
    settings.ASTRADUP = {**settings.ASTRADUP, "IMPORT_ROOTS": [str(root)]}
    api = APIClient()
    token = Token.objects.create(user=make.user("moderator", "moderator"))
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = api.post("/api/v1/import", {"paths": [str(root / "batch")]}, format="json")
    assert response.status_code == 201 and len(response.json()["created"]) == 3
    assert set(Video.objects.values_list("status", flat=True)) == {"ready"}
    through_api = _pairs()

    Video.objects.all().delete()
    call_command("ingest", str(root / "batch"), "--sync", "--workers", "1")
    assert _pairs() == through_api
    assert {(a, b) for a, b, label in through_api if label in ("exact", "near_duplicate")} == {
        ("copy.mp4", "original.mp4")
    }
