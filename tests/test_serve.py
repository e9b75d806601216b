"""`manage.py serve` (what `make run` and the container start) stops its worker cluster with it."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

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
        workers = [
            p
            for p in psutil.Process(server.pid).children(recursive=True)
            if "qcluster" in " ".join(p.cmdline())
        ]
        assert workers
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if server.poll() is None:
            server.kill()
        for p in workers:  # left running when the test fails
            if p.is_running():
                p.kill()
        # the embedded database of this test's data dir outlives its clients, as pgserver's does
        for p in psutil.process_iter(["cmdline"]):
            if str(tmp_path) in " ".join(p.info["cmdline"] or []) and p.pid != os.getpid():
                try:
                    p.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
                except psutil.Error:
                    pass
