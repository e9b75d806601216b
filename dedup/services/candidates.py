"""Candidate search: the videos worth scoring against one video, found through index lookups
(frame embeddings through HNSW, pHash bands, audio hashes, SHA-256), never a scan of all pairs."""

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from ..features.embed import BACKBONES
from ..features.projection import PROJECTED_DIM
from ..models import Frame, FrameView, IndexProjection, Video

# Frames whose near-identical copies sit in at least this many other videos *and* this share of
# the library are boilerplate (test cards, logos, stock intros): they barely vote and, while
# they are a minority of the video, are left out of alignment.
COMMON_FRAME_MIN_VIDEOS = 8
COMMON_FRAME_LIBRARY_SHARE = 0.05
COMMON_FRAME_VOTE = 0.2
COMMON_FRAME_SIMILARITY = 0.9  # only near-identical neighbours make a frame common
# Common frames are left out of alignment only while they are a minority of the video (an intro,
# a logo); a video made of nothing but widely shared frames (one static camera in many uploads)
# keeps them all, and the scorer's static-shot checks decide.
COMMON_FRAME_MAX_SHARE = 0.5


@dataclass
class Candidates:
    votes: dict[int, float]
    reasons: dict[int, set]
    common_frames: set[int]  # idx of this video's frames that match too much of the library


# Candidate search through a projected index re-ranks this many neighbours per wanted one by their
# full cosine: on the benchmark's real embeddings (held-out source videos, exact search, 256-d)
# 1x keeps 0.957 of the exact neighbours' videos, 2x 0.996 (manage.py bench_projection); at 1 M
# vectors 2x costs p95 157-179 ms per new video (make bench-index, docs/benchmarks.md).
PROJECTED_RERANK = 2


FRAMES, VIEWS = "dedup_frame", "dedup_frameview"


def frame_neighbours_sql(
    backbone: str, *, source: str = "full", groups: int = 1, query: str = FRAMES, library: str = FRAMES
) -> str:
    """The k nearest library frames of each informative frame of one video (params: k, video id;
    source "projected": k × PROJECTED_RERANK, k, video id; with `groups` > 1 one more, the group:
    only the frames whose number modulo `groups` is that group query).

    The backbone and its dimension are literals, not a join condition or a parameter: only then
    can the planner match the backbone's partial HNSW index (`WHERE model = '…' AND informative
    AND indexed …`); otherwise it sorts the whole frame table once per query frame. Every
    informative frame queries; only the indexed ones (one per second of video) are found.

    source: "full", the full-embedding index, which holds the frames without a projection (in a
    library without one, all of them); "projected", the projected index (IndexProjection), its
    neighbours re-ranked by full cosine; "all", every frame's full embedding, while a fit fills
    the projection (its indexes are dropped then, so this scans).

    `query` and `library`: the tables of the frames that ask and of those found, the frames' or
    their sub-pictures' (FrameView); the sub-pictures' own index holds full embeddings (source
    "all" there)."""
    if {query, library} - {FRAMES, VIEWS}:
        raise ValueError(f"unknown frame tables {query!r}, {library!r}")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}")
    if source not in ("full", "projected", "all"):
        raise ValueError(f"unknown source {source!r}")
    dim = BACKBONES[backbone].dim
    vec = f"::halfvec({dim})"
    group = f" AND q.idx %% {int(groups)} = %s" if groups > 1 else ""
    if source == "projected":
        small = f"::halfvec({PROJECTED_DIM})"
        return f"""
        SELECT q.idx, n.video_id, n.dist
        FROM {query} q
        CROSS JOIN LATERAL (
            SELECT c.video_id, c.dist FROM (
                SELECT f.video_id, (f.embedding{vec}) <=> (q.embedding{vec}) AS dist
                FROM {library} f
                WHERE f.model = '{backbone}' AND f.informative AND f.indexed
                  AND f.index_embedding IS NOT NULL AND f.video_id <> q.video_id
                ORDER BY (f.index_embedding{small}) <=> (q.index_embedding{small})
                LIMIT %s
            ) c
            ORDER BY c.dist
            LIMIT %s
        ) n
        WHERE q.video_id = %s AND q.informative AND q.model = '{backbone}' AND q.index_embedding IS NOT NULL{group}
    """
    unprojected = " AND f.index_embedding IS NULL" if source == "full" else ""
    return f"""
        SELECT q.idx, n.video_id, n.dist
        FROM {query} q
        CROSS JOIN LATERAL (
            SELECT f.video_id, (f.embedding{vec}) <=> (q.embedding{vec}) AS dist
            FROM {library} f
            WHERE f.model = '{backbone}' AND f.informative AND f.indexed AND f.video_id <> q.video_id{unprojected}
            ORDER BY (f.embedding{vec}) <=> (q.embedding{vec})
            LIMIT %s
        ) n
        WHERE q.video_id = %s AND q.informative AND q.model = '{backbone}'{group}
    """


