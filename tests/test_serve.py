"""`manage.py serve` (what `make run` and the container start) stops its worker cluster with it."""

import json
import os
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


def test_sigterm_stops_the_server_and_its_worker_cluster(tmp_path):
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
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.5)
        # the cluster running: its process, the sentinel, the monitor, the pusher and one worker
        while len(workers) < 5:
            assert time.monotonic() < deadline, "the worker cluster did not start"
            time.sleep(0.5)
            workers = [
                p
                for p in psutil.Process(server.pid).children(recursive=True)
                if "qcluster" in " ".join(p.cmdline())
            ]
        database = _database_processes(tmp_path)
        assert database
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        # the idle cluster stops in order, well before serve would kill it
        assert time.monotonic() - started < serve.STOP_TIMEOUT
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
        # and the embedded database stops with its last client
        gone, alive = psutil.wait_procs(database, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if server.poll() is None:
            server.kill()
        for p in workers:  # left running when the test fails
            if p.is_running():
                p.kill()
        _stop_database(tmp_path)


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
