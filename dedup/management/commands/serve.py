import os
import signal
import subprocess
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from dedup.checks import is_loopback_host

# seconds the worker cluster has to stop (a running task is waited for) before it is killed; its
# tasks then run again after the queue's retry time
STOP_TIMEOUT = 20


class Command(BaseCommand):
    help = "Migrate, then run the web server and a django-q2 worker cluster together (Ctrl-C stops both)."

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
        worker = subprocess.Popen([sys.executable, "manage.py", "qcluster"], start_new_session=True)

        def stop(signum, frame):
            # SIGTERM (docker stop, systemd, kill) takes Ctrl-C's way out, through the `finally`
            # that stops the worker cluster: by default it ended this process at once and left the
            # cluster (its own session) running; as a container's PID 1 it was ignored altogether
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            call_command("runserver", addrport, use_reloader=False)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop_cluster(worker)

    @staticmethod
    def _stop_cluster(worker: subprocess.Popen) -> None:
        """SIGTERM to the cluster's own process, which stops its processes in order (a worker
        finishes its task first) and, like every client of the embedded database, leaves it at
        exit. Signalled all at once, the cluster's processes died under it and it hung until
        killed, so the embedded database never saw it leave and outlived `serve`. A second signal
        kills the cluster at once (its task runs again after the queue's retry time)."""
        if worker.poll() is None:
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
        # a cluster killed, or signalled before it had set up its own handling, never left
        if "lib.embedded_db" in sys.modules:
            from lib.embedded_db import forget_dead_clients

            forget_dead_clients()
