"""Throughput benchmark: one-minute 720p H.264 clips with sound, ingested and matched end to end.

The clips are made once (cached under --clips-dir) from the development benchmark's real media,
looped to a minute and scaled to 1280×720, plus synthetic ffmpeg sources; a few of them get a
transformed copy so matching has real work. Then `ingest --sync` runs on a fresh library and the
command reports CPU-seconds per video-minute by stage, videos/hour, peak RSS per process and the
database server's CPU, next to the numbers last saved on the same kind of machine
(docs/bench-perf.json keeps one result per CPU and embedding precision).
"""

import json
import os
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum

from dedup.models import Pair, Video
from lib.machine import describe

SECONDS = 60
SIZE = (1280, 720)
FPS = 30
SYNTHETIC = [
    "testsrc2",
    "life=s=640x360:mold=10:r=30:ratio=0.1:death_color=#C83232:life_color=#00ff00",
    "cellauto=s=640x360:rule=110",
    "gradients=s=640x360:speed=0.02",
]
STAGES = ["probe", "decode", "hash", "embed", "views", "audio", "database", "candidates", "scoring"]
BASELINE = Path(settings.BASE_DIR) / "docs" / "bench-perf.json"


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _encode(
    inputs: list[str],
    vf: str,
    out: Path,
    *,
    crf: int = 23,
    af: str = "anull",
    gop: int = 0,
    preset: str = "veryfast",
) -> None:
    w, h = SIZE
    _ffmpeg(
        [
            *inputs,
            "-t",
            str(SECONDS),
            "-vf",
            f"{vf},scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,fps={FPS},format=yuv420p",
            "-af",
            af,
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "libx264",
            "-preset",
            # veryfast (one reference frame) lets the sampler skip most reference B-frames; x264's
            # default, medium (three), does not (--preset)
            preset,
            # x264's default keyframe interval is 250 frames (8 s here); phones and streaming
            # encoders use 1-2 s, which the sampler turns into keyframe seeks (--gop)
            *(["-g", str(gop)] if gop else []),
            "-crf",
            str(crf),
            # a typical 720p upload (YouTube recommends 5 Mb/s for 720p30): decoding cost grows with
            # the bitrate, and CRF alone gives noisy visualiser footage 14 Mb/s
            "-maxrate",
            "5M",
            "-bufsize",
            "10M",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ar",
            "44100",
            "-ac",
            "2",
            str(out),
        ]
    )


