"""gunicorn's settings for AstraDup (`gunicorn -c python:astradup_site.gunicorn astradup_site.wsgi`):
what `manage.py serve`, `make deploy-check` and the container all start.

Threads, not only processes: the Django range view streams whole videos where no nginx sends
them (ASTRADUP_ACCEL_REDIRECT unset), and one slow player must not hold a whole process."""

import os

from lib.env import env_int, env_str

bind = [env_str("ASTRADUP_ADDR", "127.0.0.1:8000")]
workers = env_int("ASTRADUP_WEB_WORKERS", 2)
threads = env_int("ASTRADUP_WEB_THREADS", 4)
worker_class = "gthread"
# an upload of ASTRADUP_UPLOAD_MAX_MB over a slow link, and a calibration, run in one request
timeout = env_int("ASTRADUP_WEB_TIMEOUT", 300)
# what a SIGTERM leaves requests in flight to finish in; then they are cut
graceful_timeout = env_int("ASTRADUP_WEB_GRACEFUL_TIMEOUT", 15)
# the access log on stderr with the rest; the error log's lines go through Django's LOGGING
# (JSON with ASTRADUP_LOG_FORMAT=json) once a worker has loaded the application
accesslog = "-" if env_str("ASTRADUP_ACCESS_LOG", "1") not in ("0", "false", "no", "off") else None
# X-Forwarded-* are believed from the local proxy only (DJANGO_BEHIND_PROXY decides for Django)
forwarded_allow_ips = "127.0.0.1,::1"


def child_exit(server, worker):
    """A web process's request metrics stay in the shared directory after it exits (the counters
    are totals); its gauges, which would freeze, are dropped."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


if env_str("ASTRADUP_LOG_FORMAT", "plain") == "json":
    # gunicorn's own loggers (its errors, the access log) as JSON lines like Django's (the same
    # formatter as settings.LOG_FORMATTERS; settings are not imported here: in the arbiter they
    # would start the embedded database)
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                "rename_fields": {
                    "asctime": "time",
                    "levelname": "level",
                    "name": "logger",
                    "process": "pid",
                },
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