# At a fixed search breadth the HNSW search's recall falls as the library grows. Measured recall@40
# of videos against exact search (make bench-index, docs/benchmarks.md): ef_search 100 0.975 at
# 1 M frames, 0.959 at 2 M and 0.945 at 3 M; 200 0.976 at 3 M, 0.959 at 5 M and 0.937 at 10 M; 400
# 0.970 at 10 M. Each row: up to this many frames, the breadth that keeps it at 0.95 or more (its
# p95 at the row's end, one connection: 197 ms at 2 M with 100, 617 ms at 5 M with 200, 1.12 s at
# 10 M with 400).
SEARCH_BREADTH = ((2_000_000, 100), (5_000_000, 200), (None, 400))
# From this many frames a video's search is split over two connections, which halves its latency
# (the same neighbours, no less CPU). On a CPU without AVX-512 (an AMD Zen 3) the search at ef 100
# takes p95 280 ms at 500,000 frames and 543 ms at 1 M on one connection, 144 and 175 ms on two;
# at 10 M, ef 400, where the library no longer fits in memory, 1.12 s on one connection and 0.67 s
# on two (a Zen 4): a second connection keeps a second read from disk in flight.
SPLIT_SEARCH_FRAMES = 500_000


def library_frames() -> int:
    """Frames in the library, as the planner estimates them (ANALYZE, which autovacuum runs as the
    table grows, keeps the estimate): a catalogue read, where count(*) would read 10 M rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'dedup_frame'::regclass")
        return max(0, int(cursor.fetchone()[0]))  # -1 until the table is first analysed


def search_plan(frames: int) -> tuple[int, int]:
    """(ef_search, connections) for a library of `frames` frames: ASTRADUP_HNSW_EF_SEARCH and
    ASTRADUP_CANDIDATE_SEARCH_CONNECTIONS where set, otherwise by the library's size."""
    conf = settings.ASTRADUP
    ef_search = conf["HNSW_EF_SEARCH"] or next(
        ef for most, ef in SEARCH_BREADTH if most is None or frames <= most
    )
    connections = conf["CANDIDATE_SEARCH_CONNECTIONS"] or (2 if frames >= SPLIT_SEARCH_FRAMES else 1)
    return ef_search, connections


def frame_neighbours(
    backbone: str, source: str, params: list, ef_search: int, groups: int = 1
) -> list[tuple]:
    """Rows of `frame_neighbours_sql`. With `groups` N > 1, the video's frames are split into N
    groups searched at once, each on a connection of its own: one video's search then uses N
    cores and keeps N reads from disk in flight, which is what a library larger than memory waits
    on. Inside a transaction the frames may not be committed yet, and other connections could not
    see them: there it searches on this connection alone."""
    if groups <= 1 or connection.in_atomic_block:
        return _frame_neighbours_group(backbone, source, params, ef_search)

    def one(group: int) -> list[tuple]:
        try:
            return _frame_neighbours_group(backbone, source, params, ef_search, groups=groups, group=group)
        finally:
            connection.close()  # this thread's own connection

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(groups) as pool:
        return [row for rows in pool.map(one, range(groups)) for row in rows]


