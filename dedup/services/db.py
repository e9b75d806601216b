"""Database plumbing: binary COPY into the frame tables (frames, their sub-pictures), binary reads and the halfvec codec, the
frame HNSW index DDL, planner statistics."""

import numpy as np
from django.db import connection

from ..features.embed import BACKBONES
from ..features.projection import PROJECTED_DIM

# Column: binary COPY type, for the rows video_extract writes. Every column without a database
# default is listed (Django's `default=` is applied by the ORM only).
FRAME_COLUMNS = {
    "video_id": "int8",
    "idx": "int4",
    "t": "float8",
    "informative": "bool",
    "indexed": "bool",
    "phash": "int8",
    "phash_b0": "int2",
    "phash_b1": "int2",
    "phash_b2": "int2",
    "phash_b3": "int2",
    "thumb": "bytea",
    "model": "varchar",
    "embedding": "halfvec",
    "index_embedding": "halfvec",
}
# the sub-picture rows (FrameView): the frame's columns but the pHash bands (views are not searched by pHash)
FRAMEVIEW_COLUMNS = {
    "video_id": "int8",
    "view": "int2",
    "idx": "int4",
    "t": "float8",
    "informative": "bool",
    "indexed": "bool",
    "phash": "int8",
    "thumb": "bytea",
    "model": "varchar",
    "embedding": "halfvec",
    "index_embedding": "halfvec",
}
AUDIOHASH_COLUMNS = {"video_id": "int8", "value": "int4"}


def copy_rows(table: str, columns: dict[str, str], rows) -> None:
    """Binary COPY of `rows` (lists in the order of `columns`, column: COPY type) into `table` on
    Django's connection, inside the caller's transaction. For one video's 61 frames against
    bulk_create: 1.4 against 50 ms of app CPU and 20 against 82 ms in all (the embeddings' text
    form, 78,000 numbers written and parsed, was most of it)."""
    from pgvector.psycopg.halfvec import register_halfvec_info
    from psycopg.types import TypeInfo

    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        if "halfvec" in columns.values():
            # for this cursor only: the app's binary reads on the connection expect raw bytes
            register_halfvec_info(cursor, TypeInfo.fetch(raw, "halfvec"))
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(list(columns.values()))
            for row in rows:
                copy.write_row(row)


def binary_rows(sql: str, params: list) -> list[tuple]:
    """Rows in binary: through the ORM each halfvec arrives as text and is parsed float by float
    in Python, which was most of the scoring time."""
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def frame_rows(video_id: int) -> list[tuple]:
    """(idx, t, informative, phash, halfvec bytes, thumbnail bytes) of one video's frames."""
    return binary_rows(
        "SELECT idx, t, informative, phash, embedding, thumb FROM dedup_frame WHERE video_id = %s ORDER BY idx",
        [video_id],
    )


def view_rows(video_id: int) -> list[tuple]:
    """(view, idx, halfvec bytes, phash, thumbnail bytes) of one video's sub-picture rows."""
    return binary_rows(
        "SELECT view, idx, embedding, phash, thumb FROM dedup_frameview WHERE video_id = %s ORDER BY view, idx",
        [video_id],
    )


def halfvecs(blobs: list[bytes]) -> np.ndarray:
    # pgvector's binary halfvec: int16 dimension, int16 unused, then big-endian float16 values
    return np.stack([np.frombuffer(b, dtype=">f2", offset=4) for b in blobs]).astype(np.float32)


def frame_embeddings(sql: str, params: list) -> tuple[list[int], np.ndarray]:
    """(first column, L2-normalised embeddings) of the (id, embedding) rows a query selects."""
    rows = binary_rows(sql, params)
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float32)
    emb = halfvecs([r[1] for r in rows])
    return [r[0] for r in rows], emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9)


def frame_hnsw_indexes(backbone: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX) of a backbone's two frame indexes, as migrations 0007 and 0009 make
    them: the full embeddings of frames without a projection, and the projections."""
    dim = BACKBONES[backbone].dim
    where = f"WHERE model = '{backbone}' AND informative AND indexed"
    hnsw = "halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
    return [
        (
            f"frame_emb_hnsw_{backbone}",
            f"CREATE INDEX IF NOT EXISTS frame_emb_hnsw_{backbone} ON dedup_frame "
            f"USING hnsw ((embedding::halfvec({dim})) {hnsw} {where} AND index_embedding IS NULL",
        ),
        (
            f"frame_proj_hnsw_{backbone}",
            f"CREATE INDEX IF NOT EXISTS frame_proj_hnsw_{backbone} ON dedup_frame "
            f"USING hnsw ((index_embedding::halfvec({PROJECTED_DIM})) {hnsw} "
            f"{where} AND index_embedding IS NOT NULL",
        ),
    ]


def statistics_refresh() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dedup_video")
        cursor.execute("ANALYZE dedup_frame")
        cursor.execute("ANALYZE dedup_frameview")
        cursor.execute("ANALYZE dedup_audiohash")