def make_clips(
    media: Path, out: Path, n: int, copies: int, gop: int = 0, preset: str = "veryfast"
) -> tuple[list[Path], list[tuple[str, str]]]:
    """n originals (real clips first, then synthetic sources) and `copies` transformed copies."""
    out.mkdir(parents=True, exist_ok=True)
    real = sorted(p for p in (media / "video").iterdir() if p.is_file())
    # spread over the packages: street camera, films, game cut-scenes, visualiser
    real.sort(key=lambda p: (0 if p.name.startswith(("opencv", "scikit")) else 1, p.name))
    audio = sorted(p for p in (media / "audio").rglob("*") if p.suffix in (".wav", ".ogg", ".flac", ".mp3"))
    if not real or not audio:
        raise CommandError(f"no media under {media}: run ../shared/bench/fetch_media.sh {media}")
    originals = []
    n_synthetic = min(len(SYNTHETIC), max(1, n // 5))
    picked = real[: n - n_synthetic]
    for i, src in enumerate(picked):
        dst = out / f"perf{i:03d}.mp4"
        if not dst.exists():
            track = audio[i % len(audio)]
            tmp = dst.with_suffix(".tmp.mp4")
            _encode(
                ["-stream_loop", "-1", "-i", str(src), "-stream_loop", "-1", "-i", str(track)],
                "null",
                tmp,
                gop=gop,
                preset=preset,
            )
            tmp.rename(dst)
        originals.append(dst)
    for j, source in enumerate(SYNTHETIC[:n_synthetic]):
        dst = out / f"perf{len(picked) + j:03d}.mp4"
        if not dst.exists():
            tmp = dst.with_suffix(".tmp.mp4")
            tone = f"sine=f={300 + 110 * j}:r=44100"
            _encode(
                ["-f", "lavfi", "-i", f"{source}", "-f", "lavfi", "-i", tone],
                "null",
                tmp,
                gop=gop,
                preset=preset,
            )
            tmp.rename(dst)
        originals.append(dst)
    expected = []
    for k, src in enumerate(originals[:copies]):
        dst = out / f"perf{len(originals) + k:03d}.mp4"
        if not dst.exists():
            tmp = dst.with_suffix(".tmp.mp4")
            _encode(
                ["-i", str(src), "-i", str(src)],
                "crop=iw*0.9:ih*0.9,eq=brightness=0.06",
                tmp,
                crf=30,
                af="volume=-6dB",
                gop=gop,
                preset=preset,
            )
            tmp.rename(dst)
        expected.append((src.name, dst.name))
    return originals + [out / f"perf{len(originals) + k:03d}.mp4" for k in range(copies)], expected


def fill_library(n_videos: int, sample_clip: Path) -> dict:
    """n synthetic ready videos with 60 frame vectors each, as a large library would hold them.
    The HNSW index is dropped for the COPY and rebuilt (inserting into it row by row would take
    ~5 videos/s); the vectors are centred where real embeddings are (the mean of a real clip's)."""
    from django.db import connection
    from django.utils import timezone
    from pgvector import HalfVector

    from bench.management.commands.bench_index import FRAMES_PER_VIDEO, synthetic_videos
    from dedup.features import FEATURE_VERSION
    from dedup.features.frames import sample_frames
    from dedup.features.phash import bands
    from dedup.services import FRAME_COLUMNS, copy_rows, current_embedder, frame_hnsw_indexes

    embedder = current_embedder()
    real = embedder.embed(sample_frames(sample_clip, float(SECONDS)).images)
    name, dim = embedder.name, real.shape[1]
    now = timezone.now()
    t0 = time.monotonic()
    videos = Video.objects.bulk_create(
        [
            Video(
                path=f"/synthetic/library/{i:07d}.mp4",
                rel_path=f"library/{i:07d}.mp4",
                file_name=f"{i:07d}.mp4",
                status=Video.Status.READY,
                duration=float(SECONDS),
                width=SIZE[0],
                height=SIZE[1],
                fps=float(FPS),
                size=30_000_000 + i,
                sha256=f"{i:064x}",
                feature_version=FEATURE_VERSION,
                backbone=name,
                has_audio=False,
                finished_at=now,
                matched_at=now,
            )
            for i in range(n_videos)
        ],
        batch_size=5000,
    )
    raw = connection.cursor().connection
    rng = np.random.default_rng(3)

    def rows():
        generated = synthetic_videos(n_videos, dim, 5, mean=real.mean(axis=0))
        for video, (_, frames) in zip(videos, generated, strict=True):
            hashes = rng.integers(-(2**63), 2**63 - 1, FRAMES_PER_VIDEO, dtype=np.int64)
            for idx, (vec, h) in enumerate(zip(frames, hashes, strict=True)):
                yield [
                    video.pk,
                    idx,
                    float(idx),
                    True,
                    True,
                    int(h),
                    *bands(int(h)),
                    None,
                    name,
                    HalfVector(vec),
                    None,
                ]

    with raw.cursor() as cur:
        cur.execute(f"DROP INDEX IF EXISTS frame_emb_hnsw_{name}")
        copy_rows("dedup_frame", FRAME_COLUMNS, rows())
        loaded = time.monotonic() - t0
        t0 = time.monotonic()
        cur.execute("SET maintenance_work_mem = '4GB'")
        cur.execute("SET max_parallel_maintenance_workers = 1")
        cur.execute(dict(frame_hnsw_indexes(name))[f"frame_emb_hnsw_{name}"])
        # fresh statistics, or the planner takes the 600k-row table for empty and scans it per frame
        cur.execute("ANALYZE dedup_video")
        cur.execute("ANALYZE dedup_frame")
    raw.commit()
    return {
        "videos": n_videos,
        "frame_vectors": n_videos * FRAMES_PER_VIDEO,
        "load_s": round(loaded, 1),
        "index_build_s": round(time.monotonic() - t0, 1),
    }


def _postgres_cpu() -> dict:
    """CPU-seconds used so far by the embedded PostgreSQL server: per live process (pid: kind,
    seconds) and, under "exited", what processes that have ended used (counted by the postmaster)."""
    pid_file = Path(settings.DATA_DIR) / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return {}
    try:
        master = psutil.Process(int(pid_file.read_text().split()[0]))
        live = {}
        for p in [master, *master.children(recursive=True)]:
            try:
                t, title = p.cpu_times(), " ".join(p.cmdline())
            except psutil.Error:
                continue
            live[p.pid] = ("postmaster" if p.pid == master.pid else _postgres_kind(title), t.user + t.system)
        t = master.cpu_times()
        return {"live": live, "exited": t.children_user + t.children_system}
    except (psutil.Error, ValueError):
        return {}


def _postgres_kind(title: str) -> str:
    # "postgres: checkpointer", "postgres: autovacuum worker", "postgres: user db [local] idle"
    name = title.removeprefix("postgres: ").strip()
    for kind in (
        "checkpointer",
        "background writer",
        "walwriter",
        "autovacuum",
        "logical replication",
        "io worker",
    ):
        if name.startswith(kind):
            return kind
    return "backend"


def _cpu_change(before: dict, after: dict) -> dict[str, float]:
    """CPU-seconds by kind of server process between two `_postgres_cpu` readings ("exited": the
    processes that ended in between, less what they had used before)."""
    if not before or not after:
        return {}
    kinds: dict[str, float] = {}
    for pid, (kind, cpu) in after["live"].items():
        kinds[kind] = kinds.get(kind, 0.0) + cpu - before["live"].get(pid, (kind, 0.0))[1]
    gone = sum(cpu for pid, (_, cpu) in before["live"].items() if pid not in after["live"])
    kinds["exited"] = after["exited"] - before["exited"] - gone
    return kinds


def _worker_startup_cpu() -> float:
    """A fresh extraction worker's CPU-seconds before its first video, in a process of its own."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from bench.workers import startup_cpu
    from dedup import workers

    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=workers.init) as pool:
        return pool.submit(startup_cpu).result()


def decode_floor_cpu(path: Path) -> float:
    """CPU-seconds (user + system) of the decode floor on one file: ffmpeg decoding every
    reference picture on one thread, no sound, nothing written (issue 29 holds AstraDup's whole
    cost per video to 1.25 times this). Read from this one child's own rusage (wait4), so other
    children of the benchmark, and other processes on a shared machine, are not counted."""
    proc = subprocess.Popen(
        [
            "ffmpeg",
            "-v",
            "error",
            "-threads",
            "1",
            "-skip_frame",
            "noref",
            "-i",
            str(path),
            "-an",
            "-f",
            "null",
            "-",
        ],
        stdin=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise CommandError(f"the decode floor's ffmpeg failed on {path} (exit {proc.returncode})")
    return usage.ru_utime + usage.ru_stime


def _release() -> str:
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=settings.BASE_DIR
        ).stdout.strip()
    except OSError:
        return ""


def _cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def machine_of(result: dict) -> str:
    """The CPU, its cores and the embedding's runtime and precision a result was measured with."""
    machine = result.get("machine") or {}
    flags = ", ".join(machine.get("flags", [])) or "?"
    return f"{machine.get('cpu', '?')} [{flags}], {machine.get('cores', '?')} cores, {result.get('embedding', '?')}"


def machine_note(now: dict, before: dict) -> str:
    """A warning when the baseline ran on another CPU or embedding precision: the lent machines
    change CPU between sessions (Zen 4 with bf16 against Zen 3 with AVX2 alone doubled every
    stage's CPU time), and a table of changes then compares machines, not code."""
    if machine_of(now) == machine_of(before):
        return ""
    return (
        f"the baseline ran on another machine: {machine_of(before)}; this run: {machine_of(now)}. The changes below "
        f"compare the machines as much as the code: run the baseline's release here for a comparison "
        f"(git checkout {before.get('release', '<release>')} && make bench-perf), or save one for this machine."
    )


def load_baselines(path: Path) -> list[dict]:
    """The saved baselines, one per machine (a file of one result, as releases before kept it,
    is a list of one)."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return data if isinstance(data, list) else [data]


def pick_baseline(now: dict, baselines: list[dict]) -> dict | None:
    """The baseline saved on this run's kind of machine, else the last one saved (with a note)."""
    same = [b for b in baselines if machine_of(b) == machine_of(now)]
    return (same or baselines or [None])[-1]


def save_baseline(result: dict, baselines: list[dict]) -> list[dict]:
    """The baselines with `result` in place of the one of its own machine."""
    return [b for b in baselines if machine_of(b) != machine_of(result)] + [result]


class Command(BaseCommand):
    help = "Throughput of ingest + matching on one-minute 720p clips, by stage (make bench-perf)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--media", type=Path, required=True, help="fetch_media.sh output (video/, audio/)."
        )
        parser.add_argument("--clips-dir", type=Path, required=True, help="Where the clips are made (kept).")
        parser.add_argument("--clips", type=int, default=20, help="Original one-minute clips.")
        parser.add_argument("--copies", type=int, default=6, help="Transformed copies of the first clips.")
        parser.add_argument("--workers", type=int, default=None)
        parser.add_argument(
            "--gop",
            type=int,
            default=0,
            help="Keyframe interval of the clips in frames (default: x264's, 250); clips go to CLIPS_DIR-gopN.",
        )
        parser.add_argument(
            "--preset",
            default="veryfast",
            help="x264 preset of the clips (default veryfast); others go to CLIPS_DIR-PRESET.",
        )
        parser.add_argument(
            "--save",
            action="store_true",
            help=f"Save the result as this machine's baseline ({BASELINE} keeps one per machine).",
        )
        parser.add_argument(
            "--library",
            type=int,
            default=0,
            help="Synthetic one-minute videos (60 frame vectors each, index rebuilt) in the library before the run.",
        )
        parser.add_argument(
            "--fit-projection",
            action="store_true",
            help="After filling the library, fit the 256-d index projection (manage.py fit_index_projection).",
        )

    def handle(
        self,
        *args,
        media: Path,
        clips_dir: Path,
        clips: int,
        copies: int,
        workers,
        gop: int,
        preset: str,
        save: bool,
        library: int,
        fit_projection: bool,
        **options,
    ):
        if fit_projection and not library:
            raise CommandError("--fit-projection needs a --library to fit on")
        t0 = time.monotonic()
        if gop:
            clips_dir = clips_dir.with_name(f"{clips_dir.name}-gop{gop}")
        if preset != "veryfast":
            clips_dir = clips_dir.with_name(f"{clips_dir.name}-{preset}")
        paths, expected = make_clips(media, clips_dir, clips, copies, gop, preset)
        self.stderr.write(f"{len(paths)} clips ready in {clips_dir} ({time.monotonic() - t0:.0f} s)")
        call_command("migrate", verbosity=0)
        if Video.objects.exists():
            raise CommandError(
                "the library is not empty: run with a fresh ASTRADUP_DATA_DIR (make bench-perf does)"
            )
        from dedup.services import embedder_prepare

        t0 = time.monotonic()
        embedder_prepare()  # converts the model once into the model cache; workers only load it
        prepare = time.monotonic() - t0
        fill = fill_library(library, paths[0]) if library else {}
        if fit_projection:
            from dedup.services import current_embedder, index_projection_fit

            t0 = time.monotonic()
            index_projection_fit(backbone=current_embedder().name)
            fill["projection_fit_s"] = round(time.monotonic() - t0, 1)
        if fill:
            from django.db import connection

            # A library that has been in use is settled: its rows vacuumed (hint bits set, the
            # visibility map built) and its bulk load written out. Unsettled, the load's own
            # upkeep (autovacuum of 600,000 new or rewritten rows, the checkpoint of the load's
            # writes) lands in the timed run and is charged to the new videos.
            t0 = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE) dedup_frame")
                cursor.execute("VACUUM (ANALYZE) dedup_video")
                cursor.execute("CHECKPOINT")
            fill["settle_s"] = round(time.monotonic() - t0, 1)
            self.stderr.write(f"library filled: {fill}")

        startup = _worker_startup_cpu()
        extra = ["--workers", str(workers)] if workers else []
        wall0, (own0, kids0), pg0 = time.monotonic(), _cpu(), _postgres_cpu()
        call_command("ingest", *map(str, paths), "--sync", *extra)
        wall, (own1, kids1), pg1 = time.monotonic() - wall0, _cpu(), _postgres_cpu()
        app_cpu = (own1 - own0) + (kids1 - kids0)
        db_by_kind = _cpu_change(pg0, pg1)
        db_cpu = sum(db_by_kind.values())

        ran = Video.objects.filter(path__in=[str(p.resolve()) for p in paths])  # not the synthetic library
        ready = ran.filter(status=Video.Status.READY)
        n = ready.count()
        minutes = (ready.aggregate(s=Sum("duration"))["s"] or 0.0) / 60
        stages = dict.fromkeys(STAGES, 0.0)
        for timings in ready.values_list("timings", flat=True):
            for stage, seconds in (timings or {}).items():
                stages[stage] = stages.get(stage, 0.0) + seconds
        # decoding cost follows the bitrate more than anything else
        decode_by_clip = sorted(
            (
                round(v.bitrate / 1e6, 2),
                round(v.timings.get("decode", 0.0) / (v.duration / 60), 2),
                Path(v.path).name,
            )
            for v in ready
        )
        by_name = {Path(v.path).name: v.pk for v in ran}
        found = 0
        for a, b in expected:
            ia, ib = sorted((by_name[a], by_name[b]))
            pair = Pair.objects.filter(video_a_id=ia, video_b_id=ib).first()
            found += bool(pair and pair.is_duplicate)
        n_workers = workers or len(os.sched_getaffinity(0))
        # this run's few videos carry a whole worker start-up each; a queue cluster restarts a
        # worker every `recycle` tasks, so in steady state a video carries 1/recycle of one
        recycle = settings.Q_CLUSTER["recycle"]
        steady = app_cpu + db_cpu - n_workers * startup + n * startup / recycle
        rss_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rss_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # the decode floor on the same clips in the same run (after the peaks above were read)
        floor_by_clip = {p.name: decode_floor_cpu(p) for p in paths}
        floor = sum(floor_by_clip.values()) / max(len(floor_by_clip), 1)
        per_video = steady / max(n, 1)
        from dedup.services import current_embedder

        e = current_embedder()  # after the run: its memory is not in the peaks above
        result = {
            "videos": n,
            "failed": ran.exclude(status=Video.Status.READY).count(),
            "video_minutes": round(minutes, 2),
            "wall_s": round(wall, 1),
            "videos_per_hour": round(n / wall * 3600),
            "cpu_s_per_video_minute": round(app_cpu / max(minutes, 1e-9), 3),
            "cpu_s_per_video_minute_with_database": round((app_cpu + db_cpu) / max(minutes, 1e-9), 3),
            "database_server_cpu_s_per_video_minute": round(db_cpu / max(minutes, 1e-9), 3),
            "database_server_by_process_cpu_s_per_video_minute": {
                k: round(v / max(minutes, 1e-9), 3) for k, v in db_by_kind.items() if abs(v) >= 0.0005
            },
            "stages_cpu_s_per_video_minute": {k: round(v / max(minutes, 1e-9), 3) for k, v in stages.items()},
            # app CPU outside the stages: worker start-up, task and status bookkeeping (probing and
            # audio decoding run in-process since this release, inside their stages)
            # where the app's CPU went: this process (ingest, matching) and its children (the
            # extraction workers, start-up included)
            "main_process_cpu_s_per_video_minute": round((own1 - own0) / max(minutes, 1e-9), 3),
            "worker_processes_cpu_s_per_video_minute": round((kids1 - kids0) / max(minutes, 1e-9), 3),
            "unattributed_cpu_s_per_video_minute": round(
                (app_cpu - sum(stages.values())) / max(minutes, 1e-9), 3
            ),
            "worker_startup_cpu_s": round(startup, 2),
            f"steady_state_cpu_s_per_video_minute_with_database_recycle_{recycle}": round(
                steady / max(minutes, 1e-9), 3
            ),
            # what the cores can do when extraction keeps them busy, as the target counts it
            "steady_state_videos_per_hour_all_cores": round(
                n / max(steady, 1e-9) * len(os.sched_getaffinity(0)) * 3600
            ),
            "peak_rss_mb": {"extraction_worker": round(rss_worker), "main_process_matching": round(rss_main)},
            "copies_found": f"{found}/{len(expected)}",
            # issue 29: steady-state CPU-s per video (ingest, extraction, matching, database; worker
            # start-up excluded) against the decode floor on the same clips; target <= 1.25
            "cpu_s_per_video": round(per_video, 3),
            "decode_floor_cpu_s_per_video": round(floor, 3),
            "ratio_to_decode_floor": round(per_video / max(floor, 1e-9), 3),
            "decode_floor_cpu_s_by_clip": {k: round(v, 3) for k, v in sorted(floor_by_clip.items())},
            "embedding": f"{e.name} on {e.runtime} ({e.precision})",
            "model_prepare_s": round(prepare, 1),
            "workers": n_workers,
            "keyframe_interval_frames": gop or 250,
            "library_before": fill or {"videos": 0},
            "release": _release(),
            "machine": describe(),
            "decode_cpu_s_per_minute_by_bitrate_mbps": [
                [mbps, cpu, name] for mbps, cpu, name in decode_by_clip
            ],
        }
        baselines = load_baselines(BASELINE)
        self.stdout.write(json.dumps(result, indent=1))
        self._table(result, pick_baseline(result, baselines))
        if save:
            BASELINE.write_text(json.dumps(save_baseline(result, baselines), indent=1) + "\n")
            self.stdout.write(f"saved as this machine's baseline: {BASELINE} ({machine_of(result)})")

    def _table(self, now: dict, before: dict | None) -> None:
        def row(name, a, b):
            delta = "" if b is None else f"{a - b:+.3f}"
            self.stdout.write(f"{name:34}{a:>10.3f}{'' if b is None else f'{b:>10.3f}':>10}{delta:>10}")

        if before:
            self.stdout.write(f"\nbaseline: {before.get('release', '?')} ({BASELINE.name})")
            note = machine_note(now, before)
            if note:
                self.stdout.write(note)
        self.stdout.write(f"\n{'CPU-s per video-minute':34}{'now':>10}{'baseline':>10}{'change':>10}")
        old = (before or {}).get("stages_cpu_s_per_video_minute", {})
        for stage, value in now["stages_cpu_s_per_video_minute"].items():
            row(stage, value, old.get(stage))
        row(
            "total (app processes)",
            now["cpu_s_per_video_minute"],
            (before or {}).get("cpu_s_per_video_minute"),
        )
        row(
            "total incl. database server",
            now["cpu_s_per_video_minute_with_database"],
            (before or {}).get("cpu_s_per_video_minute_with_database"),
        )
        by_process = now.get("database_server_by_process_cpu_s_per_video_minute", {})
        self.stdout.write(
            "database server by process: " + ", ".join(f"{k} {v:.3f}" for k, v in by_process.items())
        )
        self.stdout.write(
            f"\nunattributed (worker start-up, bookkeeping) {now['unattributed_cpu_s_per_video_minute']:.3f}; "
            f"worker start-up {now['worker_startup_cpu_s']:.2f} CPU-s each; main process "
            f"{now['main_process_cpu_s_per_video_minute']:.3f}, workers {now['worker_processes_cpu_s_per_video_minute']:.3f}; steady state "
            + ", ".join(
                f"{k.removeprefix('steady_state_')} {v}" for k, v in now.items() if k.startswith("steady")
            )
        )
        self.stdout.write(
            f"\n{now['videos']} videos ({now['video_minutes']} min) in {now['wall_s']} s on {now['workers']} workers: "
            f"{now['videos_per_hour']} videos/hour; peak RSS {now['peak_rss_mb']}; copies found {now['copies_found']}; "
            f"{now['embedding']}"
        )
        self.stdout.write(
            f"\nper video (steady state, start-up excluded): AstraDup {now['cpu_s_per_video']:.3f} CPU-s, "
            f"decode floor (ffmpeg -threads 1 -skip_frame noref, same clips) {now['decode_floor_cpu_s_per_video']:.3f} "
            f"CPU-s: ratio {now['ratio_to_decode_floor']:.3f} (target <= 1.25; GOP {now['keyframe_interval_frames']}, "
            f"library {now['library_before']['videos']})"
        )
