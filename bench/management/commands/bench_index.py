"""Scale of the frame-vector index: fill a table shaped like dedup_frame's index (halfvec, cosine
HNSW) with N synthetic frame embeddings and measure load and build time, index size, insert rate
with the index in place, candidate-search latency per new one-minute video, and recall@k against
exact search.

Synthetic embeddings imitate the default backbone's: 1280-d, non-negative-mean (unrelated frames
meet at cosine ≈ 0.5), videos drawn from a few thousand content clusters, frames of one video
drifting along a shot (consecutive frames ≈ 0.9). Queries are new uploads that re-encode a stored
video (frame noise: cosine ≈ 0.93 to the original).
"""

import json
import time

import numpy as np
from django.core.management.base import BaseCommand
from django.db import connection
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from dedup.features.projection import fit_basis, second_moment
from dedup.features.projection import project as project_
from dedup.services import search_plan
from lib.machine import describe

FRAMES_PER_VIDEO = 60
TABLE = "bench_index_frame"


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


# binary COPY framing (PostgreSQL's COPY BINARY header: signature, flags, extension length)
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + bytes(8)
COPY_TRAILER = b"\xff\xff"


def _halfvec_fields(name: str, dim: int) -> list:
    # a halfvec in binary: int16 dim, int16 unused (0), dim big-endian float16
    return [(f"{name}_len", ">i4"), (f"{name}_dim", ">i2"), (f"{name}_unused", ">i2"), (name, ">f2", (dim,))]


def binary_rows(video_ids: np.ndarray, frames: np.ndarray, small: np.ndarray | None) -> bytes:
    """COPY BINARY rows (video_id int4, embedding halfvec[, small halfvec]) built by numpy: writing
    rows one by one through psycopg caps the load at ≈ 16,000 rows/s, 10 minutes per 10 M."""
    fields = [("n", ">i2"), ("vid_len", ">i4"), ("vid", ">i4"), *_halfvec_fields("e", frames.shape[1])]
    if small is not None:
        fields += _halfvec_fields("s", small.shape[1])
    rows = np.zeros(len(frames), dtype=np.dtype(fields))
    rows["n"] = 2 if small is None else 3
    rows["vid_len"], rows["vid"] = 4, video_ids
    rows["e_len"], rows["e_dim"], rows["e"] = 4 + 2 * frames.shape[1], frames.shape[1], frames
    if small is not None:
        rows["s_len"], rows["s_dim"], rows["s"] = 4 + 2 * small.shape[1], small.shape[1], small
    return rows.tobytes()


def _insert_video(cur, video_id: int, frames: np.ndarray, basis: np.ndarray | None) -> None:
    """One video's frames as extraction stores them: one statement, with their projections."""
    if basis is None:
        cur.executemany(
            f"INSERT INTO {TABLE} (video_id, embedding) VALUES (%s, %s)",
            [(video_id, HalfVector(f)) for f in frames],
        )
        return
    cur.executemany(
        f"INSERT INTO {TABLE} (video_id, embedding, small) VALUES (%s, %s, %s)",
        [
            (video_id, HalfVector(f), HalfVector(p))
            for f, p in zip(frames, project_(frames, basis), strict=True)
        ],
    )


