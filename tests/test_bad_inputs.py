"""A corpus of bad inputs, ingested as a user would (`ingest --sync` in a child process, bounded in
time): every file ends `ready` or `failed` with a reason that names its real cause, no process
dies, the good clip beside them is extracted and matched as usual, and memory stays bounded.

Most kinds share one folder and one ingest; kinds that today hang or kill the process they are
extracted in get a folder and an ingest of their own (beside a good clip of their own), so that
they fail their own test only. Files changed after they were recorded are recorded in this
process, changed, then extracted in a child."""

import contextlib
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from . import bad_media as bm
from .media import make_clip, transcode, with_display_matrix

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

READY, FAILED = "ready", "failed"
RUN_TIMEOUT = 900  # seconds the ingests may take on a loaded 2-core machine (two minutes here)
MAX_RSS_BYTES = 1536 << 20  # peak memory of an ingest process, its extraction children included


@dataclass(frozen=True)
class Kind:
    name: str
    file: str  # its name in its folder
    make: Callable[[Path, Path], object]  # (path, a good clip to cut up)
    outcomes: tuple[str, ...]  # READY and/or FAILED
    words: tuple[str, ...] = ()  # a failed one's reason names one of these (case-insensitive)
    skippable: bool = False  # ingest may leave it out altogether (not a regular file, not a video)
    group: str = "main"  # "main": the shared folder; "alone": a folder of its own; "changed": see module doc
    xfail: str = ""
    change: Callable[[Path], object] | None = None  # for "changed": what happens after ingest


NOT_VIDEO = ("not a readable video",)
CORRUPT = ("corrupt", "truncated", "no decodable")
NOT_REGULAR = ("not a regular file",)


def _x264(**kw):
    return lambda p, good: bm.x264(p, **kw)


def _append(path: Path) -> None:
    with open(path, "ab") as fh:
        fh.write(b"\0" * 50_000)


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _to_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


