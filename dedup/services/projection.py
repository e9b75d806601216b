"""The index projection: a low-dimensional basis fitted on the library's frame embeddings, every
frame's projection stored, and the frame indexes rebuilt on it (docs/matching.md)."""

from functools import lru_cache

import numpy as np
from django.db import connection, transaction
from pgvector import HalfVector

from ..features.projection import PROJECTED_DIM, fit_basis, project, second_moment
from ..models import Frame, FrameView, IndexProjection
from .db import frame_embeddings, frame_hnsw_indexes, statistics_refresh


@lru_cache(maxsize=4)
def _basis(projection_id: int) -> np.ndarray:
    return IndexProjection.objects.get(pk=projection_id).matrix()


def projection_basis(backbone: str) -> np.ndarray | None:
    """The backbone's index projection, fitted or being filled; None when there is none. A new
    fit is a new row (a new id), so the cached basis never goes stale."""
    pk = IndexProjection.objects.filter(backbone=backbone).values_list("pk", flat=True).first()
    return _basis(pk) if pk is not None else None


def index_projection_fit(
    *,
    backbone: str,
    max_frames: int = 200_000,
    min_frames: int = PROJECTED_DIM,
    batch: int = 5000,
    maintenance_work_mem: str = "2GB",
    log=None,
) -> IndexProjection:
    """Fit the backbone's index projection on (up to `max_frames`, evenly spread) of its indexed
    frames, store every frame's projection, then mark it ready so candidate search uses it.

    A refit replaces the old projection; until the new one is ready, candidate search uses the
    full embeddings. Frames written meanwhile by workers are projected as they are written;
    passes repeat until no frame is left without a projection.

    The backbone's HNSW indexes are dropped before the column is touched and built again after:
    updating rows under a 1280-d HNSW index costs an index insert per row (≈ 300 rows/s at 1 M
    vectors, an hour per million); building the projected index afresh takes ≈ 3 minutes per
    million frames, and the full one comes back empty (it holds only frames without a projection,
    migration 0009). Meanwhile candidate search scans, so run it with the workers stopped; a run
    that stopped half-way is repaired by running it again."""
    log = log or (lambda message: None)
    total = Frame.objects.filter(model=backbone, informative=True, indexed=True).count()
    if total < min_frames:
        raise ValueError(
            f"{total} indexed frames of {backbone}; fitting a projection needs at least {min_frames} "
            "(a library this small is searched fast enough without one)"
        )
    basis, used = _basis_fit(backbone, step=max(1, -(-total // max_frames)), batch=batch)
    log(f"fitted a {PROJECTED_DIM}-d basis on {used} of {total} indexed frames")
    projection = _projection_replace(backbone, basis, used)
    _projections_write(backbone, basis, batch=batch, log=log)
    _frame_indexes_build(backbone, maintenance_work_mem=maintenance_work_mem, log=log)
    IndexProjection.objects.filter(pk=projection.pk).update(ready=True)
    projection.ready = True
    statistics_refresh()
    return projection


def _basis_fit(backbone: str, *, step: int, batch: int) -> tuple[np.ndarray, int]:
    """The basis fitted on every `step`-th indexed frame, read in blocks; and how many were used."""
    moment, used, last = None, 0, 0
    while True:
        ids, emb = frame_embeddings(
            "SELECT id, embedding FROM dedup_frame WHERE model = %s AND informative AND indexed "
            "AND id > %s ORDER BY id LIMIT %s",
            [backbone, last, batch * step],
        )
        if not ids:
            break
        last = ids[-1]
        block = second_moment(emb[::step])
        moment = block if moment is None else moment + block
        used += len(emb[::step])
    if moment is None:  # the caller counted the frames first; they went meanwhile
        raise ValueError(f"no indexed frames of {backbone} left to fit a projection on")
    return fit_basis(moment), used


def _projection_replace(backbone: str, basis: np.ndarray, used: int) -> IndexProjection:
    """The backbone's frame indexes dropped, its old projection gone from the table and from every
    frame, the new one stored (not ready yet: candidate search scans meanwhile)."""
    with connection.cursor() as cursor:
        for name, _ in frame_hnsw_indexes(backbone):
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
    with transaction.atomic():
        IndexProjection.objects.filter(backbone=backbone).delete()
        Frame.objects.filter(model=backbone).exclude(index_embedding=None).update(index_embedding=None)
        FrameView.objects.filter(model=backbone).exclude(index_embedding=None).update(index_embedding=None)
        return IndexProjection.objects.create(
            backbone=backbone, dim=PROJECTED_DIM, basis=basis.astype("<f4").tobytes(), frames=used
        )


def _projections_write(backbone: str, basis: np.ndarray, *, batch: int, log) -> None:
    """Every frame without a projection given one, in blocks; passes repeat until none is left
    (workers may write frames meanwhile)."""
    import psycopg
    from pgvector.psycopg.halfvec import register_halfvec_info
    from psycopg.types import TypeInfo

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as writer:
        # binary halfvecs for this cursor only: other reads on the connection expect raw bytes
        # psycopg takes a cursor as the adapters' context as well as a connection (the stub does not)
        register_halfvec_info(writer, TypeInfo.fetch(connection.connection, "halfvec"))  # type: ignore[arg-type]
        # the sub-pictures too: a view searches the projected index with its own projection
        for table in ("dedup_frame", "dedup_frameview"):
            while True:
                written, last = 0, 0
                while True:
                    ids, emb = frame_embeddings(
                        f"SELECT id, embedding FROM {table} WHERE model = %s AND index_embedding IS NULL "
                        "AND id > %s ORDER BY id LIMIT %s",
                        [backbone, last, batch],
                    )
                    if not ids:
                        break
                    last = ids[-1]
                    with transaction.atomic():
                        writer.executemany(
                            f"UPDATE {table} SET index_embedding = %s WHERE id = %s",
                            [(HalfVector(v), i) for v, i in zip(project(emb, basis), ids, strict=True)],
                        )
                    written += len(ids)
                    log(f"projected {written} {'frames' if table == 'dedup_frame' else 'sub-pictures'}")
                if not written:
                    break


def _frame_indexes_build(backbone: str, *, maintenance_work_mem: str, log) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = %s", [maintenance_work_mem])
        for name, ddl in frame_hnsw_indexes(backbone):
            log(f"building {name}")
            cursor.execute(ddl)
        cursor.execute("RESET maintenance_work_mem")
