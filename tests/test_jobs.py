"""Background jobs (issue 28): calibration, re-scoring, re-extraction and imports create a Job whose
progress the pages show; a worker runs it (here the task functions, as a worker calls them, and
at the end a real `qcluster` on the ORM broker and on Redis)."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from dedup.models import Job, Pair, ScoringConfig, Video
from dedup.services import config_activate, job_create, job_enqueue
from dedup.tasks import extract_video, match_video, rescore_pairs, run_job
from review import services
from review.models import Calibration

from . import factories as make
from .calibration_data import library, synthetic_pairs


def _labelled(n: int = 120, seed: int = 5, labels: int = 80) -> None:
    moderator = make.user("mod", "moderator")
    for pair, truth in library(synthetic_pairs(n, seed=seed))[:labels]:
        services.pair_decide(pair_id=pair.pk, user=moderator, action="confirm" if truth else "not_duplicate")


def _queued_tasks() -> list[tuple[str, tuple, dict]]:
    from django_q.models import OrmQ

    return [(q.func(), q.args(), q.task["kwargs"]) for q in OrmQ.objects.order_by("pk")]


# ---------------------------------------------------------------- calibration


@pytest.mark.django_db(transaction=True)
def test_calibrating_answers_at_once_and_the_page_follows_the_job_to_its_report(settings):
    settings.ASTRADUP = {**settings.ASTRADUP, "CALIBRATION_MIN_LABELS": 20}
    _labelled()
    admin = make.user("boss", "admin")
    client = Client()
    client.force_login(admin)
    response = client.post("/review/calibration/run", {"target": "0.99"}, follow=True)
    job = Job.objects.get()
    assert (job.kind, job.status, job.created_by) == (Job.Kind.CALIBRATION, Job.Status.QUEUED, admin)
    assert job.params == {"target": 0.99} and not Calibration.objects.exists()  # nothing ran in the request
    assert _queued_tasks() == [("dedup.tasks.run_job", (), {"job_id": job.pk})]
    page = response.content.decode()
    assert f"Calibration job #{job.pk} is queued" in page and 'hx-trigger="every 2s"' in page
    assert "1 job running" in page  # the layout's link to the jobs page

    run_job(job.pk)  # what the worker does with the queued task

    job.refresh_from_db()
    run = Calibration.objects.get()
    assert job.status == Job.Status.DONE and job.result == {"calibration_id": run.pk, "ready": True}
    assert job.done == job.total == 7 and f"calibration #{run.pk} done" in job.message
    poll = client.get("/review/calibration", headers={"HX-Request": "true"}).content.decode()
    # the polled part now holds the report, and polls no more
    assert poll.lstrip().startswith('<div id="calibration-latest">') and "every 2s" not in poll
    assert "<polyline" in poll and "cross-validated" in poll and "<h1>" not in poll


@pytest.mark.django_db
def test_a_wrong_target_is_refused_in_the_request_without_a_job(client):
    client.force_login(make.user("boss", "admin"))
    page = client.post("/review/calibration/run", {"target": "1.5"}, follow=True).content.decode()
    assert "Calibration not run: the target precision must lie in [0.5, 1)" in page
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_a_failing_job_records_why_and_the_worker_goes_on(client):
    # a target the page would refuse, stored as an older release might have: the work raises
    job = job_create(kind=Job.Kind.CALIBRATION, params={"target": 2.0})
    outcome = run_job(job.pk)  # returns: the worker process takes its next task
    job.refresh_from_db()
    assert "failed" in outcome and job.status == Job.Status.FAILED and job.finished_at
    assert job.error == "CalibrationRefused: the target precision must lie in [0.5, 1)"
    client.force_login(make.user("boss", "admin"))
    page = client.get("/review/calibration").content.decode()
    assert f"Calibration job #{job.pk} failed: CalibrationRefused" in page
    jobs = client.get("/jobs").content.decode()
    assert "CalibrationRefused: the target precision" in jobs and "job-failed" in jobs


@pytest.mark.django_db
def test_a_job_delivered_twice_runs_once(settings):
    settings.ASTRADUP = {**settings.ASTRADUP, "CALIBRATION_MIN_LABELS": 20}
    _labelled()
    job = services.calibration_start(target=0.99)
    run_job(job.pk)
    assert "skipped" in run_job(job.pk)
    assert Calibration.objects.count() == 1


@pytest.mark.django_db
def test_a_job_whose_kind_has_no_runner_fails_with_the_reason():
    job = job_create(kind=Job.Kind.IMPORT)  # imports follow videos: nothing runs them as one task
    run_job(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "no runner for jobs of kind 'import'" in job.error


# ---------------------------------------------------------------- re-scoring


@pytest.mark.django_db(transaction=True)
def test_a_config_change_rescore_is_a_job_with_progress():
    pairs = library(synthetic_pairs(30, seed=2))
    config = ScoringConfig.objects.create(name="stricter", near_threshold=0.97, exact_threshold=0.99)
    config_activate(config=config, via="command")
    job = Job.objects.get()
    assert (job.kind, job.status, job.params) == (
        Job.Kind.RESCORE,
        Job.Status.QUEUED,
        {"config_id": config.pk},
    )
    assert _queued_tasks() == [("dedup.tasks.rescore_pairs", (config.pk,), {"job_id": job.pk})]

    counts = rescore_pairs(config.pk, job_id=job.pk)

    job.refresh_from_db()
    assert counts["rescored"] == len(pairs) and job.status == Job.Status.DONE
    assert job.done == job.total == len(pairs) and job.result == counts
    assert f"{len(pairs)} pairs re-scored under config #{config.pk}" in job.message
    assert Pair.objects.filter(config=config).count() == len(pairs)


@pytest.mark.django_db
def test_a_rescore_in_this_process_is_recorded_as_a_job_too():
    library(synthetic_pairs(10, seed=2))
    config = ScoringConfig.objects.create(name="stricter", near_threshold=0.97, exact_threshold=0.99)
    config_activate(config=config, via="command", rescore="sync")
    job = Job.objects.get()
    assert job.status == Job.Status.DONE and job.done == job.total == Pair.objects.count()


# ---------------------------------------------------------------- jobs that follow videos


@pytest.mark.django_db
def test_an_api_import_answers_with_its_job_which_follows_the_videos_to_the_end(settings, tmp_path, clip):
    root = tmp_path / "import"
    root.mkdir()
    shutil.copy(clip, root / "one.mp4")
    shutil.copy(clip, root / "two.mp4")
    (root / "broken.mp4").write_bytes(b"not a video at all")
    settings.ASTRADUP = {**settings.ASTRADUP, "IMPORT_ROOTS": [str(root)]}
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make.user('m', 'moderator')).key}")
    body = api.post("/api/v1/import", {"paths": [str(root)]}, format="json").json()
    assert len(body["created"]) == 3 and body["identical"] == 1  # the fields it always had
    job = Job.objects.get(pk=body["job"])
    assert body["job_url"] == f"http://testserver/api/v1/jobs/{job.pk}"
    assert (job.kind, job.status, job.done, job.total) == (Job.Kind.IMPORT, Job.Status.RUNNING, 0, 3)

    for video_id in body["created"]:  # as the workers do: extraction, then matching of the ready
        if extract_video(video_id) == Video.Status.READY:
            match_video(video_id)
        progress = api.get(body["job_url"]).json()
        assert progress["done"] == body["created"].index(video_id) + 1

    assert progress["status"] == "done" and progress["result"] == {"ready": 2, "failed": 1}
    assert progress["message"] == "2 of 3 videos extracted and matched, 1 failed"
    again = api.post("/api/v1/import", {"paths": [str(root)]}, format="json").json()
    assert again["created"] == [] and Job.objects.get(pk=again["job"]).status == Job.Status.DONE


@pytest.mark.django_db
def test_reextract_follows_its_videos_in_a_job(tmp_path, clip):
    from dedup.services import video_ingest

    shutil.copy(clip, tmp_path / "a.mp4")
    video_ingest(paths=[tmp_path], enqueue=False)
    call_command("reextract", "--all", "--sync", "--workers", "1")
    job = Job.objects.get()
    assert (job.kind, job.status, job.done, job.total) == (Job.Kind.REEXTRACT, Job.Status.DONE, 1, 1)
    assert list(job.videos.all()) == list(Video.objects.all())


@pytest.mark.django_db(transaction=True)
def test_reextract_for_the_workers_leaves_the_job_running_until_they_are_done(tmp_path, clip):
    from dedup.services import video_ingest

    shutil.copy(clip, tmp_path / "a.mp4")
    video_id = video_ingest(paths=[tmp_path], enqueue=False).created[0]
    call_command("reextract", "--all")
    job = Job.objects.get()
    assert job.status == Job.Status.RUNNING and job.total == 1
    assert ("dedup.tasks.extract_video", (video_id,), {}) in _queued_tasks()


# ---------------------------------------------------------------- the pages


@pytest.mark.django_db
def test_the_jobs_page_is_for_users_with_a_role_and_polls_while_a_job_is_live(client):
    job = job_create(kind=Job.Kind.CALIBRATION, user=make.user("boss", "admin"))
    assert client.get("/jobs").status_code == 302  # to the login page
    client.force_login(make.user("nobody"))
    assert client.get("/jobs").status_code == 403
    assert "jobs-status" not in client.get("/review/").content.decode()  # no role: no link either
    client.force_login(make.user("vic", "viewer"))
    page = client.get("/jobs").content.decode()
    assert f'id="job-{job.pk}"' in page and "calibration" in page and "boss" in page
    assert 'hx-trigger="every 2s"' in page and "No worker is running" in page  # queued, no cluster
    status = client.get("/jobs/status").content.decode()
    assert '<a id="jobs-status"' in status and "1 job running" in status and "every 3s" in status
    Job.objects.filter(pk=job.pk).update(status=Job.Status.DONE)
    part = client.get("/jobs", headers={"HX-Request": "true"}).content.decode()
    assert part.lstrip().startswith('<div id="job-list">') and "every" not in part  # stops polling
    assert "every" not in client.get("/jobs/status").content.decode()


@pytest.mark.django_db
def test_jobs_are_read_only_in_django_admin(client):
    job = job_create(kind=Job.Kind.RESCORE, params={"config_id": 1})
    client.force_login(make.user("root", is_staff=True, is_superuser=True))
    assert client.get("/admin/dedup/job/").status_code == 200
    page = client.get(f"/admin/dedup/job/{job.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get("/admin/dedup/job/add/").status_code == 403
    assert client.post(f"/admin/dedup/job/{job.pk}/delete/", {"post": "yes"}).status_code == 403


# ---------------------------------------------------------------- a real worker cluster


def _wait_for(condition, *, what: str, cluster, deadline_s: float = 240) -> None:
    """Until `condition()`; a deadline against a hang, not an expected time."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert cluster.poll() is None, "the cluster died"
        assert time.monotonic() < deadline, f"{what}: not within {deadline_s} s"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_worker_cluster_runs_a_calibration_job(tmp_path, monkeypatch, broker):
    from .test_workers import _cluster, _database_url

    started: list[subprocess.Popen] = []
    if broker == "redis":
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        from lib.topology import free_port, wait_port

        port = free_port()
        redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )
        started.append(redis)
        wait_port(port, deadline=time.monotonic() + 30, process=redis)
        monkeypatch.setenv("ASTRADUP_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("ASTRADUP_CALIBRATION_MIN_LABELS", "20")  # for the worker: a report, not "too few"
    _labelled()
    try:
        if broker == "redis":
            # enqueued by a process configured for Redis, as the web server would be
            code = "from review.services import calibration_start; print(calibration_start(target=0.99).pk)"
            env = {**os.environ, "DATABASE_URL": _database_url()}
            env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            made = subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", code],
                cwd=settings.BASE_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert made.returncode == 0, made.stderr
            job = Job.objects.get(pk=int(made.stdout.split()[-1]))
        else:
            job = job_enqueue(job_create(kind=Job.Kind.CALIBRATION, params={"target": 0.99}))
        cluster = _cluster(tmp_path, 1)
        started.append(cluster)
        _wait_for(lambda: Job.objects.get(pk=job.pk).status not in Job.LIVE, what="the job", cluster=cluster)
    finally:
        for process in reversed(started):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    job.refresh_from_db()
    log = (tmp_path / "cluster1.log").read_text()
    assert job.status == Job.Status.DONE, f"{job.error}\n{log}"
    run = Calibration.objects.get()
    assert job.result == {"calibration_id": run.pk, "ready": True} and job.done == job.total