KINDS = [
    # broken or not-video bytes
    Kind("empty", "empty.mp4", lambda p, g: p.write_bytes(b""), (FAILED,), ("empty",)),
    Kind("random_bytes", "noise.mp4", lambda p, g: bm.random_bytes(p), (FAILED,), NOT_VIDEO),
    Kind(
        "text_named_mkv", "notes.mkv", lambda p, g: p.write_text("not a video\n" * 400), (FAILED,), NOT_VIDEO
    ),
    Kind("moov_cut_off", "battery-died.mp4", lambda p, g: bm.moov_cut_off(p), (FAILED,), NOT_VIDEO),
    Kind("moov_missing", "no-index.mp4", lambda p, g: bm.without_moov(p), (FAILED,), NOT_VIDEO),
    Kind(
        "truncated_half",
        "half.mp4",
        lambda p, g: bm.truncated(p, bm.faststart(p), 0.5),
        (READY, FAILED),
        CORRUPT,
    ),
    Kind("corrupted_middle", "scrambled.mp4", lambda p, g: bm.corrupted_middle(p), (READY, FAILED), CORRUPT),
    Kind(
        "empty_video_track",
        "no-pictures.mkv",
        lambda p, g: bm.empty_video_track(p, g),
        (FAILED,),
        ("no pictures",),
    ),
    Kind(
        "raw_h264_named_mp4",
        "raw.mp4",
        lambda p, g: bm.encode(p, "-c:v", "libx264", "-preset", "ultrafast", fmt=("-f", "h264")),
        (READY,),
    ),
    Kind(
        "audio_only",
        "song.mp4",
        lambda p, g: bm.encode(p, source="sine=duration=2", acodec=()),
        (FAILED,),
        ("audio-only",),
    ),
    Kind(
        "audio_with_cover_art", "album.mp4", lambda p, g: bm.audio_with_cover(p), (FAILED,), ("audio-only",)
    ),
    # unusual but valid video
    Kind("one_frame", "one-frame.mp4", _x264(duration=0.1), (READY,)),
    Kind("video_without_audio", "silent.mp4", _x264(), (READY,)),
    Kind(
        "huge_8000x8000",
        "huge.mp4",
        lambda p, g: bm.x264(p, source="testsrc2=size=8000x8000:rate=1", duration=2),
        (READY,),
    ),
    Kind(
        "very_wide_16384x16",
        "wide.mp4",
        lambda p, g: bm.x264(p, source="testsrc2=size=16384x16:rate=10"),
        (READY,),
    ),
    Kind("tiny_16x16", "tiny.mp4", lambda p, g: bm.x264(p, source="testsrc2=size=16x16:rate=10"), (READY,)),
    Kind(
        "odd_161x121",
        "odd.mkv",
        lambda p, g: bm.encode(p, "-c:v", "ffv1", source="testsrc2=size=161x121:rate=10"),
        (READY,),
    ),
    Kind("yuv420p10", "ten-bit.mkv", _x264(pix_fmt="yuv420p10le"), (READY,)),
    Kind("yuv444p", "full-chroma.mp4", _x264(pix_fmt="yuv444p"), (READY,)),
    Kind(
        "rgb24",
        "rgb.mkv",
        lambda p, g: bm.encode(p, "-c:v", "libx264rgb", "-preset", "ultrafast", "-pix_fmt", "rgb24"),
        (READY,),
    ),
    Kind("gray", "gray.mkv", lambda p, g: bm.encode(p, "-c:v", "ffv1", "-pix_fmt", "gray"), (READY,)),
    Kind(
        "yuva420p_vp9",
        "alpha.webm",
        lambda p, g: bm.encode(
            p, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuva420p"
        ),
        (READY,),
    ),
    Kind(
        "rgba_png_in_mkv", "png.mkv", lambda p, g: bm.encode(p, "-c:v", "png", "-pix_fmt", "rgba"), (READY,)
    ),
    Kind(
        "mjpeg_avi",
        "camera.avi",
        lambda p, g: bm.encode(
            p, "-c:v", "mjpeg", "-pix_fmt", "yuvj422p", audio=bm.TONE, acodec=("-c:a", "pcm_s16le")
        ),
        (READY,),
    ),
    Kind("vfr", "vfr.mp4", _x264(vf="select='lt(random(0)\\,0.5)'", fmt=("-fps_mode", "vfr")), (READY,)),
    Kind(
        "interlaced",
        "interlaced.mkv",
        _x264(vf="tinterlace=mode=interleave_top", fmt=("-flags", "+ildct+ilme")),
        (READY,),
    ),
    Kind(
        "rotated_display_matrix",
        "phone.mp4",
        lambda p, g: with_display_matrix(g, p, 90),
        (READY,),
    ),
    Kind(
        "hevc",
        "hevc.mp4",
        lambda p, g: bm.encode(
            p,
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=none",
            audio=bm.TONE,
        ),
        (READY,),
    ),
    Kind(
        "vp9_opus_webm",
        "vp9.webm",
        lambda p, g: bm.encode(
            p,
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            audio=bm.TONE,
            acodec=("-c:a", "libopus"),
        ),
        (READY,),
    ),
    Kind(
        "av1",
        "av1.mkv",
        lambda p, g: bm.encode(p, "-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime"),
        (READY,),
    ),
    Kind(
        "mpeg2_ts",
        "broadcast.ts",
        lambda p, g: bm.encode(p, "-c:v", "mpeg2video", audio=bm.TONE, acodec=("-c:a", "mp2")),
        (READY,),
    ),
    Kind("ts_starting_at_10h", "late.ts", _x264(audio=bm.TONE, fmt=("-output_ts_offset", "36000")), (READY,)),
    Kind("mkv_without_cues", "piped.mkv", lambda p, g: bm.mkv_without_cues(p), (READY,)),
    Kind(
        "fragmented_mp4",
        "fragmented.mp4",
        _x264(audio=bm.TONE, fmt=("-movflags", "frag_keyframe+empty_moov")),
        (READY,),
    ),
    Kind("declared_thirty_years", "forever.mkv", lambda p, g: bm.declared_forever(p), (READY,)),
    # odd audio
    Kind("audio_5_1", "surround.mp4", lambda p, g: bm.with_audio(p, "5.1"), (READY,)),
    Kind("audio_3_channels", "three.mkv", lambda p, g: bm.with_audio(p, "3.0"), (READY,)),
    Kind("audio_mono_8khz", "phone-call.mp4", lambda p, g: bm.with_audio(p, "mono", rate=8000), (READY,)),
    Kind("audio_96khz", "hires.mkv", lambda p, g: bm.with_audio(p, "stereo", rate=96000), (READY,)),
    Kind(
        "audio_opus_mono_mkv",
        "opus.mkv",
        lambda p, g: bm.with_audio(p, "mono", rate=48000, acodec=("-c:a", "libopus")),
        (READY,),
    ),
    Kind(
        "audio_pcm_s24le_mov",
        "studio.mov",
        lambda p, g: bm.with_audio(p, "stereo", rate=48000, acodec=("-c:a", "pcm_s24le")),
        (READY,),
    ),
    Kind(
        "audio_7_1",
        "cinema.mkv",
        lambda p, g: bm.with_audio(p, "7.1"),
        (READY,),
        group="alone",
    ),
    # not regular files, links, names, permissions
    Kind(
        "directory_named_mp4",
        "folder.mp4",
        lambda p, g: (p.mkdir(), shutil.copy(g, p / "inside.mp4")),
        (READY,),
        skippable=True,
    ),
    Kind("unix_socket", "socket.mp4", lambda p, g: bm.unix_socket(p), (FAILED,), NOT_REGULAR, skippable=True),
    Kind(
        "symlink_loop",
        "loop.mp4",
        lambda p, g: bm.symlink_loop(p),
        (FAILED,),
        ("symlink loop",),
        skippable=True,
    ),
    Kind(
        "dangling_symlink",
        "dangling.mp4",
        lambda p, g: bm.dangling_symlink(p),
        (FAILED,),
        ("broken symlink",),
        skippable=True,
    ),
    Kind(
        "symlink_outside_root",
        "elsewhere.mp4",
        lambda p, g: p.symlink_to(g),
        (FAILED,),
        ("outside",),
        skippable=True,
    ),
    Kind(
        "fifo_named_mp4",
        "pipe.mp4",
        lambda p, g: bm.fifo(p),
        (FAILED,),
        NOT_REGULAR,
        skippable=True,
        group="alone",
    ),
    Kind(
        "fifo_without_extension",
        "pipe",
        lambda p, g: bm.fifo(p),
        (FAILED,),
        NOT_REGULAR,
        skippable=True,
        group="alone",
    ),
    Kind(
        "non_utf8_name",
        "bad\udcff.mp4",
        lambda p, g: shutil.copy(g, p),
        (READY, FAILED),
        ("name",),
        skippable=True,
        group="alone",
    ),
    Kind(
        "unreadable",
        "locked.mp4",
        lambda p, g: (shutil.copy(g, p), p.chmod(0)),
        (FAILED,),
        ("permission denied",),
        skippable=True,
        group="alone",
    ),
    # changed after it was recorded, before it was extracted
    Kind(
        "appended_after_ingest",
        "grew.mp4",
        lambda p, g: shutil.copy(g, p),
        (READY, FAILED),
        ("changed",),
        group="changed",
        change=_append,
    ),
    Kind(
        "truncated_after_ingest",
        "shrank.mp4",
        lambda p, g: shutil.copy(g, p),
        (READY, FAILED),
        ("changed", *CORRUPT, *NOT_VIDEO),
        group="changed",
        change=_cut,
    ),
    Kind(
        "vanished_after_ingest",
        "vanished.mp4",
        lambda p, g: shutil.copy(g, p),
        (FAILED,),
        ("not found",),
        group="changed",
        change=Path.unlink,
    ),
    Kind(
        "replaced_by_text_after_ingest",
        "replaced.mp4",
        lambda p, g: shutil.copy(g, p),
        (FAILED,),
        ("changed", *NOT_VIDEO),
        group="changed",
        change=lambda p: p.write_text("gone\n" * 100),
    ),
    Kind(
        "replaced_by_fifo_after_ingest",
        "became-fifo.mp4",
        lambda p, g: shutil.copy(g, p),
        (FAILED,),
        NOT_REGULAR,
        group="changed",
        change=_to_fifo,
    ),
]


