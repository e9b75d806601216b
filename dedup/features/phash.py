"""64-bit perceptual hashes (imagehash pHash), stored as signed bigint for PostgreSQL."""

import numpy as np


def phash64(image: np.ndarray) -> int:
    """pHash of an RGB frame as a signed 64-bit integer (PostgreSQL bigint)."""
    import imagehash
    from PIL import Image

    bits = imagehash.phash(Image.fromarray(image)).hash.flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value - (1 << 64) if value >= (1 << 63) else value


def hamming(a: int, b: int) -> int:
    return int((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between two arrays of int64 hashes."""
    x = a.astype(np.int64).view(np.uint64)[:, None] ^ b.astype(np.int64).view(np.uint64)[None, :]
    return np.bitwise_count(x).astype(np.int16)


def bands(value: int) -> tuple[int, int, int, int]:
    """Four 16-bit bands: two hashes within Hamming distance 3 share at least one band exactly."""
    u = value & 0xFFFFFFFFFFFFFFFF
    return tuple(((u >> (16 * i)) & 0xFFFF) - 32768 for i in range(4))  # type: ignore[return-value]
