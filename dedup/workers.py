"""Entry points for extraction processes started with `spawn` (ingest --sync, benchmarks).

Kept free of model imports at module level: a spawned child imports this module before Django is set up.
"""

import logging
import os
import signal
from collections import deque

logger = logging.getLogger(__name__)


def init() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "astradup_site.settings")
    django.setup()
    from dedup.features.audio import warm_up

    warm_up()


def extract(video_id: int) -> tuple[int, str, str]:
    from dedup.services.extraction import video_extract

    video = video_extract(video_id=video_id)
    return video.pk, video.status, video.error


def serve(conn) -> None:
    """An extraction process of `extract_many`: says it is ready, then extracts each video id it
    is sent and answers with the outcome, until it is sent None."""
    from django.db import connections

    init()
    from dedup.services.claims import claimant

    conn.send(("ready", claimant()))
    try:
        while (video_id := conn.recv()) is not None:
            try:
                conn.send(("done", extract(video_id)))
            except Exception as exc:
                # the database went away, most likely: the parent stops the run, the claim is left
                # to a rerun (which finds this process gone)
                logger.exception("extraction of video %s stopped", video_id)
                conn.send(("error", f"video {video_id}: {type(exc).__name__}: {exc}"))
    except (EOFError, KeyboardInterrupt):
        pass  # the parent is gone or stopping
    finally:
        connections.close_all()


class ExtractionAborted(RuntimeError):
    """An extraction process failed on something other than its video (its traceback attached)."""


def exit_cause(exitcode: int | None) -> str:
    """How a child process ended, in words: "signal 11, SIGSEGV", "exit status 1"."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"signal {-exitcode}, {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


# Extraction processes that may die before they are ready, one after the other, before the run
# stops: a process that cannot start (a broken install, no database) would otherwise be restarted
# for ever.
START_FAILURES = 3


class _Pool:
    """Extraction processes, each sent one video at a time. Unlike ProcessPoolExecutor (whose
    every process is killed when one dies, and the run with them) a process that dies (a native
    crash in a decoder, the OOM killer, kill -9) costs only the video it was extracting: that
    video counts the attempt (`services.video_crash_settle`: pending again and sent once more,
    or failed at the attempt limit), a new process takes its place, and the others go on."""

    def __init__(self, video_ids: list[int], workers: int):
        from multiprocessing import get_context

        self.context = get_context("spawn")
        self.todo = deque(video_ids)
        self.size = min(workers, len(video_ids))
        self.children: dict = {}  # Process -> [connection, claimant or None until ready, video id]
        self.start_failures = 0
        self.deaths: dict[int, int] = {}  # video id -> processes that died on it in this run

    def _start(self) -> None:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=serve, args=(child,), name="extraction", daemon=True)
        process.start()
        child.close()
        self.children[process] = [parent, None, None]

    def _next(self, process) -> None:
        conn, _, _ = self.children[process]
        video_id = self.todo.popleft() if self.todo else None
        self.children[process][2] = video_id
        try:
            conn.send(video_id)
        except OSError:
            pass  # it died: its sentinel says so next, and its video goes back in line

    def _died(self, process) -> None:
        from django.conf import settings

        from dedup.models import Video
        from dedup.services.claims import video_crash_settle

        conn, claimed_by, video_id = self.children.pop(process)
        conn.close()
        process.join()
        cause = exit_cause(process.exitcode)
        if claimed_by is None:
            self.start_failures += 1
            if self.start_failures >= START_FAILURES:
                raise ExtractionAborted(f"the extraction processes could not start ({cause})")
        elif video_id is not None:
            self.start_failures = 0
            status = video_crash_settle(video_id=video_id, claimed_by=claimed_by, cause=cause)
            logger.warning("extraction process died (%s) on video %s: %s", cause, video_id, status)
            self.deaths[video_id] = self.deaths.get(video_id, 0) + 1
            # bounded here too, for a process that died before its claim counted the attempt
            limit = settings.ASTRADUP["EXTRACT_ATTEMPTS"]
            if status == Video.Status.PENDING and self.deaths[video_id] < limit:
                self.todo.append(video_id)
        if self.todo and len(self.children) < self.size:
            self._start()

    def run(self):
        """Yield each video id as it is done (ready, failed, or left to another process)."""
        from multiprocessing.connection import wait

        for _ in range(self.size):
            self._start()
        try:
            while self.children:
                ends = {p.sentinel: p for p in self.children} | {c[0]: p for p, c in self.children.items()}
                for ready in wait(list(ends)):
                    process = ends[ready]
                    if process not in self.children:
                        continue  # its sentinel and its pipe were both ready: handled once
                    conn = self.children[process][0]
                    try:
                        message = conn.recv() if conn.poll() else None
                    except (EOFError, OSError):
                        message = None
                    if message is None:
                        if not process.is_alive():
                            self._died(process)
                        continue
                    kind, value = message
                    if kind == "ready":
                        self.children[process][1] = value
                        self.start_failures = 0
                        self._next(process)
                    elif kind == "done":
                        yield value[0]
                        self._next(process)
                    else:
                        raise ExtractionAborted(value)
        finally:
            for process, (conn, *_) in self.children.items():
                process.terminate()
                conn.close()
            for process in self.children:
                process.join()


def extract_many(video_ids: list[int], *, workers: int, progress=lambda items, desc: items) -> None:
    """Extract videos in this process (workers <= 1) or in extraction processes started with
    `spawn` (see `_Pool`: one of them crashing costs one video an attempt, not the run)."""
    from django.db import connections

    from dedup.features.audio import warm_up
    from dedup.services.extraction import embedder_prepare, video_extract

    if not video_ids:
        return
    if workers <= 1 or len(video_ids) == 1:
        # in this process (no start-up of another): a native crash ends the command, and the
        # rerun finds the claim's process gone and tries the video again, or fails it at the
        # attempt limit
        warm_up()
        for video_id in progress(video_ids, "extract"):
            video_extract(video_id=video_id)
        return
    embedder_prepare()
    connections.close_all()  # children open their own connections
    for _ in progress(_Pool(video_ids, workers).run(), "extract"):
        pass
