"""Ingest and serving where paths are hostile: symlinks out of the import roots, FIFOs and sockets,
names that are not UTF-8 or too long, many imports of one folder at once (issue 24)."""

import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connections
from rest_framework.test import APIClient

from dedup import services
from dedup.features import ExtractionError, probe
from dedup.models import Frame, Job, Video

from . import factories as make

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = b"root:x:0:0:the secret the media view must never serve\n"
# generous: CI is a loaded 2-core box; a hang is what this guards against, not slowness
DEADLINE_S = 60


@pytest.fixture
def root(settings, tmp_path) -> Path:
    """The only import root; the data dir moved too, so no thumbnail cached by another test is met."""
    root = tmp_path / "import"
    root.mkdir()
    settings.ASTRADUP = {**settings.ASTRADUP, "IMPORT_ROOTS": [str(root)]}
    settings.DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = tmp_path / "media"
    return root


@pytest.fixture
def secret(tmp_path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(SECRET)
    return outside / "passwd"


@pytest.fixture
def api(moderator) -> APIClient:
    client = APIClient()
    client.force_authenticate(moderator)
    return client


@pytest.fixture
def viewer(client):
    client.force_login(make.user("viewer", "viewer"))
    return client


def _import(api: APIClient, *paths: Path):
    return api.post("/api/v1/import", {"paths": [str(p) for p in paths]}, format="json")


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _returns_in_time(fn, *, fifos=()):
    """fn() run in a thread with its own database connection; fails (instead of hanging CI) when it
    does not return within the deadline, after waking any reader stuck opening one of `fifos`."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    hung = thread.is_alive()
    deadline = time.monotonic() + DEADLINE_S
    while thread.is_alive() and time.monotonic() < deadline:
        for fifo in fifos:  # a writer arriving lets a blocked open() return, so the thread ends
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(0.2)
    assert not hung, f"did not return within {DEADLINE_S} s (blocked opening a FIFO?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


# ---------------------------------------------------------------- symlinks (defect 1)


def test_a_symlink_leading_out_of_the_import_root_is_skipped_never_recorded(root, secret, clip, api):
    sneaky = root / "sneaky"
    sneaky.mkdir()
    shutil.copy(clip, sneaky / "holiday.mp4")
    (sneaky / "secret.mp4").symlink_to(secret)
    response = _import(api, sneaky)
    assert response.status_code == 201
    body = response.json()
    assert len(body["created"]) == 1 and body["skipped"] == [
        f"{sneaky / 'secret.mp4'}: symlink points outside the import root"
    ]
    assert list(Video.objects.values_list("file_name", flat=True)) == ["holiday.mp4"]


def test_a_symlinked_folder_part_leading_out_is_refused_as_well(root, secret, api):
    (root / "escape").symlink_to(secret.parent, target_is_directory=True)
    # named outright: the API resolves it and finds it outside the roots
    named = _import(api, root / "escape" / "passwd")
    assert named.status_code == 400 and "outside the import roots" in named.json()["paths"][0]
    assert not Video.objects.exists()


def test_a_symlink_swapped_in_after_ingest_is_not_served(root, secret, clip, api, viewer):
    shutil.copy(clip, root / "a.mp4")
    video_id = _import(api, root).json()["created"][0]
    Frame.objects.create(
        video_id=video_id, idx=0, t=0.0, phash=0, phash_b0=0, phash_b1=0, phash_b2=0, phash_b3=0,
        model="test", embedding=[0.0] * 8,
    )  # fmt: skip
    served = viewer.get(f"/review/videos/{video_id}/media")
    assert served.status_code == 200 and _body(served) == clip.read_bytes()
    assert served["Content-Type"] == "video/mp4" and 'filename="a.mp4"' in served["Content-Disposition"]
    (root / "a.mp4").unlink()
    (root / "a.mp4").symlink_to(secret)
    assert viewer.get(f"/review/videos/{video_id}/media").status_code == 404
    assert viewer.get(f"/review/videos/{video_id}/media", HTTP_RANGE="bytes=0-9").status_code == 404
    assert viewer.get(f"/review/videos/{video_id}/frames/0.jpg").status_code == 404


def test_a_folder_swapped_for_a_symlink_after_ingest_is_not_served(root, secret, clip, api, viewer):
    (root / "sub").mkdir()
    shutil.copy(clip, root / "sub" / "passwd")  # sniffed as a video: no extension needed
    video_id = _import(api, root).json()["created"][0]
    assert viewer.get(f"/review/videos/{video_id}/media").status_code == 200
    shutil.rmtree(root / "sub")
    (root / "sub").symlink_to(secret.parent, target_is_directory=True)
    assert viewer.get(f"/review/videos/{video_id}/media").status_code == 404


def test_symlinks_that_stay_inside_the_root_are_ingested_and_served(root, clip, api, viewer):
    (root / "real").mkdir()
    (root / "links").mkdir()
    shutil.copy(clip, root / "real" / "a.mp4")
    (root / "links" / "a.mp4").symlink_to("../real/a.mp4")
    body = _import(api, root).json()
    assert len(body["created"]) == 2 and body["skipped"] == [] and body["identical"] == 1
    link = Video.objects.get(rel_path="links/a.mp4")
    assert link.path == str(root / "links" / "a.mp4")
    part = viewer.get(f"/review/videos/{link.pk}/media", HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and _body(part) == clip.read_bytes()[100:200]


def test_the_cli_keeps_files_inside_the_folder_it_was_given(tmp_path, secret, clip, viewer):
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(clip, library / "a.mp4")
    (library / "out.mp4").symlink_to(secret)
    out = io.StringIO()
    call_command("ingest", str(library), stdout=out)
    assert list(Video.objects.values_list("rel_path", flat=True)) == ["a.mp4"]
    assert f"skipped: {library / 'out.mp4'}: symlink points outside the import root" in out.getvalue()
    # a file the admin names outright is trusted wherever its symlink leads, recorded as its target
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(clip, elsewhere / "b.mp4")
    (library / "named.mp4").symlink_to(elsewhere / "b.mp4")
    call_command("ingest", str(library / "named.mp4"), stdout=io.StringIO())
    named = Video.objects.get(path=str(elsewhere / "b.mp4"))
    assert named.root == str(elsewhere)
    assert viewer.get(f"/review/videos/{named.pk}/media").status_code == 200


def test_a_video_with_no_recorded_root_is_served_only_from_the_configured_roots(root, clip, viewer):
    inside = root / "a.mp4"
    shutil.copy(clip, inside)
    served = make.video("a.mp4", path=str(inside))
    stray = make.video("clip.mp4", path=str(clip))
    assert viewer.get(f"/review/videos/{served.pk}/media").status_code == 200
    assert viewer.get(f"/review/videos/{stray.pk}/media").status_code == 404


# ---------------------------------------------------------------- concurrent imports (defect 4)


def test_concurrent_imports_of_one_folder_all_succeed_and_record_each_file_once(root, clip, moderator):
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        shutil.copy(clip, root / name)
    n = 20
    barrier = threading.Barrier(n)
    responses: list = [None] * n

    def one(i: int) -> None:
        client = APIClient()
        client.raise_request_exception = False  # a 500 is an answer here, not a crash
        client.force_authenticate(moderator)
        try:
            barrier.wait(timeout=DEADLINE_S)
            responses[i] = _import(client, root)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(4 * DEADLINE_S)
    assert all(r is not None for r in responses)
    assert sorted({r.status_code for r in responses}) == [201], [r.status_code for r in responses]
    bodies = [r.json() for r in responses]
    assert all(len(b["created"]) + b["existing"] == 3 and b["skipped"] == [] for b in bodies)
    created = [pk for b in bodies for pk in b["created"]]
    assert len(created) == len(set(created)) == 3  # each file recorded by exactly one request
    assert Video.objects.count() == 3


# ---------------------------------------------------------------- FIFOs, sockets, devices (defects 5, 12)


def test_fifos_and_sockets_are_skipped_without_opening_them(root, clip, api):
    folder = root / "odd"
    folder.mkdir()
    shutil.copy(clip, folder / "good.mp4")
    fifos = [folder / "pipe", folder / "pipe.mp4"]
    for fifo in fifos:
        os.mkfifo(fifo)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.mp4"))
    try:
        response = _returns_in_time(lambda: _import(api, folder), fifos=fifos)
        named = _returns_in_time(lambda: _import(api, folder / "pipe.mp4"), fifos=fifos)
    finally:
        sock.close()
    assert response.status_code == 201
    body = response.json()
    assert len(body["created"]) == 1
    assert body["skipped"] == [
        f"{folder / 'pipe'}: not a regular file (FIFO)",
        f"{folder / 'pipe.mp4'}: not a regular file (FIFO)",
        f"{folder / 'sock.mp4'}: not a regular file (socket)",
    ]
    assert named.status_code == 201 and named.json()["skipped"] == [
        f"{folder / 'pipe.mp4'}: not a regular file (FIFO)"
    ]
    assert list(Video.objects.values_list("file_name", flat=True)) == ["good.mp4"]


def test_a_fifo_without_a_video_name_does_not_hang_the_cli(tmp_path, clip):
    shutil.copy(clip, tmp_path / "good.mp4")
    os.mkfifo(tmp_path / "stream")
    out = io.StringIO()
    _returns_in_time(lambda: call_command("ingest", str(tmp_path), stdout=out), fifos=[tmp_path / "stream"])
    assert "1 new" in out.getvalue() and "stream: not a regular file (FIFO)" in out.getvalue()


def test_a_device_file_is_skipped_as_one(tmp_path, clip):
    try:
        os.mknod(tmp_path / "null.mp4", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device file needs CAP_MKNOD")
    result = _returns_in_time(lambda: services.video_ingest(paths=[tmp_path], enqueue=False))
    assert result.skipped == [f"{tmp_path / 'null.mp4'}: not a regular file (character device)"]


def test_skipped_files_name_the_real_cause(tmp_path, clip):
    shutil.copy(clip, tmp_path / "good.mp4")
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")
    (tmp_path / "gone.mp4").symlink_to("nowhere.mp4")
    result = services.video_ingest(paths=[tmp_path], enqueue=False)
    assert len(result.created) == 1
    assert result.skipped == [
        f"{tmp_path / 'gone.mp4'}: broken symlink (its target {tmp_path / 'nowhere.mp4'} was not found)",
        f"{tmp_path / 'loop.mp4'}: symlink loop",
    ]


def test_extraction_names_the_real_cause_for_a_file_changed_after_ingest(tmp_path):
    os.mkfifo(tmp_path / "fifo.mp4")
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")
    for name, reason in [("fifo.mp4", "not a regular file (FIFO)"), ("loop.mp4", "symlink loop")]:
        with pytest.raises(ExtractionError) as failed:
            _returns_in_time(
                lambda name=name: probe.probe_video(tmp_path / name), fifos=[tmp_path / "fifo.mp4"]
            )
        assert str(failed.value) == reason


def test_an_unreadable_file_is_refused_as_permission_denied(clip):
    # root reads anything: the check runs in a child that gives up root for `nobody` first
    code = (
        "import os, sys\n"
        "from dedup.features.probe import FileRefused, regular_file\n"
        "if os.geteuid() == 0:\n    os.setgid(65534)\n    os.setuid(65534)\n"
        "try:\n    regular_file(sys.argv[1], within=[sys.argv[2]])\n"
        "except FileRefused as exc:\n    print(exc)\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        locked = Path(folder) / "locked.mp4"
        shutil.copy(clip, locked)
        os.chmod(locked, 0o000)
        child = subprocess.run(
            [sys.executable, "-c", code, str(locked), folder],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        )
    assert child.stdout.strip() == "permission denied", child.stderr


def test_regular_file_resolves_within_the_given_roots(tmp_path, clip, secret):
    shutil.copy(clip, tmp_path / "a.mp4")
    real, found = probe.regular_file(tmp_path / "a.mp4", within=[tmp_path])
    assert real == str(tmp_path / "a.mp4") and found.st_size == clip.stat().st_size
    with pytest.raises(probe.FileRefused, match="outside the import roots"):
        probe.regular_file(tmp_path / "a.mp4", within=[tmp_path / "elsewhere"])
    # a sibling whose name merely starts like the root is not inside it
    with pytest.raises(probe.FileRefused, match="outside"):
        probe.regular_file(secret, within=[str(secret.parent)[:-1]])


# ---------------------------------------------------------------- names (defects 6, 8)


def test_a_name_that_is_not_utf8_is_skipped_and_the_rest_of_the_folder_goes_in(root, clip, api):
    folder = root / "mixed"
    folder.mkdir()
    shutil.copy(clip, folder / "good.mp4")
    with open(os.path.join(os.fsencode(folder), b"bad\xff.mp4"), "wb") as fh:
        fh.write(clip.read_bytes())
    shown = f"{folder}/bad\\xff.mp4: file name is not valid UTF-8 (rename the file to import it)"
    out = io.StringIO()
    call_command("ingest", str(folder), stdout=out)
    assert f"skipped: {shown}" in out.getvalue()
    assert list(Video.objects.values_list("file_name", flat=True)) == ["good.mp4"]
    response = _import(api, folder)
    body = response.json()
    assert response.status_code == 201 and {k: v for k, v in body.items() if k not in ("job", "job_url")} == {
        "created": [],
        "existing": 1,
        "identical": 0,
        "skipped": [shown],
    }
    # nothing new to extract: the import's job is done at once
    assert Job.objects.get(pk=body["job"]).status == Job.Status.DONE


def test_a_name_too_long_for_the_file_system_is_a_400(root, api):
    response = _import(api, root / ("x" * 300))
    assert response.status_code == 400
    assert "longer than 255 bytes" in response.json()["paths"][0]
    nul = api.post("/api/v1/import", {"paths": [f"{root}/a\x00b"]}, format="json")
    assert nul.status_code == 400  # DRF's own check: not a ValueError from the file system
    (root / "loop").symlink_to("loop")
    looped = _import(api, root / "loop")
    assert looped.status_code == 400 and "symlink loop" in looped.json()["paths"][0]


def test_uploads_with_one_very_long_name_are_stored_under_shorter_ones(root, clip, api):
    # Django cuts an upload's name to 255 characters; the "-1" that keeps a second copy apart
    # must still fit the file system's 255 bytes
    paths = []
    for _ in range(2):
        upload = SimpleUploadedFile("v" * 300 + ".mp4", clip.read_bytes(), content_type="video/mp4")
        response = api.post("/api/v1/uploads", {"file": upload}, format="multipart")
        assert response.status_code == 201, response.content
        video = Video.objects.get(pk=response.json()["created"][0])
        assert video.file_name.endswith(".mp4") and len(video.file_name.encode()) <= 255
        paths.append(video.path)
    assert len(set(paths)) == 2 and all(Path(p).read_bytes() == clip.read_bytes() for p in paths)
