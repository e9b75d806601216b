"""The index projection's basis: the leading directions of the embeddings, orthonormal, stable."""

import numpy as np
import pytest

from dedup.features.projection import fit_basis, project, second_moment


def _library(rng, n=600, full=64, rank=8):
    # embeddings that live near a few directions, plus a little noise in all the others
    mixing = rng.standard_normal((rank, full))
    x = rng.standard_normal((n, rank)) @ mixing + 0.01 * rng.standard_normal((n, full))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_basis_keeps_the_cosines_of_embeddings_from_the_same_subspace():
    rng = np.random.default_rng(0)
    library = _library(rng)
    basis = fit_basis(second_moment(library[:300]), dim=8)
    assert basis.shape == (64, 8) and basis.dtype == np.float32
    assert np.allclose(basis.T @ basis, np.eye(8), atol=1e-5)
    unseen = library[300:]
    p = project(unseen, basis)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    assert np.abs(p @ p.T - unseen @ unseen.T).max() < 0.02


def test_too_few_directions_lose_the_structure():
    rng = np.random.default_rng(1)
    library = _library(rng)
    basis = fit_basis(second_moment(library), dim=2)
    p = project(library, basis)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    assert np.abs(p @ p.T - library @ library.T).max() > 0.2


def test_block_sums_give_the_same_basis_as_one_pass_and_refits_agree_in_sign():
    library = _library(np.random.default_rng(2))
    whole = fit_basis(second_moment(library), dim=8)
    blocks = fit_basis(sum(second_moment(b) for b in np.array_split(library, 7)), dim=8)
    assert np.allclose(whole, blocks, atol=1e-4)


def test_a_basis_wider_than_the_embeddings_is_refused():
    with pytest.raises(ValueError):
        fit_basis(np.eye(4), dim=8)
