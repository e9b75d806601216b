"""Database outages: work that outlasts a database going away and coming back."""

import logging
import time

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

# Errors of a database that went away (server killed or restarted, network lost), as against
# errors of a statement: the same work succeeds once it is back.
OUTAGE_ERRORS = (OperationalError, InterfaceError)


def database_wait(*, timeout: float) -> bool:
    """After an outage error: this thread's broken connection dropped, then a new one tried (every
    0.5 s, backing off to 5 s) until the database answers (True) or `timeout` seconds pass."""
    deadline, delay = time.monotonic() + timeout, 0.5
    while True:
        try:
            connection.close()
        except OUTAGE_ERRORS:
            pass  # closing a dead connection can fail; it is dropped either way
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except OUTAGE_ERRORS:
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 5)


def outlasting_outages(work, *, wait: float, again=lambda: None, tries: int = 3):
    """`work()`, run again after a database outage it meets (for worker tasks: a long-lived worker
    process keeps its broken connection, and django-q2 acknowledges a failed task, so a task failing
    on the outage would be lost: a video left pending with nothing queued, a match never made).
    Waits up to `wait` seconds for the database, then calls `again()` (to undo what the interrupted
    `work` left) and `work()`; raises the error if the database stays away, or at the `tries`-th
    (a deadlock or a cancelled statement is an OperationalError too, and may come back each time)."""
    for tried in range(1, tries + 1):
        try:
            return work()
        except OUTAGE_ERRORS as exc:
            logger.warning("database error (%s): waiting up to %d s to carry on", exc, wait)
            if tried == tries or not database_wait(timeout=wait):
                raise
            again()
