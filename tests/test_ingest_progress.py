"""Ingest progress the user can see: the library's status bar (and its sizes and orders), the
warning when no worker is there, and `ingest --wait` on a terminal."""

import io
import re
import sys
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from dedup import services
from dedup.models import Video
from dedup.progress import ingest_progress, worker_clusters

from . import factories as make
from .media import make_clip

NO_WORKER = "No worker is running: start <code>manage.py qcluster</code>"


def _order(html: str, names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: html.index(f"<td>{n}</td>"))


@pytest.mark.django_db
def test_the_library_shows_sizes_in_human_units(client, moderator):
    make.video("big.mp4", size=13_841_203, status="ready")
    make.video("small.mp4", size=734_003, status="ready")
    make.video("unknown.mp4")  # not measured yet: an empty cell, not "0 bytes"
    client.force_login(moderator)
    html = client.get("/").content.decode()
    assert "13.2\xa0MB" in html and "716.8\xa0KB" in html
    assert "0\xa0bytes" not in html


@pytest.mark.django_db
def test_the_library_sorts_by_size_duration_name_and_date(client, moderator):
    now = timezone.now()
    rows = {
        "b.mp4": (3_000, 9.0, now - timedelta(days=1)),
        "a.mp4": (1_000, None, now),
        "c.mp4": (2_000, 4.0, now - timedelta(days=2)),
    }
    for name, (size, duration, created) in rows.items():
        video = make.video(name, size=size, duration=duration, status="ready")
        Video.objects.filter(pk=video.pk).update(created_at=created)
    client.force_login(moderator)
    names = list(rows)

    def order(query: str) -> list[str]:
        response = client.get(f"/{query}")
        assert response.status_code == 200
        return _order(response.content.decode(), names)

    assert order("") == ["a.mp4", "b.mp4", "c.mp4"]  # by name
    assert order("?sort=size") == ["a.mp4", "c.mp4", "b.mp4"]
    assert order("?sort=-size") == ["b.mp4", "c.mp4", "a.mp4"]
    # a video not measured yet goes last either way
    assert order("?sort=duration") == ["c.mp4", "b.mp4", "a.mp4"]
    assert order("?sort=-duration") == ["b.mp4", "c.mp4", "a.mp4"]
    assert order("?sort=-date") == ["a.mp4", "b.mp4", "c.mp4"]
    assert order("?sort=date") == ["c.mp4", "b.mp4", "a.mp4"]
    assert order("?sort=-name") == ["c.mp4", "b.mp4", "a.mp4"]
    # only the whitelisted orders: anything else is the default, never a field name or an error
    assert (
        order("?sort=path") == order("?sort=-error") == order("?sort=1;drop") == ["a.mp4", "b.mp4", "c.mp4"]
    )
    html = client.get("/?sort=size&q=mp4").content.decode()
    # the header sorts the other way next, and keeps the search
    assert 'aria-sort="ascending"><a class="sort" href="?sort=-size&amp;q=mp4">Size</a>' in html


@pytest.mark.django_db
def test_the_status_bar_counts_videos_and_the_rate(client, moderator):
    now = timezone.now()
    make.video("q1.mp4")
    make.video("q2.mp4")
    make.video("busy.mp4", status="processing", heartbeat_at=now, claimed_by="elsewhere:1")
    make.video("bad.mp4", status="failed")
    make.video("fresh.mp4", status="ready", finished_at=now - timedelta(seconds=20))
    make.video("old.mp4", status="ready", finished_at=now - timedelta(minutes=5))
    client.force_login(moderator)
    response = client.get("/library/status")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="ingest-status"')  # the partial alone, swapped in place
    for text in ("queued 2", "processing 1", "ready 2", "failed 1", "1 ready in the last minute"):
        assert text in html, text
    # busy: polled every few seconds; the processing video is heard from, so no warning
    assert 'hx-get="/library/status" hx-trigger="every 3s"' in html
    assert NO_WORKER not in html
    assert 'id="ingest-status"' in client.get("/").content.decode()  # on the library page too


@pytest.mark.django_db
def test_an_idle_library_polls_slowly_and_warns_of_nothing(client, moderator):
    make.video("done.mp4", status="ready")
    client.force_login(moderator)
    html = client.get("/library/status").content.decode()
    assert 'hx-trigger="every 15s"' in html and NO_WORKER not in html


