"""Scale of the frame-vector index: fill the product's frame table (dedup_frame, its HNSW indexes
as `services.frame_hnsw_indexes` makes them) with N synthetic frame embeddings and measure load and
build time, index size, insert rate with the index in place, candidate-search latency per new
one-minute video, and recall@k against exact search. The search is the product's own: a new
video's frames stored as extraction stores them (`services.copy_rows`), then
`services.frame_neighbours`, the lateral query and connection split `find_candidates` runs.

Synthetic embeddings imitate the backbone's: its dimension (1280 for Lite0), non-negative-mean
(unrelated frames meet at cosine ≈ 0.5), videos drawn from a few thousand content clusters, frames
of one video drifting along a shot (consecutive frames ≈ 0.9). Queries are new uploads that
re-encode a stored video (frame noise: cosine ≈ 0.93 to the original).

Run it on a data dir of its own (make bench-index): it fills the library with synthetic videos.
"""

import json
import time

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from dedup import services
from dedup.features import FEATURE_VERSION
from dedup.features.embed import BACKBONES
from dedup.features.phash import bands
from dedup.features.projection import PROJECTED_DIM, fit_basis, second_moment
from dedup.features.projection import project as project_
from dedup.models import Video
from lib.machine import describe

FRAMES_PER_VIDEO = 60
# a neighbour the index returns counts as found when it is at least as near as the exact k-th
# (float rounding apart: PostgreSQL and numpy sum 1280 float products in other orders)
DISTANCE_TOLERANCE = 1e-4


def spectrum(dim: int, decay: float, seed: int) -> np.ndarray:
    """(dim, dim) map that gives isotropic variation the eigenvalue decay of real embeddings
    (λᵢ ∝ i^-decay in a random orthonormal basis) at the same total variance. The development
    benchmark's Lite0 frame embeddings decay at ≈ 1.5 (eigenvalues 4–400; 256 directions hold 96 %
    of their variance); isotropic synthetic vectors (decay 0) cannot be projected at all."""
    scale = np.arange(1, dim + 1, dtype=np.float64) ** (-decay / 2)
    scale *= np.sqrt(dim / np.sum(scale**2))
    q, _ = np.linalg.qr(np.random.default_rng([seed, 7]).standard_normal((dim, dim)))
    return (q * scale).T.astype(np.float32)