def _frame_neighbours_group(
    backbone: str,
    source: str,
    params: list,
    ef_search: int,
    *,
    groups: int = 1,
    group: int = 0,
    query: str = FRAMES,
    library: str = FRAMES,
) -> list[tuple]:
    # SET LOCAL takes effect only inside a transaction block (outside one PostgreSQL ignores it)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [ef_search])
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        sql = frame_neighbours_sql(backbone, source=source, groups=groups, query=query, library=library)
        cursor.execute(sql, [*params, group] if groups > 1 else params)
        return cursor.fetchall()


Vote = tuple[int, float, str]  # (other video, weight, why): one piece of evidence for a candidate


def find_candidates(
    video: Video, *, neighbours: int | None = None, min_similarity: float | None = None
) -> Candidates:
    """Index lookups only (HNSW, pHash bands, audio hashes, SHA-256): never a scan of all pairs.
    Each source of evidence votes; a video's votes add up in the order the sources are asked."""
    conf = settings.ASTRADUP
    k = neighbours or conf["CANDIDATE_NEIGHBOURS"]
    min_sim = min_similarity if min_similarity is not None else conf["CANDIDATE_MIN_SIMILARITY"]
    votes: dict[int, float] = {}
    reasons: dict[int, set] = {}
    embedding, common = _embedding_votes(video, k=k, min_similarity=min_sim)
    for vid, weight, why in [
        *_sha256_votes(video),
        *embedding,
        *_view_votes(video, k=k, min_similarity=min_sim),
        *_phash_votes(video, common),
        *_audio_votes(video),
    ]:
        votes[vid] = votes.get(vid, 0.0) + weight
        reasons.setdefault(vid, set()).add(why)
    ready = set(
        Video.objects.filter(pk__in=votes.keys(), status=Video.Status.READY).values_list("pk", flat=True)
    )
    informative = Frame.objects.filter(video_id=video.pk, informative=True).count()
    if len(common) > COMMON_FRAME_MAX_SHARE * informative:
        common = set()
    return Candidates(
        votes={v: w for v, w in votes.items() if v in ready},
        reasons={v: r for v, r in reasons.items() if v in ready},
        common_frames=common,
    )


def _sha256_votes(video: Video) -> list[Vote]:
    """Byte-identical files."""
    if not video.sha256:
        return []
    others = (
        Video.objects.filter(sha256=video.sha256, status=Video.Status.READY)
        .exclude(pk=video.pk)
        .values_list("pk", flat=True)
    )
    return [(other, 100.0, "sha256") for other in others]


def _search_source(backbone: str) -> str:
    """Which frame index to search (see `frame_neighbours_sql`): no projection, every frame is in
    the full index (none carries a projection); ready, the projected index; a fit filling it, every
    frame, scanned (the fit dropped the indexes)."""
    ready = IndexProjection.objects.filter(backbone=backbone).values_list("ready", flat=True).first()
    return "full" if ready is None else "projected" if ready else "all"


def _embedding_votes(video: Video, *, k: int, min_similarity: float) -> tuple[list[Vote], set[int]]:
    """The k nearest library frames of each informative frame, each video's best per frame voting
    its similarity; and the video's common frames (idx), which match too much of the library and
    vote little."""
    library = Video.objects.filter(status=Video.Status.READY).count()
    common_cutoff = max(COMMON_FRAME_MIN_VIDEOS, int(COMMON_FRAME_LIBRARY_SHARE * library))
    source = _search_source(video.backbone)
    projected = source == "projected"
    fetched = PROJECTED_RERANK * k if projected else k  # neighbours each frame takes from the index
    params = [fetched, k, video.pk] if projected else [k, video.pk]
    ef_search, connections = search_plan(library_frames())
    per_frame: dict[int, dict[int, float]] = {}
    rows = frame_neighbours(video.backbone, source, params, max(ef_search, fetched), connections)
    for idx, vid, dist in rows:
        sim = 1.0 - float(dist)
        if sim >= min_similarity:
            best = per_frame.setdefault(idx, {})
            best[vid] = max(best.get(vid, 0.0), sim)
    votes: list[Vote] = []
    common: set[int] = set()
    for idx, hits in per_frame.items():
        weight = 1.0
        if sum(1 for sim in hits.values() if sim >= COMMON_FRAME_SIMILARITY) >= common_cutoff:
            common.add(idx)
            weight = COMMON_FRAME_VOTE
        votes.extend((vid, weight * sim, "embedding") for vid, sim in hits.items())
    return votes, common


