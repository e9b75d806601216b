"""The production topology's processes on one machine, started with the standard library only:
nginx in front of gunicorn (deploy/nginx.conf.in). `make deploy-check` (scripts/deploy_check.py)
and the tests that put nginx in front of a server use these."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.in"
ACCEL_PREFIX = "/_protected"  # the internal location of deploy/nginx.conf.in
# the web server's and the workers' commands after the interpreter, in the deploy check and in
# docker-compose.yml alike (tests/test_compose.py holds the compose file to them)
GUNICORN = ["-m", "gunicorn", "-c", "python:astradup_site.gunicorn"]
WSGI_APP = "astradup_site.wsgi"
QCLUSTER = ["manage.py", "qcluster"]
# the compose file's nginx: the same template, rendered into deploy/nginx.compose.conf
COMPOSE_NGINX = {"listen": "8080", "upstream": "web:8000", "run_dir": Path("/tmp"), "log": "stderr"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, *, deadline: float, process: subprocess.Popen | None = None) -> None:
    """Until something accepts connections on 127.0.0.1:port; TimeoutError at the deadline
    (time.monotonic()), RuntimeError as soon as `process` has exited."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with status {process.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.2)


def nginx_config(
    *, listen: int | str, upstream: str, run_dir: Path, user: str | None = None, log: str | None = None
) -> str:
    """deploy/nginx.conf.in for nginx on 127.0.0.1:`listen` in front of `upstream` (host:port),
    its pid, log and temporary files under `run_dir` (a `listen` given as text is used as it
    is: "8080" listens on every address, as in a container). `user`: who its worker processes run as
    when it is started by root (nginx's default, nobody, cannot read a private temporary folder)."""
    text = NGINX_TEMPLATE.read_text()
    for name, value in {
        "USER": f"user {user};" if user and os.geteuid() == 0 else "",
        "RUN": str(run_dir),
        "LOG": log or str(run_dir / "nginx-error.log"),
        "UPSTREAM": upstream,
        "LISTEN": listen if isinstance(listen, str) else f"127.0.0.1:{listen}",
    }.items():
        text = text.replace(f"@@{name}@@", value)
    return text


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def start_nginx(*, listen: int, upstream: str, run_dir: Path, user: str | None = None) -> subprocess.Popen:
    """nginx in the foreground (its master is this Popen: SIGQUIT stops it gracefully, SIGTERM fast)."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (apt-get install nginx-light)")
    run_dir.mkdir(parents=True, exist_ok=True)
    conf = run_dir / "nginx.conf"
    conf.write_text(nginx_config(listen=listen, upstream=upstream, run_dir=run_dir, user=user))
    process = subprocess.Popen(
        [
            binary,
            "-c",
            str(conf),
            "-p",
            str(run_dir),
            "-e",
            str(run_dir / "nginx-error.log"),
            "-g",
            "daemon off;",
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_port(listen, deadline=time.monotonic() + 30, process=process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process
