"""Claims on videos being extracted: a dead process's claim is noticed within a minute, its video is
tried again, and failed once the attempt limit is reached (never retried for ever)."""

import re
import shutil
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import OrmQ

from dedup import services, tasks
from dedup.models import Frame, Video

pytestmark = pytest.mark.django_db(transaction=True)


def _gone_pid() -> int:
    """The id of a process of this host that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _video(tmp_path, clip, name="v.mp4") -> int:
    path = tmp_path / name
    shutil.copy(clip, path)
    return services.video_ingest(paths=[path], enqueue=False).created[0]


def _left_claimed(video_id: int, *, by: str, heartbeat_ago: float = 0.0, attempts: int = 1) -> None:
    """What an extraction process leaves when it dies: the row claimed, nothing written."""
    now = timezone.now()
    Video.objects.filter(pk=video_id).update(
        status=Video.Status.PROCESSING,
        claimed_by=by,
        started_at=now - timedelta(seconds=heartbeat_ago + 1),
        heartbeat_at=now - timedelta(seconds=heartbeat_ago),
        attempts=attempts,
    )


def test_a_claim_whose_process_has_ended_on_this_host_is_taken_again_at_once(tmp_path, clip):
    video_id = _video(tmp_path, clip)
    _left_claimed(video_id, by=f"{services.process_host()}:{_gone_pid()}")
    video = services.video_extract(video_id=video_id)
    assert video.status == Video.Status.READY, video.error
    assert video.attempts == 2 and video.claimed_by == services.claimant()
    assert Frame.objects.filter(video_id=video_id, indexed=True).count() == 7


def test_a_silent_claim_is_dead_after_four_heartbeats_and_a_beating_one_is_not(tmp_path, clip, settings):
    settings.ASTRADUP = {**settings.ASTRADUP, "HEARTBEAT_SECONDS": 15}
    video_id = _video(tmp_path, clip)
    _left_claimed(video_id, by="another-machine:4242", heartbeat_ago=20)  # busy elsewhere
    assert services.video_claim(video_id=video_id) is False
    _left_claimed(video_id, by=services.claimant())
    assert services.video_claim(video_id=video_id) is False  # this very process: alive
    # this host's name, another container's process numbering (host networking): not looked up
    _left_claimed(video_id, by=f"{socket.gethostname()}/1:{_gone_pid()}", heartbeat_ago=1)
    assert services.video_claim(video_id=video_id) is False
    _left_claimed(video_id, by="another-machine:4242", heartbeat_ago=61)
    assert services.video_claim(video_id=video_id) is True
    assert Video.objects.get(pk=video_id).attempts == 2


def test_the_redelivered_task_of_a_video_that_killed_its_worker_at_the_limit_fails_it(tmp_path, clip):
    """django-q2 redelivers the task of a worker that died; the video was claimed again each time
    (attempts 4, 5, ... past the limit of 3) and never ended. At the limit it ends failed, with a
    reason, and the task is done."""
    video_id = _video(tmp_path, clip)
    _left_claimed(video_id, by=f"{services.process_host()}:{_gone_pid()}", attempts=3)
    assert tasks.extract_video(video_id) == Video.Status.FAILED
    video = Video.objects.get(pk=video_id)
    assert video.status == Video.Status.FAILED and video.attempts == 3
    assert "the extraction process crashed 3 times" in video.error and "ended" in video.error
    assert tasks.extract_video(video_id) == Video.Status.FAILED  # delivered once more: nothing to do
    assert (
        Video.objects.get(pk=video_id).attempts == 3 and not Frame.objects.filter(video_id=video_id).exists()
    )


def test_recovery_requeues_dead_claims_fails_them_at_the_limit_and_leaves_live_ones(tmp_path, clip):
    retried, failed, busy = (_video(tmp_path, clip, f"{n}.mp4") for n in ("retried", "failed", "busy"))
    _left_claimed(retried, by=f"{services.process_host()}:{_gone_pid()}")
    _left_claimed(failed, by="another-machine:1", heartbeat_ago=3600, attempts=3)
    _left_claimed(busy, by="another-machine:2", heartbeat_ago=1)
    recovered = tasks.recover_extractions()
    assert recovered == {"retried": [retried], "failed": [failed]}
    assert Video.objects.get(pk=retried).status == Video.Status.PENDING
    assert "no sign of life from another-machine:1" in Video.objects.get(pk=failed).error
    assert Video.objects.get(pk=busy).status == Video.Status.PROCESSING
    assert OrmQ.objects.count() == 1  # the retried video's extraction, enqueued again
    assert tasks.recover_extractions() == {"retried": [], "failed": []}  # once


def test_an_extraction_marks_its_claim_alive_while_it_runs(tmp_path, clip, settings):
    settings.ASTRADUP = {**settings.ASTRADUP, "HEARTBEAT_SECONDS": 1}
    video_id = _video(tmp_path, clip)
    assert services.video_claim(video_id=video_id)
    claimed = Video.objects.get(pk=video_id)
    with services.claim_heartbeat(video_id, claimed.claimed_by):
        deadline = time.monotonic() + 60
        while Video.objects.get(pk=video_id).heartbeat_at == claimed.heartbeat_at:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.2)
    assert (
        services.claim_dead_cause(Video.objects.filter(pk=video_id).values(*services.CLAIM_FIELDS)[0]) == ""
    )


def test_a_rerun_of_ingest_takes_back_what_a_dead_run_left_and_reports_what_is_not_done(
    tmp_path, clip, other_clip, capsys
):
    """A crashed `ingest --sync` left a video `processing`: the rerun said "N ready, 0 failed"
    and left it for 30 minutes. It is extracted now; one still claimed by a live worker
    elsewhere is listed, and so are failed ones with their reasons."""
    root = tmp_path / "library"
    root.mkdir()
    shutil.copy(clip, root / "left.mp4")
    shutil.copy(other_clip, root / "busy.mp4")
    (root / "broken.mp4").write_text("not a video\n" * 50)
    call_command("ingest", str(root), "--sync", "--workers", "1")
    left, busy = (Video.objects.get(path=str(root / name)).pk for name in ("left.mp4", "busy.mp4"))
    Frame.objects.filter(video_id=left).delete()
    _left_claimed(left, by=f"{services.process_host()}:{_gone_pid()}")
    _left_claimed(busy, by="another-machine:77", heartbeat_ago=5)
    capsys.readouterr()
    call_command("ingest", str(root), "--sync", "--workers", "1")
    out = capsys.readouterr().out
    assert Video.objects.get(pk=left).status == Video.Status.READY
    assert Frame.objects.filter(video_id=left, indexed=True).count() == 7
    assert "1 ready, 1 failed, 1 not done" in out, out
    assert re.search(
        r"still processing: busy.mp4: claimed by another-machine:77, last heard from \d+ s ago", out
    )
    assert "failed: broken.mp4: " in out, out
