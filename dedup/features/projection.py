"""A linear map of frame embeddings to a few hundred dimensions, for the candidate index only.

At 1 M frame vectors a 1280-d HNSW index is 3.9 GB and a new video's search takes p95 ≈ 240 ms;
at 256 dimensions the index is 0.8 GB and the same search p95 ≈ 160–180 ms at the same recall, and
10 M frames' index (7.9 GB) still fits in this machine's memory (`make bench-index`,
docs/benchmarks.md).
Full embeddings stay in the table: candidate search re-ranks the projected index's neighbours by
their full cosine, and scoring never sees the projection.

The basis is the leading eigenvectors of the *uncentred* second moment Σ x xᵀ of a library's
embeddings. Uncentred because cosine similarity is measured from the origin, and the direction
that all embeddings share carries much of their length: on the development benchmark's real
embeddings (fitted on half the source videos, measured on the other half, exact search) the
uncentred basis keeps 0.996 of the videos of each frame's exact 40 nearest neighbours at 256
dimensions with a 2× re-rank, a centred PCA basis 0.982, a random projection 0.979 (without the
re-rank 0.957 / 0.935 / 0.923; `manage.py bench_projection --basis uncentred centred random`).
"""

import numpy as np

PROJECTED_DIM = 256


def second_moment(embeddings: np.ndarray) -> np.ndarray:
    """Σ x xᵀ of a block of L2-normalised embeddings (float64; add the blocks of a large library)."""
    x = np.asarray(embeddings, dtype=np.float64)
    return x.T @ x


def fit_basis(moment: np.ndarray, dim: int = PROJECTED_DIM) -> np.ndarray:
    """(full dim, dim) float32 orthonormal basis of the leading eigenvectors of a second moment."""
    if dim > moment.shape[0]:
        raise ValueError(f"cannot project {moment.shape[0]}-d embeddings to {dim} dimensions")
    values, vectors = np.linalg.eigh(moment)
    basis = vectors[:, np.argsort(values)[::-1][:dim]]
    # an eigenvector's sign is arbitrary: fix it so refitting the same library gives the same basis
    basis *= np.where(basis.sum(axis=0) < 0, -1.0, 1.0)
    return basis.astype(np.float32)


def project(embeddings: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(n, dim) float32 projections (not normalised: the index compares them by cosine)."""
    return (np.asarray(embeddings, dtype=np.float32) @ basis).astype(np.float32)
