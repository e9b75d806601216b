"""Fault tests: extraction processes killed or crashing mid-extraction, under `ingest --sync` and
under a real worker cluster, and the database server killed mid-ingest. Whatever dies, each video
ends ready or failed with a reason, never half-written, never twice."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db.models import Count, Max, Min

from dedup import services
from dedup.models import AudioHash, Frame, Video

from .media import make_clip
from .test_workers import _database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BASE_DIR = Path(settings.BASE_DIR)


def _env(**extra: str) -> dict:
    return dict(
        os.environ,
        DATABASE_URL=_database_url(),
        ASTRADUP_MODEL_CACHE=settings.ASTRADUP["MODEL_CACHE"],
        ASTRADUP_LOG_LEVEL="INFO",
        **extra,
    )


def _library(tmp_path: Path) -> Path:
    """Two copies of a two-minute clip (long enough to be killed mid-extraction) and two short clips."""
    lib = tmp_path / "library"
    lib.mkdir()
    long = make_clip(tmp_path / "long.mp4", source="testsrc", duration=120, size=(320, 240), tone=440)
    shutil.copy(long, lib / "once.mp4")
    shutil.copy(long, lib / "always.mp4")
    make_clip(lib / "a.mp4", source="mandelbrot", duration=4, tone=330)
    make_clip(lib / "b.mp4", source="life", duration=4, tone=None)
    return lib


class _Killer:
    """Sends each new claim of the named files' videos the next of its signals, so that the
    process extracting it dies mid-extraction; only processes under `parent` are touched."""

    def __init__(self, lib: Path, parent: subprocess.Popen, signals: dict[str, list[int]]):
        self.signals = {str(lib / name): list(sigs) for name, sigs in signals.items()}
        self.parent = psutil.Process(parent.pid)
        self.seen: set = set()
        self.killed_at: dict[str, float] = {}

    def poll(self) -> None:
        claims = Video.objects.filter(status=Video.Status.PROCESSING, path__in=list(self.signals))
        for path, claimed_by, started_at in claims.values_list("path", "claimed_by", "started_at"):
            if (path, claimed_by, started_at) in self.seen or not self.signals[path]:
                continue
            self.seen.add((path, claimed_by, started_at))
            pid = int(claimed_by.rpartition(":")[2])
            assert pid in {p.pid for p in self.parent.children(recursive=True)}, claimed_by
            os.kill(pid, self.signals[path].pop(0))
            self.killed_at[path] = time.monotonic()

    @property
    def done(self) -> bool:
        return not any(self.signals.values())


def _all_or_nothing(video: Video) -> None:
    """Frames and audio hashes of a ready video are all there (indices 0..n-1); of any other, none."""
    frames = Frame.objects.filter(video=video).aggregate(n=Count("id"), lo=Min("idx"), hi=Max("idx"))
    if video.status == Video.Status.READY:
        assert frames["n"] > 0 and frames["lo"] == 0 and frames["hi"] == frames["n"] - 1, (video, frames)
    else:
        assert frames["n"] == 0 and not AudioHash.objects.filter(video=video).exists(), (video, frames)


def test_an_extraction_process_that_dies_costs_its_video_an_attempt_not_the_run(tmp_path):
    """`ingest --sync` with a pool: one child killed (SIGKILL) once, another crashing (SIGSEGV) on
    every attempt. The run goes on: the first video is extracted by a new process, the second
    fails with the reason after three attempts, the others are untouched."""
    lib = _library(tmp_path)
    log = tmp_path / "ingest.log"
    with open(log, "w") as out:
        run = subprocess.Popen(
            [sys.executable, "manage.py", "ingest", str(lib), "--sync", "--workers", "2"],
            cwd=BASE_DIR,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            killer = _Killer(lib, run, {"once.mp4": [signal.SIGKILL], "always.mp4": [signal.SIGSEGV] * 3})
            deadline = time.monotonic() + 300
            while run.poll() is None and time.monotonic() < deadline:
                killer.poll()
                time.sleep(0.05)
            run.wait(timeout=max(1, deadline - time.monotonic()))
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    output = log.read_text()
    assert run.returncode == 0 and killer.done, output
    videos = {Path(v.path).name: v for v in Video.objects.all()}
    assert len(videos) == 4
    assert videos["once.mp4"].status == Video.Status.READY and videos["once.mp4"].attempts == 2
    always = videos["always.mp4"]
    assert always.status == Video.Status.FAILED and always.attempts == 3
    assert always.error == "the extraction process crashed 3 times (signal 11, SIGSEGV)"
    assert f"failed: always.mp4: {always.error}" in output
    assert [(videos[n].status, videos[n].attempts) for n in ("a.mp4", "b.mp4")] == [
        (Video.Status.READY, 1)
    ] * 2
    for video in videos.values():
        _all_or_nothing(video)
    assert videos["once.mp4"].frames.count() >= 120


def _cluster(tmp_path: Path) -> subprocess.Popen:
    log = open(tmp_path / "cluster.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=BASE_DIR,
        env=_env(ASTRADUP_Q_WORKERS="1", ASTRADUP_HEARTBEAT_SECONDS="2"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_cluster_worker_killed_mid_extraction_recovers_by_itself(tmp_path):
    """kill -9 of the worker process: the cluster starts another, which takes the video back at
    once (its claim's process is gone) instead of after the task's retry (35 minutes); a video
    that kills its worker every time ends failed with a reason, and its task is not redelivered
    for ever."""
    lib = _library(tmp_path)
    services.video_ingest(paths=[lib])  # enqueued, on commit
    cluster = _cluster(tmp_path)
    try:
        killer = _Killer(lib, cluster, {"once.mp4": [signal.SIGKILL], "always.mp4": [signal.SIGKILL] * 3})
        deadline, recovered_after = time.monotonic() + 300, None
        while time.monotonic() < deadline:
            killer.poll()
            once = Video.objects.get(path=str(lib / "once.mp4"))
            if once.status == Video.Status.READY and recovered_after is None:
                recovered_after = time.monotonic() - killer.killed_at[once.path]
            ended = Video.objects.exclude(status__in=[Video.Status.PENDING, Video.Status.PROCESSING])
            unmatched = ended.filter(status=Video.Status.READY, matched_at__isnull=True)
            if killer.done and ended.count() == 4 and not unmatched.exists():
                break
            assert cluster.poll() is None, "the cluster died"
            time.sleep(0.05)
    finally:
        cluster.terminate()
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
    logs = (tmp_path / "cluster.log").read_text()
    videos = {Path(v.path).name: v for v in Video.objects.all()}
    assert len(videos) == 4, logs
    assert killer.done and recovered_after is not None and recovered_after < 120, logs
    assert videos["once.mp4"].status == Video.Status.READY and videos["once.mp4"].attempts == 2, logs
    always = videos["always.mp4"]
    assert always.status == Video.Status.FAILED and always.attempts == 3, logs
    assert (
        always.error.startswith("the extraction process crashed 3 times (process ")
        and "ended" in always.error
    )
    assert [(videos[n].status, videos[n].attempts) for n in ("a.mp4", "b.mp4")] == [
        (Video.Status.READY, 1)
    ] * 2
    for video in videos.values():
        _all_or_nothing(video)
    assert videos["once.mp4"].frames.count() >= 120


STATE = """
import json
from django.db.models import Count, Max, Min
from dedup.models import AudioHash, Frame, Video
rows = []
for v in Video.objects.order_by("path"):
    f = Frame.objects.filter(video=v).aggregate(n=Count("id"), lo=Min("idx"), hi=Max("idx"))
    rows.append([v.rel_path, v.status, v.attempts, f["n"], f["lo"], f["hi"], AudioHash.objects.filter(video=v).count()])
print(json.dumps(rows))
"""


def _state(env: dict) -> list:
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", STATE],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr
    return json.loads(shell.stdout.strip().splitlines()[-1])


def _consistent(rows: list) -> None:
    for name, status, _attempts, n, lo, hi, hashes in rows:
        if status == "ready":
            assert n > 0 and lo == 0 and hi == n - 1, (name, n, lo, hi)
        else:
            assert n == 0 and hashes == 0, (name, status, n, hashes)


def test_killing_the_database_server_mid_ingest_loses_nothing_and_the_rerun_finishes(tmp_path):
    """The embedded PostgreSQL of a data folder of its own, killed (SIGKILL, every process of it)
    while `ingest --sync` extracts: the run stops; once the server is back (the next command
    starts it: crash recovery) no video is half-written, and a rerun takes back the claims of the
    dead run's processes at once and finishes every video, each once."""
    data = tmp_path / "data"
    env = dict(
        os.environ,
        ASTRADUP_DATA_DIR=str(data),
        ASTRADUP_MODEL_CACHE=settings.ASTRADUP["MODEL_CACHE"],
        ASTRADUP_LOG_LEVEL="INFO",
    )
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, "manage.py"]
    migrate = subprocess.run(
        [*manage, "migrate", "-v0"], cwd=BASE_DIR, env=env, capture_output=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr
    lib = _library(tmp_path)
    pgdata = data / "pg"
    log = tmp_path / "ingest.log"
    try:
        with open(log, "w") as out:
            run = subprocess.Popen(
                [*manage, "ingest", str(lib), "--sync", "--workers", "2"],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            killed = _kill_server_once_extracting(pgdata, run, deadline=time.monotonic() + 240)
            try:
                run.wait(timeout=180)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                raise
        assert killed, log.read_text()
        assert run.returncode != 0, log.read_text()  # the run stops: its database is gone
        before = _state(env)  # the server started again, after crash recovery
        assert len(before) == 4
        _consistent(before)
        assert any(status != "ready" for _, status, *_ in before)
        rerun = subprocess.run(
            [*manage, "ingest", str(lib), "--sync", "--workers", "2"],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "4 ready, 0 failed" in rerun.stdout, rerun.stdout
        after = _state(env)
        assert len(after) == 4 and all(status == "ready" for _, status, *_ in after), after
        _consistent(after)
        assert all(attempts <= 2 for _, _, attempts, *_ in after), after
    finally:
        _stop_server(pgdata)


def _postmaster(pgdata: Path) -> tuple[psutil.Process, str] | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return psutil.Process(int(lines[0])), lines[4]
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return None


def _kill_server_once_extracting(pgdata: Path, run: subprocess.Popen, *, deadline: float) -> bool:
    """Kill every process of the server as soon as a video is claimed and none is ready yet."""
    import psycopg

    while run.poll() is None and time.monotonic() < deadline:
        server = _postmaster(pgdata)
        if server is not None:
            postmaster, socket_dir = server
            try:
                with psycopg.connect(
                    host=socket_dir, dbname="astradup", user="postgres", autocommit=True
                ) as db:
                    busy = db.execute(
                        "SELECT count(*) FROM dedup_video WHERE status = 'processing'"
                    ).fetchone()[0]
            except psycopg.OperationalError:
                busy = 0
            if busy:
                processes = [postmaster, *postmaster.children(recursive=True)]
                for process in processes:
                    try:
                        process.kill()
                    except psutil.NoSuchProcess:
                        pass
                # gone, not left a zombie that the next start would take for a running server
                _, alive = psutil.wait_procs(processes, timeout=120)
                assert not alive, alive
                return True
        time.sleep(0.1)
    return False


def _stop_server(pgdata: Path) -> None:
    server = _postmaster(pgdata)
    if server is not None:
        postmaster, _ = server
        postmaster.terminate()
        try:
            postmaster.wait(30)
        except psutil.TimeoutExpired:
            postmaster.kill()


CLUSTER_STATE = """
SELECT v.rel_path, v.status, v.error, v.attempts, v.matched_at IS NOT NULL,
       (SELECT count(*) FROM dedup_frame f WHERE f.video_id = v.id),
       (SELECT count(DISTINCT idx) FROM dedup_frame f WHERE f.video_id = v.id),
       (SELECT min(idx) FROM dedup_frame f WHERE f.video_id = v.id),
       (SELECT max(idx) FROM dedup_frame f WHERE f.video_id = v.id),
       (SELECT count(*) FROM dedup_audiohash a WHERE a.video_id = v.id),
       (SELECT count(DISTINCT value) FROM dedup_audiohash a WHERE a.video_id = v.id),
       (SELECT count(*) FROM dedup_video w WHERE w.path = v.path)
FROM dedup_video v ORDER BY v.path
"""


def _query(socket_dir: str, sql: str) -> list | None:
    """Rows of `sql` on the cluster's database, or None while it is away."""
    import psycopg

    try:
        with psycopg.connect(
            host=socket_dir, dbname="astradup", user="postgres", autocommit=True, connect_timeout=5
        ) as db:
            return db.execute(sql).fetchall()
    except psycopg.OperationalError:
        return None


def _start_server(pgdata: Path, socket_dir: str) -> None:
    """Start the killed server again on its data folder and socket, as a supervisor would, with
    pgserver's own `pg_ctl start` (as its user when run as root): PostgreSQL's crash recovery."""
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    args = ["-w", "-t", "120", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata / "log"), "start"]
    pg_ctl(args, pgdata=pgdata, user=user, timeout=180)


def _cluster_processes(cluster: subprocess.Popen) -> list[psutil.Process]:
    return [psutil.Process(cluster.pid), *psutil.Process(cluster.pid).children(recursive=True)]


def test_killing_the_database_server_under_a_worker_cluster_recovers_by_itself(tmp_path):
    """The embedded PostgreSQL of a data folder of its own, killed (SIGKILL, every process of it)
    while a worker cluster extracts, then started again on the same data (as a supervisor would).
    Without restarting the cluster or rerunning anything: within two minutes of the server being
    back every video is ready (or failed with a reason), none half-written or recorded twice, and
    every process of the cluster is alive, idle, and takes new work."""
    data = tmp_path / "data"
    env = dict(
        os.environ,
        ASTRADUP_DATA_DIR=str(data),
        ASTRADUP_MODEL_CACHE=settings.ASTRADUP["MODEL_CACHE"],
        ASTRADUP_LOG_LEVEL="INFO",
        ASTRADUP_Q_WORKERS="2",
        ASTRADUP_HEARTBEAT_SECONDS="2",
    )
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, "manage.py"]
    migrate = subprocess.run(
        [*manage, "migrate", "-v0"], cwd=BASE_DIR, env=env, capture_output=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr
    lib = tmp_path / "library"
    lib.mkdir()
    for i, (source, tone) in enumerate(
        [("testsrc", 440), ("mandelbrot", 330), ("life", None), ("cells", 550)]
    ):
        make_clip(lib / f"v{i}.mp4", source=source, duration=20 if i < 2 else 4, size=(320, 240), tone=tone)
    ingest = subprocess.run(
        [*manage, "ingest", str(lib)], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr  # enqueued for the cluster
    pgdata = data / "pg"
    log = tmp_path / "cluster.log"
    cluster = None
    try:
        with open(log, "w") as out:
            cluster = subprocess.Popen(
                [*manage, "qcluster"],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        killed = _kill_server_once_extracting(pgdata, cluster, deadline=time.monotonic() + 240)
        assert killed, log.read_text()
        socket_dir = (pgdata / "postmaster.pid").read_text().splitlines()[4]  # left by the killed server
        # the server stays away until the cluster has met the outage: the extracting processes'
        # heartbeats fail, and the pusher has died on it and been started again
        deadline = time.monotonic() + 120
        met = ("heartbeat not recorded", "reincarnated pusher")
        while not all(m in log.read_text() for m in met) and time.monotonic() < deadline:
            assert cluster.poll() is None, log.read_text()
            time.sleep(0.2)
        _start_server(pgdata, socket_dir)
        back = time.monotonic()
        rows, settled_after = None, None
        while time.monotonic() < back + 300:
            assert cluster.poll() is None, "the cluster died\n" + log.read_text()
            rows = _query(socket_dir, CLUSTER_STATE)
            if rows and all(row[1] in ("ready", "failed") and (row[1] == "failed" or row[4]) for row in rows):
                settled_after = time.monotonic() - back
                break
            time.sleep(0.5)
        logs = log.read_text()
        assert settled_after is not None, (rows, logs)
        assert settled_after < 120, (settled_after, logs)
        assert len(rows) == 4, rows
        for (
            name,
            status,
            error,
            _attempts,
            _matched,
            n,
            distinct,
            lo,
            hi,
            hashes,
            hash_values,
            copies,
        ) in rows:
            assert copies == 1, (name, copies)  # one video per path
            assert n == distinct and hashes == hash_values, (name, n, distinct, hashes, hash_values)
            if status == "ready":
                assert n > 0 and lo == 0 and hi == n - 1, (name, n, lo, hi)
            else:
                assert error and n == 0 and hashes == 0, (name, status, error, n, hashes)
        assert all(row[1] == "ready" for row in rows), (rows, logs)
        assert all(row[3] <= 2 for row in rows), rows  # the outage costs at most one attempt
        # the cluster's every process still there, and takes new work
        processes = _cluster_processes(cluster)
        assert len(processes) == 2 + 2 + 2, processes  # qcluster, sentinel, 2 workers, monitor, pusher
        assert all(p.status() != psutil.STATUS_ZOMBIE for p in processes), processes
        make_clip(lib / "later.mp4", source="mandelbrot", duration=4, size=(192, 144), tone=440)
        again = subprocess.run(
            [*manage, "ingest", str(lib)], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0, again.stdout + again.stderr
        deadline = time.monotonic() + 240
        later = None
        while time.monotonic() < deadline:
            later = _query(
                socket_dir,
                "SELECT status, matched_at IS NOT NULL FROM dedup_video WHERE file_name = 'later.mp4'",
            )
            if later and later[0] == ("ready", True):
                break
            time.sleep(0.5)
        assert later and later[0] == ("ready", True), (later, log.read_text())
        # ... and none spins: CPU time over a few idle seconds stays small
        processes = _cluster_processes(cluster)
        before = {p.pid: sum(p.cpu_times()[:2]) for p in processes}
        start = time.monotonic()
        time.sleep(5)
        elapsed = time.monotonic() - start
        for p in processes:
            used = sum(p.cpu_times()[:2]) - before[p.pid]
            assert used < 0.5 * elapsed, (p.pid, p.cmdline(), used, elapsed)
    finally:
        if cluster is not None and cluster.poll() is None:
            cluster.terminate()
            try:
                cluster.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
        _stop_server(pgdata)