@pytest.mark.django_db
def test_waiting_videos_with_no_worker_alive_show_a_warning(client, moderator, settings):
    make.video("waiting.mp4")
    # a claim whose process has been silent for more than four heartbeats is dead
    silent = timezone.now() - timedelta(seconds=5 * settings.ASTRADUP["HEARTBEAT_SECONDS"])
    make.video("stuck.mp4", status="processing", heartbeat_at=silent, claimed_by="gone:1")
    client.force_login(moderator)
    assert worker_clusters() == 0
    progress = ingest_progress()
    assert progress.busy == 2 and progress.live_claims == 0 and progress.no_worker
    for url in ("/", "/library/status"):
        html = client.get(url).content.decode()
        assert NO_WORKER in html and "(2 videos waiting)" in html, url
    assert "No worker is running" in client.get("/review/dashboard").content.decode()


@pytest.mark.django_db
def test_the_status_bar_is_for_users_with_a_role(client, db):
    client.force_login(make.user("nobody"))
    assert client.get("/library/status").status_code == 403
    client.force_login(make.user("vera", "viewer"))
    assert client.get("/library/status").status_code == 200


@pytest.mark.django_db
def test_an_upload_with_no_worker_says_so_instead_of_being_processed(
    client, moderator, settings, tmp_path, clip
):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(moderator)
    upload = SimpleUploadedFile("holiday.mp4", clip.read_bytes(), content_type="video/mp4")
    html = client.post("/upload", {"file": upload}, follow=True).content.decode()
    assert "holiday.mp4 added. No worker is running" in html
    assert "being processed" not in html


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so tqdm draws its bar into it."""

    def isatty(self) -> bool:
        return True


@pytest.mark.django_db(transaction=True)
def test_ingest_wait_shows_a_progress_bar_until_the_workers_are_done(tmp_path, monkeypatch):
    make_clip(tmp_path / "one.mp4", source="mandelbrot", duration=3, tone=440)
    make_clip(tmp_path / "two.mp4", source="life", duration=3, tone=None)
    terminal, out, err = _Terminal(), StringIO(), StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    failures: list[BaseException] = []

    def worker() -> None:
        """What a cluster's tasks do, once the command has said that nobody is doing it."""
        try:
            deadline = time.monotonic() + 120
            while "No worker is running" not in err.getvalue():
                assert time.monotonic() < deadline, "the command never noticed there was no worker"
                time.sleep(0.1)
            for video_id in Video.objects.order_by("pk").values_list("pk", flat=True):
                services.video_extract(video_id=video_id)
                services.video_match(video_id=video_id)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    call_command("ingest", str(tmp_path), "--wait", "--poll", "0.2", stdout=out, stderr=err)
    thread.join(timeout=60)
    assert not failures, failures
    assert "2 ready, 0 failed" in out.getvalue()
    assert "No worker is running: start `manage.py qcluster`" in err.getvalue()
    bar = terminal.getvalue()
    assert re.search(r"workers: +100%.*2/2", bar), bar
    assert Video.objects.filter(matched_at__isnull=False).count() == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_ingest_wait_returns_once_a_real_cluster_is_done(tmp_path, capsys):
    from .test_workers import _cluster

    make_clip(tmp_path / "one.mp4", source="mandelbrot", duration=3, tone=440)
    make_clip(tmp_path / "copy.mp4", source="mandelbrot", duration=3, tone=440, size=(192, 144))
    out, err = StringIO(), StringIO()
    cluster = _cluster(tmp_path, 1)
    try:
        deadline = time.monotonic() + 120
        while not worker_clusters():  # its Stat, through the database cache, as the web sees it
            assert cluster.poll() is None, (tmp_path / "cluster1.log").read_text()
            assert time.monotonic() < deadline, "the cluster never reported"
            time.sleep(0.5)
        done = threading.Event()

        def ingest() -> None:
            try:
                call_command("ingest", str(tmp_path), "--wait", "--poll", "0.5", stdout=out, stderr=err)
            finally:
                connection.close()
                done.set()

        threading.Thread(target=ingest, daemon=True).start()
        assert done.wait(timeout=240), (tmp_path / "cluster1.log").read_text()
    finally:
        cluster.terminate()
        cluster.wait(timeout=60)
    assert "2 ready, 0 failed" in out.getvalue(), (out.getvalue(), err.getvalue())
    assert "No worker is running" not in err.getvalue()
    assert "workers:" not in capsys.readouterr().err  # no bar when stderr is not a terminal