def reencode(frames: np.ndarray, rng) -> np.ndarray:
    x = frames + 0.012 * rng.standard_normal(frames.shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Command(BaseCommand):
    help = "HNSW scale benchmark on synthetic frame embeddings (make bench-index)."

    @staticmethod
    def _search_as_the_app(cur, q, basis, k, rerank, pool=None):
        """Store the new video's frames, then one lateral query over them, as find_candidates
        does (the query vectors come from the table, not from the client); the frames are
        removed again. Returns (frame number, neighbour id, neighbour video) rows and the query's
        time (storing the frames is extraction's cost, measured by the insert rate)."""
        new_video = -1
        _insert_video(cur, new_video, q, basis)
        if basis is not None:
            sql = (
                f"SELECT q.id, n.id - 1, n.video_id FROM {TABLE} q CROSS JOIN LATERAL ("
                f"SELECT c.id, c.video_id FROM (SELECT f.id, f.video_id, f.embedding FROM {TABLE} f "
                "WHERE f.video_id <> q.video_id ORDER BY f.small <=> q.small LIMIT %s) c "
                "ORDER BY c.embedding <=> q.embedding LIMIT %s) n WHERE q.video_id = %s"
            )
            params = (rerank * k, k, new_video)
        else:
            sql = (
                f"SELECT q.id, n.id - 1, n.video_id FROM {TABLE} q CROSS JOIN LATERAL ("
                f"SELECT f.id, f.video_id FROM {TABLE} f WHERE f.video_id <> q.video_id "
                "ORDER BY f.embedding <=> q.embedding LIMIT %s) n WHERE q.video_id = %s"
            )
            params = (k, new_video)
        cur.execute(f"SELECT min(id) FROM {TABLE} WHERE video_id = %s", (new_video,))
        first = cur.fetchone()[0]
        if pool is None:
            start = time.perf_counter()
            cur.execute(sql, params)
            rows = cur.fetchall()
            elapsed = time.perf_counter() - start
        else:
            # as ASTRADUP_CANDIDATE_SEARCH_CONNECTIONS does: the frames committed, then split by
            # frame number over the pool's connections, searched at once
            cur.connection.commit()
            executor, conns = pool
            grouped = sql + f" AND q.id %% {len(conns)} = %s"

            def group(i: int) -> list:
                with conns[i].cursor() as c:
                    c.execute(grouped, (*params, i))
                    found = c.fetchall()
                conns[i].commit()
                return found

            start = time.perf_counter()
            rows = [r for found in executor.map(group, range(len(conns))) for r in found]
            elapsed = time.perf_counter() - start
        cur.execute(f"DELETE FROM {TABLE} WHERE video_id = %s", (new_video,))
        if pool is not None:
            cur.connection.commit()
        return [(r[0] - first + 1, r[1], r[2]) for r in rows], elapsed

    @staticmethod
    def _pool(n: int, prepare):
        """n more connections to the benchmark's database, each prepared (search settings), and
        threads to drive them."""
        from concurrent.futures import ThreadPoolExecutor

        conns = []
        for _ in range(n):
            c = connection.get_new_connection(connection.get_connection_params())
            with c.cursor() as cur:
                prepare(cur)
            c.commit()
            conns.append(c)
        return ThreadPoolExecutor(n), conns

    def add_arguments(self, parser):
        parser.add_argument("--vectors", type=int, default=1_000_000)
        parser.add_argument("--dim", type=int, default=1280)
        parser.add_argument("--m", type=int, default=16)
        parser.add_argument("--ef-construction", type=int, default=64)
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
            help="Index a projection to this many dimensions, as fit_index_projection does, and search "
            "it as the app does (top k x --rerank by projected cosine, re-ranked by full cosine).",
        )
        parser.add_argument("--rerank", type=int, default=2)
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
            "--per-frame-statements",
            action="store_true",
            help="One statement per query frame (as the tables before the projection were measured); "
            "default: one lateral query per video, as the app sends.",
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
        dim,
        m,
        ef_construction,
        ef_search,
        k,
        queries,
        seed,
        maintenance_work_mem,
        spectrum_decay,
        project,
        rerank,
        warm_up,
        storage,
        per_frame_statements,
        connections,
        **o,
    ):
        n_videos = vectors // FRAMES_PER_VIDEO
        raw = connection.cursor().connection  # psycopg 3
        register_vector(raw)
        result: dict = {
            "vectors": n_videos * FRAMES_PER_VIDEO,
            "dim": dim,
            "m": m,
            "ef_construction": ef_construction,
            "spectrum_decay": spectrum_decay,
            "storage": storage,
            "statements": "one per frame" if per_frame_statements else "one per video",
        }
        # what candidate search in the app would use at this size (ASTRADUP_HNSW_EF_SEARCH and
        # ASTRADUP_CANDIDATE_SEARCH_CONNECTIONS as set, by the library's size where auto)
        plan = search_plan(result["vectors"])
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
            result.update(project=project, rerank=rerank, fit_frames=len(sample))
        small = f", small halfvec({project}) NOT NULL" if project else ""
        with raw.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
            cur.execute(
                f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, video_id int NOT NULL, "
                f"embedding halfvec({dim}) NOT NULL{small})"
            )
            cur.execute(f"ALTER TABLE {TABLE} ALTER COLUMN embedding SET STORAGE {storage.upper()}")
        raw.commit()

        # the queries are re-encodes of stored videos, picked before the load so that exact search
        # runs over the vectors as they stream past (10 M × 1280 would not fit in memory)
        rng = np.random.default_rng(seed + 7)
        picked = rng.choice(n_videos, size=queries, replace=False)
        query_frames = [
            reencode(next(videos(1, start=int(v)))[1].astype(np.float16).astype(np.float32), rng)
            for v in picked
        ]
        exact = ExactTopK(np.concatenate(query_frames), k)
        t0 = time.monotonic()
        with (
            raw.cursor() as cur,
            cur.copy(
                f"COPY {TABLE} (video_id, embedding{', small' if project else ''}) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.write(COPY_SIGNATURE)
            chunk: list[np.ndarray] = []
            first = 0
            for vid, frames in videos(n_videos):
                chunk.append(frames)
                if len(chunk) == 500 or vid == n_videos - 1:
                    block = np.concatenate(chunk)
                    ids = np.repeat(np.arange(vid + 1 - len(chunk), vid + 1), FRAMES_PER_VIDEO)
                    copy.write(binary_rows(ids, block, project_(block, basis) if project else None))
                    # exact search sees what the table holds: halfvec-rounded vectors
                    exact.add(block.astype(np.float16).astype(np.float32), first)
                    first += len(block)
                    chunk = []
            copy.write(COPY_TRAILER)
        raw.commit()
        load = time.monotonic() - t0
        result["copy_rows_per_s"] = round(first / load)
        self.stderr.write(f"loaded {first} vectors in {load:.0f} s (exact search included)")
        # a settled table, as a library is: otherwise autovacuum's first pass over the freshly
        # loaded rows (30 GB at 10 M) runs during the searches, and until it has analysed the
        # table the planner finds the new video's frames by walking the primary key (14 s at 10 M)
        t0 = time.monotonic()
        autocommit, raw.autocommit = raw.autocommit, True
        with raw.cursor() as cur:
            cur.execute(f"VACUUM (ANALYZE) {TABLE}")
        raw.autocommit = autocommit
        result["vacuum_analyze_s"] = round(time.monotonic() - t0, 1)

        t0 = time.monotonic()
        with raw.cursor() as cur:
            cur.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
            cur.execute("SET max_parallel_maintenance_workers = 1")  # plus the leader: both cores
            # dedup_frame's video_id index: the app finds a new video's frames through it
            cur.execute(f"CREATE INDEX {TABLE}_video ON {TABLE} (video_id)")
            cur.execute(
                f"CREATE INDEX {TABLE}_hnsw ON {TABLE} USING hnsw ({'small' if project else 'embedding'} halfvec_cosine_ops) "
                f"WITH (m = {m}, ef_construction = {ef_construction})"
            )
            raw.commit()
            result["build_s"] = round(time.monotonic() - t0, 1)
            cur.execute(f"SELECT pg_relation_size('{TABLE}_hnsw'), pg_table_size('{TABLE}')")
            index_bytes, table_bytes = cur.fetchone()
        result["index_mb"] = round(index_bytes / 2**20)
        result["table_mb"] = round(table_bytes / 2**20)
        self.stderr.write(f"built the index in {result['build_s']} s ({result['index_mb']} MB)")

        truths = np.split(exact.ids(), queries)

        def search_settings(cur, ef: int) -> None:
            # as find_candidates sets them: at least the neighbours each frame takes from the index
            cur.execute(f"SET hnsw.ef_search = {max(ef, rerank * k if project else k)}")
            cur.execute("SET hnsw.iterative_scan = relaxed_order")

        # per query video: (60, k) exact neighbour ids
        if warm_up:
            others = np.setdiff1d(np.arange(n_videos), picked)
            warm_rng = np.random.default_rng(seed + 11)
            with raw.cursor() as cur:
                search_settings(cur, ef_search[0])
                for v in warm_rng.choice(others, size=min(warm_up, len(others)), replace=False):
                    frames = next(videos(1, start=int(v)))[1]
                    self._search_as_the_app(cur, reencode(frames, warm_rng), basis, k, rerank)
            result["warm_up_videos"] = warm_up
        result["search"] = {}
        runs = [(ef, n) for ef in ef_search for n in connections]
        for ef, n_conn in runs:
            latencies, recalls, video_recalls, found = [], [], [], 0
            pool = self._pool(n_conn, lambda c, ef=ef: search_settings(c, ef)) if n_conn > 1 else None
            with raw.cursor() as cur:
                search_settings(cur, ef)
                for q, truth, original in zip(query_frames, truths, picked, strict=True):
                    t0 = time.perf_counter()
                    votes: dict[int, int] = {}
                    if per_frame_statements:  # how the tables before the projection were measured
                        rows = []
                        for i, frame in enumerate(q, start=1):
                            if project:
                                cur.execute(
                                    f"SELECT id - 1, video_id FROM (SELECT id, video_id, embedding FROM {TABLE} "
                                    "ORDER BY small <=> %s LIMIT %s) c ORDER BY embedding <=> %s LIMIT %s",
                                    (
                                        HalfVector(project_(frame[None], basis)[0]),
                                        rerank * k,
                                        HalfVector(frame),
                                        k,
                                    ),
                                )
                            else:
                                cur.execute(
                                    f"SELECT id - 1, video_id FROM {TABLE} ORDER BY embedding <=> %s LIMIT %s",
                                    (HalfVector(frame), k),
                                )
                            rows += [(i, *r) for r in cur.fetchall()]
                        elapsed = time.perf_counter() - t0
                    else:
                        rows, elapsed = self._search_as_the_app(cur, q, basis, k, rerank, pool)
                    by_frame: dict[int, list] = {i: [] for i in range(1, len(q) + 1)}
                    for i, frame_id, vid in rows:
                        by_frame[i].append(frame_id)
                        votes[vid] = votes.get(vid, 0) + 1
                    hits = [by_frame[i] for i in range(1, len(q) + 1)]
                    latencies.append(elapsed)
                    found += max(votes, key=votes.get) == original
                    recalls.extend(
                        len(set(h) & set(t.tolist())) / k for h, t in zip(hits, truth, strict=True)
                    )
                    # what candidate search uses: which videos the neighbours belong to (frames of
                    # one shot are near-ties, so which of them make the exact top k is a coin-toss)
                    for h, t in zip(hits, truth, strict=True):
                        exact_videos = {int(i) // FRAMES_PER_VIDEO for i in t}
                        got = {int(i) // FRAMES_PER_VIDEO for i in h}
                        video_recalls.append(len(got & exact_videos) / len(exact_videos))
                raw.commit()
            if pool is not None:
                pool[0].shutdown()
                for c in pool[1]:
                    c.close()
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
        inserted = 0
        with raw.cursor() as cur:
            for vid, frames in videos(20, start=n_videos):
                _insert_video(cur, vid, frames, basis)
                raw.commit()
                inserted += 1
        result["insert_videos_per_s"] = round(inserted / (time.monotonic() - t0), 2)
        result["machine"] = describe()
        self.stdout.write(json.dumps(result, indent=1))
        with raw.cursor() as cur:
            cur.execute(f"DROP TABLE {TABLE}")
        raw.commit()