def synthetic_videos(
    n_videos: int,
    dim: int,
    seed: int,
    start: int = 0,
    mean: np.ndarray | None = None,
    colour: np.ndarray | None = None,
    clusters: int = 0,
):
    """Yield (video_id, (60, dim) float32) in order; deterministic per video id and `clusters`
    (content clusters in the whole library; default one per 50 videos). `mean`: the centre of
    real embeddings, so synthetic frames sit where real ones do; `colour`: see spectrum()."""
    if mean is None:
        mean = np.abs(np.random.default_rng(seed).standard_normal(dim)).astype(np.float32)
    mean = (mean / np.linalg.norm(mean)).astype(np.float32)
    n_clusters = clusters or max(16, n_videos // 50)
    for vid in range(start, start + n_videos):
        rng = np.random.default_rng([seed, vid])
        cluster = (
            np.random.default_rng([seed, 10**9 + vid % n_clusters]).standard_normal(dim).astype(np.float32)
        )
        own = rng.standard_normal(dim).astype(np.float32)
        shots = np.repeat(rng.standard_normal((FRAMES_PER_VIDEO // 6 + 1, dim)).astype(np.float32), 6, axis=0)
        shots = shots[:FRAMES_PER_VIDEO]
        drift = rng.standard_normal((FRAMES_PER_VIDEO, dim)).astype(np.float32)
        variation = 0.55 * cluster + 0.5 * own + 0.6 * shots + 0.12 * drift
        if colour is not None:
            variation = variation @ colour
        x = mean * 1.0 + variation / np.sqrt(dim)
        yield vid, x / np.linalg.norm(x, axis=1, keepdims=True)


class ExactTopK:
    """Exact top-k by cosine of unit query vectors over blocks of unit vectors that stream past;
    nothing but the running top k is kept, so 10 M × 1280 needs no more memory than 1 M."""

    def __init__(self, queries: np.ndarray, k: int):
        self.q, self.k = queries, k
        self.sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
        self._ids = np.zeros((len(queries), k), dtype=np.int64)

    def add(self, block: np.ndarray, first_id: int) -> None:
        sims = self.q @ block.T
        # only the columns that beat some query's current k-th best can enter (few, once warm)
        cols = np.flatnonzero((sims > self.sims.min(axis=1, keepdims=True)).any(axis=0))
        if not len(cols):
            return
        both = np.concatenate([self.sims, sims[:, cols]], axis=1)
        both_ids = np.concatenate(
            [self._ids, np.broadcast_to(first_id + cols, (len(self.q), len(cols)))], axis=1
        )
        top = np.argpartition(-both, self.k - 1, axis=1)[:, : self.k]
        self.sims = np.take_along_axis(both, top, axis=1)
        self._ids = np.take_along_axis(both_ids, top, axis=1)

    def ids(self) -> np.ndarray:
        return self._ids

    def kth(self) -> np.ndarray:
        """Each query's k-th best cosine."""
        return self.sims.min(axis=1)


# binary COPY framing (PostgreSQL's COPY BINARY header: signature, flags, extension length)
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + bytes(8)
COPY_TRAILER = b"\xff\xff"


def _halfvec_fields(name: str, dim: int) -> list:
    # a halfvec in binary: int16 dim, int16 unused (0), dim big-endian float16
    return [(f"{name}_len", ">i4"), (f"{name}_dim", ">i2"), (f"{name}_unused", ">i2"), (name, ">f2", (dim,))]


def frame_rows(
    video_ids: np.ndarray, frames: np.ndarray, projected: np.ndarray | None, model: str, seed: int
) -> bytes:
    """COPY BINARY rows of dedup_frame, in the columns of `services.FRAME_COLUMNS`, built by numpy:
    writing rows one by one through psycopg caps the load at ≈ 16,000 rows/s, 10 minutes per 10 M.
    Every frame informative and indexed, at one frame per second; random pHashes; no thumbnail;
    index_embedding: `projected`, or NULL."""
    assert list(services.FRAME_COLUMNS) == [
        *("video_id", "idx", "t", "informative", "indexed", "phash"),
        *("phash_b0", "phash_b1", "phash_b2", "phash_b3", "thumb", "model", "embedding", "index_embedding"),
    ], "dedup_frame's COPY columns changed: update frame_rows"
    n, name = len(frames), model.encode()
    fields = [("n", ">i2"), ("vid_len", ">i4"), ("vid", ">i8"), ("idx_len", ">i4"), ("idx", ">i4")]
    fields += [
        ("t_len", ">i4"),
        ("t", ">f8"),
        ("inf_len", ">i4"),
        ("inf", "u1"),
        ("ind_len", ">i4"),
        ("ind", "u1"),
    ]
    fields += [("ph_len", ">i4"), ("ph", ">i8")]
    fields += [x for b in range(4) for x in ((f"b{b}_len", ">i4"), (f"b{b}", ">i2"))]
    fields += [("thumb_len", ">i4"), ("model_len", ">i4"), ("model", f"S{len(name)}")]
    fields += _halfvec_fields("e", frames.shape[1])
    fields += _halfvec_fields("s", projected.shape[1]) if projected is not None else [("s_len", ">i4")]
    rows = np.zeros(n, dtype=np.dtype(fields))
    rows["n"] = len(services.FRAME_COLUMNS)
    idx = np.arange(n) % FRAMES_PER_VIDEO
    rows["vid_len"], rows["vid"], rows["idx_len"], rows["idx"] = 8, video_ids, 4, idx
    rows["t_len"], rows["t"] = 8, idx
    rows["inf_len"], rows["inf"], rows["ind_len"], rows["ind"] = 1, 1, 1, 1
    phash = np.random.default_rng([seed, int(video_ids[0]) if n else 0]).integers(-(2**63), 2**63 - 1, n)
    rows["ph_len"], rows["ph"] = 8, phash
    for b in range(4):  # as dedup.features.phash.bands
        rows[f"b{b}_len"] = 2
        rows[f"b{b}"] = ((phash.view(np.uint64) >> np.uint64(16 * b)) & np.uint64(0xFFFF)).astype(
            np.int32
        ) - 32768
    rows["thumb_len"] = -1  # NULL
    rows["model_len"], rows["model"] = len(name), name
    rows["e_len"], rows["e_dim"], rows["e"] = 4 + 2 * frames.shape[1], frames.shape[1], frames
    if projected is not None:
        rows["s_len"], rows["s_dim"], rows["s"] = 4 + 2 * projected.shape[1], projected.shape[1], projected
    else:
        rows["s_len"] = -1
    return rows.tobytes()


def reencode(frames: np.ndarray, rng) -> np.ndarray:
    x = frames + 0.012 * rng.standard_normal(frames.shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _unit16(x: np.ndarray) -> np.ndarray:
    """Vectors as the table holds them (halfvec), scaled to unit length as cosine compares them."""
    x = x.astype(np.float16).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ready_videos(paths: list[str], backbone: str) -> list[Video]:
    """Ready one-minute videos, as a library holds them (pks in the order of `paths`)."""
    now = timezone.now()
    return Video.objects.bulk_create(
        [
            Video(
                path=path,
                rel_path=path.lstrip("/"),
                file_name=path.rsplit("/", 1)[-1],
                status=Video.Status.READY,
                duration=float(FRAMES_PER_VIDEO),
                size=30_000_000,
                sha256="",
                feature_version=FEATURE_VERSION,
                backbone=backbone,
                has_audio=False,
                finished_at=now,
                matched_at=now,
            )
            for path in paths
        ],
        batch_size=5000,
    )


class Command(BaseCommand):
    help = (
        "HNSW scale benchmark on synthetic frame embeddings in the product's frame table (make bench-index)."
    )

    @staticmethod
    def _search_as_the_app(
        number: int, frames: np.ndarray, basis, backbone: str, k: int, ef: int, connections: int
    ) -> tuple[list[tuple], float]:
        """Store a new video's frames as extraction does (one transaction, `services.copy_rows`),
        then search them as `find_candidates` does (`services.frame_neighbours`); the video is
        removed again. Returns the (frame idx, neighbour video, distance) rows and the search's
        time (storing the frames is extraction's cost, measured by the insert rate)."""
        (video,) = ready_videos([f"/synthetic/query/{number:07d}.mp4"], backbone)
        _store(video.pk, frames, basis, backbone)
        projected = basis is not None
        source = "projected" if projected else "full"
        fetched = services.PROJECTED_RERANK * k if projected else k
        params = [fetched, k, video.pk] if projected else [k, video.pk]
        start = time.perf_counter()
        rows = services.frame_neighbours(backbone, source, params, max(ef, fetched), connections)
        elapsed = time.perf_counter() - start
        video.delete()
        return rows, elapsed

    def add_arguments(self, parser):
        parser.add_argument("--vectors", type=int, default=1_000_000)
        parser.add_argument(
            "--backbone",
            default=None,
            choices=sorted(BACKBONES),
            help="Whose index (and dimension) to fill; default ASTRADUP_BACKBONE.",
        )
        parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 200])
        parser.add_argument("--k", type=int, default=40)
        parser.add_argument("--queries", type=int, default=20, help="New one-minute videos searched.")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--maintenance-work-mem", default="6GB")
        parser.add_argument(
            "--spectrum-decay",
            type=float,
            default=0.0,
            help="Eigenvalue decay of the synthetic variation (real Lite0 embeddings: 1.5; 0: isotropic).",
        )
        parser.add_argument(
            "--project",
            type=int,
            default=0,
            choices=[0, PROJECTED_DIM],
            help=f"{PROJECTED_DIM}: fit an index projection as fit_index_projection does, and search the "
            "projected index as the app does (top k x PROJECTED_RERANK by projected cosine, re-ranked "
            "by full cosine).",
        )
        parser.add_argument(
            "--warm-up",
            type=int,
            default=10,
            help="Other videos searched, untimed, before the timed searches: a serving database has "
            "the index's upper layers and hot pages cached, a freshly built one has not.",
        )
        parser.add_argument(
            "--connections",
            type=int,
            nargs="+",
            default=[1],
            help="Connections one video's search is split over (ASTRADUP_CANDIDATE_SEARCH_CONNECTIONS); "
            "each count is measured at each --ef-search.",
        )
        parser.add_argument(
            "--storage",
            choices=["plain", "external"],
            default="plain",
            help="How the embedding column is stored: 'plain' in the row, as migration 0008 sets "
            "dedup_frame's; 'external' (pgvector's default) moves rows over 2 kB into TOAST.",
        )

    def handle(
        self,
        *args,
        vectors,
        backbone,
        ef_search,
        k,
        queries,
        seed,
        maintenance_work_mem,
        spectrum_decay,
        project,
        warm_up,
        storage,
        connections,
        **o,
    ):
        backbone = backbone or settings.ASTRADUP["BACKBONE"]
        dim = BACKBONES[backbone].dim
        if Video.objects.exists():
            raise CommandError("the library is not empty: run it on a data dir of its own (make bench-index)")
        n_videos = vectors // FRAMES_PER_VIDEO
        indexes = dict(services.frame_hnsw_indexes(backbone))
        searched = f"frame_proj_hnsw_{backbone}" if project else f"frame_emb_hnsw_{backbone}"
        result: dict = {
            "vectors": n_videos * FRAMES_PER_VIDEO,
            "backbone": backbone,
            "dim": dim,
            "index": indexes[searched],
            "spectrum_decay": spectrum_decay,
            "storage": storage,
        }
        # what candidate search in the app would use at this size (ASTRADUP_HNSW_EF_SEARCH and
        # ASTRADUP_CANDIDATE_SEARCH_CONNECTIONS as set, by the library's size where auto)
        plan = services.search_plan(result["vectors"])
        result["app_search_plan"] = {"ef_search": plan[0], "connections": plan[1]}
        colour = spectrum(dim, spectrum_decay, seed) if spectrum_decay else None

        def videos(n: int, start: int = 0):
            return synthetic_videos(
                n, dim, seed, start=start, colour=colour, clusters=max(16, n_videos // 50)
            )

        basis = None
        if project:
            # fitted on a sample, as fit_index_projection does on a library's frames
            sample = np.concatenate([f for _, f in videos(min(n_videos, 2000))])
            basis = fit_basis(second_moment(sample), dim=project)
            result.update(project=project, rerank=services.PROJECTED_RERANK, fit_frames=len(sample))
        pks = np.array(
            [
                v.pk
                for v in ready_videos([f"/synthetic/library/{i:07d}.mp4" for i in range(n_videos)], backbone)
            ]
        )
        cursor = connection.cursor()
        raw = cursor.connection  # psycopg 3, in autocommit as Django keeps it
        with raw.cursor() as cur:
            cur.execute(f"ALTER TABLE dedup_frame ALTER COLUMN embedding SET STORAGE {storage.upper()}")
            # built after the load: inserting into an HNSW index row by row takes ~5 videos/s
            for name in indexes:
                cur.execute(f"DROP INDEX IF EXISTS {name}")

        # the queries are re-encodes of stored videos, picked before the load so that exact search
        # runs over the vectors as they stream past (10 M × 1280 would not fit in memory)
        rng = np.random.default_rng(seed + 7)
        picked = rng.choice(n_videos, size=queries, replace=False)
        query_frames = [
            reencode(next(videos(1, start=int(v)))[1].astype(np.float16).astype(np.float32), rng)
            for v in picked
        ]
        exact = ExactTopK(_unit16(np.concatenate(query_frames)), k)
        t0 = time.monotonic()
        columns = ", ".join(services.FRAME_COLUMNS)
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY dedup_frame ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy,
        ):
            copy.write(COPY_SIGNATURE)
            chunk: list[np.ndarray] = []
            first = 0
            for vid, frames in videos(n_videos):
                chunk.append(frames)
                if len(chunk) == 500 or vid == n_videos - 1:
                    block = np.concatenate(chunk)
                    ids = np.repeat(pks[vid + 1 - len(chunk) : vid + 1], FRAMES_PER_VIDEO)
                    small = project_(block, basis) if basis is not None else None
                    copy.write(frame_rows(ids, block, small, backbone, seed))
                    # exact search sees what the table holds: halfvec-rounded vectors
                    exact.add(_unit16(block), first)
                    first += len(block)
                    chunk = []
            copy.write(COPY_TRAILER)
        load = time.monotonic() - t0
        result["copy_rows_per_s"] = round(first / load)
        self.stderr.write(f"loaded {first} vectors in {load:.0f} s (exact search included)")
        # a settled table, as a library is: otherwise autovacuum's first pass over the freshly
        # loaded rows (30 GB at 10 M) runs during the searches, and until it has analysed the
        # table the planner finds the new video's frames by walking the primary key (14 s at 10 M)
        t0 = time.monotonic()
        with raw.cursor() as cur:
            cur.execute("VACUUM (ANALYZE) dedup_frame")
            cur.execute("ANALYZE dedup_video")
        result["vacuum_analyze_s"] = round(time.monotonic() - t0, 1)

        t0 = time.monotonic()
        with raw.cursor() as cur:
            cur.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
            cur.execute("SET max_parallel_maintenance_workers = 1")  # plus the leader: both cores
            for ddl in indexes.values():
                cur.execute(ddl)
            result["build_s"] = round(time.monotonic() - t0, 1)
            cur.execute("RESET maintenance_work_mem")
            cur.execute("RESET max_parallel_maintenance_workers")
            cur.execute(f"SELECT pg_relation_size('{searched}'), pg_table_size('dedup_frame')")
            index_bytes, table_bytes = cur.fetchone()
        result["index_mb"] = round(index_bytes / 2**20)
        result["table_mb"] = round(table_bytes / 2**20)
        self.stderr.write(f"built the index in {result['build_s']} s ({result['index_mb']} MB)")

        # per query video: (60, k) exact neighbour positions and each frame's exact k-th cosine
        truths = np.split(exact.ids(), queries)
        kths = np.split(exact.kth(), queries)
        searches = 0
        if warm_up:
            others = np.setdiff1d(np.arange(n_videos), picked)
            warm_rng = np.random.default_rng(seed + 11)
            for v in warm_rng.choice(others, size=min(warm_up, len(others)), replace=False):
                frames = next(videos(1, start=int(v)))[1]
                self._search_as_the_app(
                    searches, reencode(frames, warm_rng), basis, backbone, k, ef_search[0], 1
                )
                searches += 1
            result["warm_up_videos"] = warm_up
        result["search"] = {}
        for ef, n_conn in [(ef, n) for ef in ef_search for n in connections]:
            latencies, recalls, video_recalls, found = [], [], [], 0
            for q, truth, kth, original in zip(query_frames, truths, kths, picked, strict=True):
                rows, elapsed = self._search_as_the_app(searches, q, basis, backbone, k, ef, n_conn)
                searches += 1
                latencies.append(elapsed)
                votes: dict[int, int] = {}
                by_frame: dict[int, list] = {i: [] for i in range(len(q))}
                for idx, vid, dist in rows:
                    by_frame[idx].append((vid, 1.0 - float(dist)))
                    votes[vid] = votes.get(vid, 0) + 1
                found += bool(votes) and max(votes, key=votes.get) == pks[original]
                for i, hits in by_frame.items():
                    recalls.append(sum(sim >= kth[i] - DISTANCE_TOLERANCE for _, sim in hits) / k)
                    # what candidate search uses: which videos the neighbours belong to (frames of
                    # one shot are near-ties, so which of them make the exact top k is a coin-toss)
                    exact_videos = {int(pks[int(j) // FRAMES_PER_VIDEO]) for j in truth[i]}
                    got = {vid for vid, _ in hits}
                    video_recalls.append(len(got & exact_videos) / len(exact_videos))
            key = str(ef) if connections == [1] else f"{ef} x{n_conn}"
            result["search"][key] = {
                "per_video_ms_p50": round(1000 * float(np.percentile(latencies, 50)), 1),
                "per_video_ms_p95": round(1000 * float(np.percentile(latencies, 95)), 1),
                f"recall_at_{k}": round(float(np.mean(recalls)), 4),
                f"video_recall_at_{k}": round(float(np.mean(video_recalls)), 4),
                "copied_video_ranked_first": f"{found}/{queries}",
            }
            self.stderr.write(f"ef_search {ef}, {n_conn} connection(s): {result['search'][key]}")

        # inserting new videos with the index in place (one transaction per video, as extraction does)
        t0 = time.monotonic()
        new = ready_videos([f"/synthetic/new/{i:07d}.mp4" for i in range(20)], backbone)
        for video, (_, frames) in zip(new, videos(20, start=n_videos), strict=True):
            _store(video.pk, frames, basis, backbone)
        result["insert_videos_per_s"] = round(len(new) / (time.monotonic() - t0), 2)
        result["machine"] = describe()
        self.stdout.write(json.dumps(result, indent=1))


def _store(video_id: int, frames: np.ndarray, basis, backbone: str) -> None:
    """One video's frames written as `video_extract` writes them: one transaction, binary COPY
    through `services.copy_rows`, with their projections where the index is projected."""
    from pgvector import HalfVector

    small = project_(frames, basis) if basis is not None else [None] * len(frames)
    rng = np.random.default_rng(video_id)
    hashes = rng.integers(-(2**63), 2**63 - 1, len(frames), dtype=np.int64)
    rows = (
        [video_id, i, float(i), True, True, int(h), *bands(int(h)), None, backbone, HalfVector(f)]
        + [HalfVector(s) if s is not None else None]
        for i, (f, s, h) in enumerate(zip(frames, small, hashes, strict=True))
    )
    with transaction.atomic():
        services.copy_rows("dedup_frame", services.FRAME_COLUMNS, rows)
