"""`manage.py serve` (what `make run` and the container start) stops its worker cluster with it."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from dedup.management.commands import serve

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path: Path) -> tuple[subprocess.Popen, dict, list[psutil.Process]]:
    """`manage.py serve` up, and its worker cluster's processes (the cluster's own, the sentinel,
    the monitor, the pusher and one worker)."""
    port = _free_port()
    env = dict(os.environ, ASTRADUP_DATA_DIR=str(tmp_path / "data"), ASTRADUP_Q_WORKERS="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[psutil.Process] = []
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.5)
        while len(workers) < 5:
            assert time.monotonic() < deadline, "the worker cluster did not start"
            time.sleep(0.5)
            workers = [
                p
                for p in psutil.Process(server.pid).children(recursive=True)
                if "qcluster" in " ".join(p.cmdline())
            ]
    except BaseException:
        _stop(server, workers, tmp_path)
        raise
    return server, env, workers


def _stop(server: subprocess.Popen, workers: list[psutil.Process], tmp_path: Path) -> None:
    """What a failed test leaves running."""
    if server.poll() is None:
        server.kill()
    for p in workers:
        if p.is_running():
            p.kill()
    _stop_database(tmp_path)


def _assert_stopped(*groups: list[psutil.Process]) -> None:
    for processes in groups:
        gone, alive = psutil.wait_procs(processes, timeout=30)
        assert not alive, [p.cmdline() for p in alive]


def test_serve_runs_gunicorn_with_hashed_static_files(tmp_path):
    """No `runserver` in what `make run` starts: gunicorn answers, and the pages link the static
    files by their hashed names (collected at start), which are served with a long cache life."""
    server, env, workers = _serve(tmp_path)
    try:
        port = _port(server)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as response:
            assert response.headers["Server"].startswith("gunicorn")
            page = response.read().decode()
        css = re.search(r'href="(/static/astradup\.[0-9a-f]{12}\.css)"', page)
        assert css, "the stylesheet is not linked by its hashed name"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{css.group(1)}", timeout=10) as response:
            assert response.status == 200 and "immutable" in response.headers["Cache-Control"]
        web = [
            p
            for p in psutil.Process(server.pid).children(recursive=True)
            if "gunicorn" in " ".join(p.cmdline())
        ]
        assert len(web) >= 2  # the arbiter and its worker processes
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        _assert_stopped(web, workers, _database_processes(tmp_path))
    finally:
        _stop(server, workers, tmp_path)


def _port(server: subprocess.Popen) -> int:
    return int(server.args[-1].rpartition(":")[2])


def test_sigterm_stops_the_server_and_its_worker_cluster(tmp_path):
    server, _, workers = _serve(tmp_path)
    try:
        database = _database_processes(tmp_path)
        assert database
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        # the idle cluster stops in order, well before serve would kill it
        assert time.monotonic() - started < serve.STOP_TIMEOUT
        _assert_stopped(workers, database)  # the database: with its last client
    finally:
        _stop(server, workers, tmp_path)


def test_a_second_sigterm_stops_a_busy_cluster_at_once_and_still_the_database(tmp_path):
    """The cluster waits for a running task; a second signal (Ctrl-C twice) must not wait it out,
    nor cut short the clean-up that lets the embedded database stop."""
    server, env, workers = _serve(tmp_path)
    try:
        # a task that runs a program, so the test sees it running
        enqueue = "from django_q.tasks import async_task; async_task('subprocess.run', ['sleep', '120'])"
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", enqueue], cwd=ROOT, env=env, check=True, timeout=60
        )
        deadline = time.monotonic() + 60
        while not (
            task := [p for p in psutil.Process(server.pid).children(recursive=True) if p.name() == "sleep"]
        ):
            assert time.monotonic() < deadline, "the task did not start"
            time.sleep(0.5)
        workers += task
        database = _database_processes(tmp_path)
        server.send_signal(signal.SIGTERM)
        time.sleep(2)
        assert server.poll() is None  # waiting for the task to finish
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        assert time.monotonic() - started < 10  # not the rest of STOP_TIMEOUT, nor the task's 120 s
        _assert_stopped(workers, database)
    finally:
        _stop(server, workers, tmp_path)


def test_the_embedded_database_stops_after_its_last_client_even_if_one_was_killed(tmp_path):
    """pgserver stops the server when the last process that joined it exits. A client killed
    outright never says it left; the next one to join forgets it, so the server still stops."""
    pgdata = tmp_path / "pg"
    join = f"from pathlib import Path; from lib.embedded_db import embedded_database_settings as e; e(Path({str(pgdata)!r}))"
    killed = subprocess.Popen([sys.executable, "-c", join + "; import time; time.sleep(600)"], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not _database_processes(tmp_path) or killed.pid not in _clients(pgdata):
            assert time.monotonic() < deadline, "the first client did not start the database"
            time.sleep(0.2)
        killed.kill()
        killed.wait()
        assert killed.pid in _clients(pgdata)  # never removed: the server would run on for good
        subprocess.run([sys.executable, "-c", join], cwd=ROOT, check=True, timeout=60)
        gone, alive = psutil.wait_procs(_database_processes(tmp_path), timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if killed.poll() is None:
            killed.kill()
        _stop_database(tmp_path)


def _clients(pgdata: Path) -> list[int]:
    handles = pgdata / ".handle_pids.json"
    return json.loads(handles.read_text()) if handles.exists() else []


def _database_processes(tmp_path: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]


def _stop_database(tmp_path: Path) -> None:
    """What a failed test leaves running."""
    for p in _database_processes(tmp_path):
        try:
            p.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
        except psutil.Error:
            pass
