import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from dedup.checks import is_loopback_host

# seconds the worker cluster has to stop (a running task is waited for) before it is killed; its
# tasks then run again after the queue's retry time
STOP_TIMEOUT = 20


def web_environment(data_dir: Path) -> dict[str, str]:
    """The environment of the web server and the cluster: prometheus-client's multi-process mode
    over a folder emptied at each start, so /metrics adds up the request counts of every gunicorn
    process (each process counts its own; the folder is where they meet)."""
    env = dict(os.environ)
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = data_dir / "metrics"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return env


class Command(BaseCommand):
    help = (
        "Migrate and collect the static files, then run the web server (gunicorn) and a django-q2 "
        "worker cluster together (Ctrl-C stops both)."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default=os.environ.get("ASTRADUP_ADDR", "127.0.0.1:8000"))

    def handle(self, *args, addrport: str, **options):
        host, _, port = addrport.rpartition(":")
        if settings.DEBUG and not is_loopback_host(host or "127.0.0.1"):
            raise CommandError(
                f"Refusing to serve on {addrport} with DJANGO_DEBUG on: error pages would show "
                "tracebacks and settings to every machine that reaches it. Unset DJANGO_DEBUG (it "
                "defaults to off) or serve on 127.0.0.1."
            )
        # the cache table comes with the migrations (dedup 0011), so every way of starting has it
        call_command("migrate", verbosity=0, skip_checks=False)  # with the database checks (dedup.checks)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write(self.style.SUCCESS(f"AstraDup is starting at http://{host or '127.0.0.1'}:{port}/"))
        if not get_user_model().objects.exists():
            self.stdout.write(
                "No user exists yet. Create the first one with:\n  .venv/bin/python manage.py createsuperuser"
            )
        self.stdout.write("Add videos with: .venv/bin/python manage.py ingest /path/to/videos")
        env = web_environment(Path(settings.DATA_DIR))
        # the migrate above left connections open: gunicorn's workers must not share them
        connections.close_all()
        worker = subprocess.Popen([sys.executable, "manage.py", "qcluster"], start_new_session=True, env=env)
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:astradup_site.gunicorn", "--bind", addrport]
            + ["astradup_site.wsgi"],
            start_new_session=True,  # Ctrl-C reaches this process only, which stops both in order
            env=env,
        )

        def stop(signum, frame):
            # SIGTERM (docker stop, systemd, kill) takes Ctrl-C's way out, through the `finally`
            # that stops the web server and the worker cluster: by default it ended this process at
            # once and left them (their own sessions) running; as a container's PID 1 it was ignored
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            web.wait()  # returns by itself only when gunicorn could not start (the port is taken)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(web, worker)
        if web.returncode not in (0, -signal.SIGTERM):
            raise CommandError(f"the web server (gunicorn) exited with status {web.returncode}")

    @classmethod
    def _stop(cls, web: subprocess.Popen, worker: subprocess.Popen) -> None:
        """The web server first (gunicorn lets requests in flight finish within its graceful
        timeout), then the cluster. A second Ctrl-C or SIGTERM stops the waiting for either."""
        hurry = False
        if web.poll() is None:
            web.terminate()
            try:
                web.wait(timeout=STOP_TIMEOUT)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                hurry = True
        try:
            os.killpg(web.pid, signal.SIGKILL)  # a web process that outlived its graceful timeout
        except ProcessLookupError:
            pass
        cls._stop_cluster(worker, hurry=hurry)
        web.wait()

    @staticmethod
    def _stop_cluster(worker: subprocess.Popen, *, hurry: bool = False) -> None:
        """SIGTERM to the cluster's own process, which stops its processes in order (a worker
        finishes its task first) and, like every client of the embedded database, leaves it at
        exit. Signalled all at once, the cluster's processes died under it and it hung until
        killed, so the embedded database never saw it leave and outlived `serve`. A second signal
        kills the cluster at once (its task runs again after the queue's retry time)."""
        if worker.poll() is None and not hurry:
            worker.terminate()
            try:
                worker.wait(timeout=STOP_TIMEOUT)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                pass  # a second Ctrl-C or SIGTERM while a task runs: stop now rather than wait it out
        # from here nothing may interrupt the clean-up, or the embedded database would outlive us
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            os.killpg(worker.pid, signal.SIGKILL)  # what did not stop in time, and any orphan
        except ProcessLookupError:
            pass
        worker.wait()
        # a cluster or web process killed, or signalled before it had set up its own handling, never left
        if "lib.embedded_db" in sys.modules:
            from lib.embedded_db import forget_dead_clients

            forget_dead_clients()