def _database_url(socket_dir: Path | None = None) -> str:
    db = connection.settings_dict
    host = str(socket_dir or db["HOST"])
    host = quote(host, safe="") if host.startswith("/") else host
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}{port}/{db['NAME']}"


@dataclass
class Run:
    rc: int | None  # None: still running at its deadline (killed)
    output: str
    max_rss: int  # bytes: the peak of the process and of its extraction children
    seconds: float


class _Pump(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.server.upstream)
        back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
        back.start()
        _pump(self.request, upstream)
        back.join()
        upstream.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def _database_relay(folder: Path):
    """The database's socket relayed into `folder`, for a child that drops root's right to read
    anything: the embedded server's own socket lies in a folder only its user may enter."""
    db = connection.settings_dict
    name = f".s.PGSQL.{db['PORT'] or 5432}"
    folder.mkdir(parents=True, exist_ok=True)
    server = socketserver.ThreadingUnixStreamServer(str(folder / name), _Pump)
    server.daemon_threads = True
    server.upstream = str(Path(db["HOST"]) / name)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder
    finally:
        server.shutdown()
        server.server_close()


# Runs the command it is given as its own child and writes that child's peak memory (its
# extraction children included) to the file named first. Linux carries a process's peak over
# exec from the memory it was forked with: a command started straight from this test process
# would report pytest's own size, 1.7 GB late in the full suite, rather than its own.
LAUNCHER = """
import os, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss << 10))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


class _Child:
    """A manage.py command in a child process of its own session (started by `LAUNCHER`, which
    measures its peak memory from a small process), reaped with wait4."""

    def __init__(
        self, folder: Path, *args: str, prefix: tuple[str, ...] = (), socket_dir: Path | None = None
    ):
        self.log = folder.parent / f"{folder.name}.log"
        self.peak = folder.parent / f"{folder.name}.peak"
        env = dict(
            os.environ,
            DATABASE_URL=_database_url(socket_dir),
            ASTRADUP_MODEL_CACHE=settings.ASTRADUP["MODEL_CACHE"],
            ASTRADUP_LOG_LEVEL="WARNING",
        )
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, str(self.peak), *prefix, sys.executable, "manage.py", *args],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started = time.monotonic()
        self.run: Run | None = None

    def poll(self) -> bool:
        if self.run is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
                self._done(self.proc.returncode, usage.ru_maxrss << 10)
        return self.run is not None

    def kill(self) -> None:
        if not self.poll():
            os.killpg(self.proc.pid, signal.SIGKILL)
            _, _, usage = os.wait4(self.proc.pid, 0)
            self.proc.returncode = -signal.SIGKILL
            self._done(None, usage.ru_maxrss << 10)

    def _done(self, rc: int | None, max_rss: int) -> None:
        # the command's own peak, as the launcher measured it; a command killed at its deadline
        # leaves none, and then the launcher's (which counts this process's size too) stands
        if self.peak.exists() and self.peak.read_text().strip():
            max_rss = int(self.peak.read_text())
        self.run = Run(rc, self.log.read_text(errors="replace"), max_rss, time.monotonic() - self.started)


def _wait(children: dict[str, _Child], deadline: float) -> dict[str, Run]:
    """Wait for every child until the deadline, then kill what still runs (a hang: its run says
    rc None). Not cut short by how fast the shared folder went: on a loaded machine the children
    of the kinds alone in their folders can finish well after it."""
    while time.monotonic() < deadline:
        if all([child.poll() for child in children.values()]):  # a list: poll every one
            break
        time.sleep(0.5)
    for child in children.values():
        child.kill()
    return {name: child.run for name, child in children.items()}


@dataclass
class Corpus:
    root: Path
    paths: dict[str, Path]  # kind name -> its file
    runs: dict[str, Run]
    videos: dict[str, dict]  # path -> the Video row's fields
    pairs: list[tuple[str, str, str]]  # (path a, path b, label)
    build_seconds: float


def _can_drop_read_override() -> bool:
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, django_db_setup, django_db_blocker) -> Corpus:
    from dedup import services
    from dedup.models import Pair, Video

    stack = contextlib.ExitStack()
    started = time.monotonic()
    root = tmp_path_factory.mktemp("bad-inputs")
    sources = root / "sources"
    good = make_clip(sources / "good.mp4", source="mandelbrot", duration=4, tone=440)
    small = make_clip(sources / "small.mp4", source="life", duration=1, tone=None)
    main = root / "main"
    main.mkdir()
    shutil.copy(good, main / "good.mp4")
    transcode(good, main / "good-copy.mp4", vf="scale=192:144", crf=30)
    paths = {}
    for kind in KINDS:
        folder = main if kind.group == "main" else root / kind.group
        if kind.group == "alone":
            folder = root / "alone" / kind.name
            folder.mkdir(parents=True)
            shutil.copy(small, folder / "neighbour.mp4")
        folder.mkdir(exist_ok=True)
        paths[kind.name] = folder / kind.file
        kind.make(paths[kind.name], good)
    build_seconds = time.monotonic() - started

    # the converted model is made once per install, before any worker (as `ingest --sync` and the
    # cluster do): on a fresh clone its conversion alone peaked at 1.7 GB in the first child, which
    # is not what the bound below is about (the extraction of hostile files)
    services.embedder_prepare()
    relay = stack.enter_context(_database_relay(root / "relay"))
    children = {"main": _Child(main, "ingest", str(main), "--sync", "--workers", "1")}
    for kind in KINDS:
        if kind.group == "alone":
            folder = paths[kind.name].parent
            prefix, socket_dir = (), None
            if kind.name == "unreadable" and os.geteuid() == 0:
                if not _can_drop_read_override():
                    continue
                # root reads a file whatever its mode: the child drops the capabilities that let it
                prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")
                socket_dir = relay
            children[kind.name] = _Child(
                folder,
                "ingest",
                str(folder),
                "--sync",
                "--workers",
                "1",
                prefix=prefix,
                socket_dir=socket_dir,
            )
    changed = root / "changed"
    with django_db_blocker.unblock():
        ids = services.video_ingest(paths=[changed], enqueue=False).created
    for kind in KINDS:
        if kind.change is not None:
            kind.change(paths[kind.name])
    extract = f"from dedup import workers; workers.extract_many({ids!r}, workers=1)"
    children["changed"] = _Child(changed, "shell", "-c", extract)
    with stack:
        runs = _wait(children, time.monotonic() + RUN_TIMEOUT)

    with django_db_blocker.unblock():
        videos = {
            v["path"]: v
            for v in Video.objects.values("path", "status", "error", "matched_at", "sha256", "size")
        }
        pairs = list(Pair.objects.values_list("video_a__path", "video_b__path", "label"))
        Video.objects.all().delete()
    return Corpus(root, paths, runs, videos, pairs, build_seconds)


def _run_of(kind: Kind) -> str:
    return kind.name if kind.group == "alone" else kind.group


def _described(corpus: Corpus, run: str) -> str:
    found = corpus.runs.get(run)
    return "" if found is None else f"rc={found.rc} after {found.seconds:.0f} s:\n{found.output[-4000:]}"


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(k, id=k.name, marks=[pytest.mark.xfail(strict=False, reason=k.xfail)] if k.xfail else [])
        for k in KINDS
    ],
)
def test_each_bad_input_ends_ready_or_failed_naming_its_cause(corpus, kind):
    run = _run_of(kind)
    if run not in corpus.runs:
        pytest.skip("running as root without setpriv: root reads a file whatever its permissions")
    assert corpus.runs[run].rc == 0, _described(corpus, run)
    path = corpus.paths[kind.name]
    video = corpus.videos.get(str(path))
    if video is None:
        assert kind.skippable, f"{kind.name} was not recorded\n{_described(corpus, run)}"
    else:
        assert video["status"] in kind.outcomes, video
        if video["status"] == FAILED:
            assert any(word in video["error"].lower() for word in kind.words), video["error"]
        elif kind.group != "changed":  # those are extracted only
            assert video["matched_at"] is not None, video
    if kind.group == "alone":
        neighbour = corpus.videos.get(str(path.parent / "neighbour.mp4"))
        assert neighbour is not None and neighbour["status"] == READY, neighbour
    if kind.name == "directory_named_mp4":
        assert corpus.videos[str(path / "inside.mp4")]["status"] == READY


def test_the_good_clip_beside_them_is_extracted_and_matched_as_usual(corpus):
    main = corpus.root / "main"
    assert corpus.runs["main"].rc == 0, _described(corpus, "main")
    good, copy = str(main / "good.mp4"), str(main / "good-copy.mp4")
    for path in (good, copy):
        assert corpus.videos[path]["status"] == READY and corpus.videos[path]["matched_at"], corpus.videos[
            path
        ]
    labels = {label for a, b, label in corpus.pairs if {a, b} == {good, copy}}
    assert labels & {"exact", "near_duplicate"}, corpus.pairs
    # every file recorded from the shared folder ended ready or failed, none is left pending
    recorded = [v for p, v in corpus.videos.items() if p.startswith(str(main))]
    assert len(recorded) >= 40 and all(v["status"] in (READY, FAILED) for v in recorded)


def test_the_corpus_is_varied_and_memory_and_time_stay_bounded(corpus):
    assert len(KINDS) >= 25
    finished = {name: run for name, run in corpus.runs.items() if run.rc is not None}
    assert {"main", "changed"} <= set(finished)
    for name, run in finished.items():
        assert run.max_rss < MAX_RSS_BYTES, f"{name}: peak {run.max_rss >> 20} MB"
    print(
        f"corpus built in {corpus.build_seconds:.0f} s; "
        + ", ".join(
            f"{n}: {r.seconds:.0f} s, {r.max_rss >> 20} MB, rc {r.rc}" for n, r in corpus.runs.items()
        )
    )


def test_a_file_grown_after_ingest_is_stored_with_the_hash_of_what_was_extracted(corpus):
    from dedup.features.probe import sha256_file

    path = corpus.paths["appended_after_ingest"]
    video = corpus.videos[str(path)]
    assert video["status"] == READY, video
    assert video["size"] == path.stat().st_size
    assert video["sha256"] == sha256_file(path)