def _view_votes(video: Video, *, k: int, min_similarity: float) -> list[Vote]:
    """Sub-pictures (FrameView) meeting frames: this video's views ask the library's frames (a
    picture-in-picture copy finds its original), this video's frames and views ask the library's
    views (an original arriving after its copy, two laid-out copies of one original). Each
    video's best per frame votes its similarity, as whole frames do. Nothing is asked where
    there are no views, so a library without laid-out videos finds what it found before."""
    backbone = video.backbone
    library_has_views = (
        FrameView.objects.filter(model=backbone, informative=True, indexed=True)
        .exclude(video_id=video.pk)
        .exists()
    )
    if not video.layout and not library_has_views:
        return []
    source = _search_source(backbone)
    projected = source == "projected"
    fetched = PROJECTED_RERANK * k if projected else k
    ef_search, _ = search_plan(library_frames())
    rows: list[tuple] = []
    if video.layout:
        params = [fetched, k, video.pk] if projected else [k, video.pk]
        rows += _frame_neighbours_group(backbone, source, params, max(ef_search, fetched), query=VIEWS)
    if library_has_views:
        for query in (FRAMES, VIEWS) if video.layout else (FRAMES,):
            rows += _frame_neighbours_group(
                backbone, "all", [k, video.pk], ef_search, query=query, library=VIEWS
            )
    per_frame: dict[int, dict[int, float]] = {}
    for idx, vid, dist in rows:
        sim = 1.0 - float(dist)
        if sim >= min_similarity:
            best = per_frame.setdefault(idx, {})
            best[vid] = max(best.get(vid, 0.0), sim)
    return [(vid, sim, "sub-picture") for hits in per_frame.values() for vid, sim in hits.items()]


def _phash_votes(video: Video, common: set[int]) -> list[Vote]:
    """Frames whose perceptual hashes are near (common frames left out): any hash within Hamming
    distance 3 shares one of the four 16-bit bands exactly."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT f.video_id, q.idx
            FROM dedup_frame q JOIN dedup_frame f
              ON (f.phash_b0 = q.phash_b0 OR f.phash_b1 = q.phash_b1 OR f.phash_b2 = q.phash_b2 OR f.phash_b3 = q.phash_b3)
            WHERE q.video_id = %s AND q.informative AND f.informative AND f.video_id <> q.video_id
              AND bit_count((f.phash # q.phash)::bit(64)) <= 6
            """,
            [video.pk],
        )
        rows = cursor.fetchall()
    hits: dict[int, int] = {}
    for vid, idx in rows:
        if idx not in common:
            hits[vid] = hits.get(vid, 0) + 1
    return [(vid, 0.5 * n, "phash") for vid, n in hits.items()]


def _audio_votes(video: Video) -> list[Vote]:
    """Videos sharing at least 8 audio fingerprint values."""
    if not video.audio_fingerprint:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT o.video_id, count(*) FROM dedup_audiohash q JOIN dedup_audiohash o ON o.value = q.value
            WHERE q.video_id = %s AND o.video_id <> q.video_id
            GROUP BY o.video_id HAVING count(*) >= 8
            """,
            [video.pk],
        )
        return [(vid, 0.05 * n, "audio") for vid, n in cursor.fetchall()]
