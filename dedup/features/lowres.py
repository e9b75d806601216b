"""A 16x16 grey thumbnail of each sampled frame: the picture with its detail gone.

Heavy blur and re-encoding move a CNN embedding a long way and a 16x16 grey image hardly at all,
so how the thumbnails change over aligned seconds confirms a copy the embedding doubts (see
`dedup.matching.visual.low_res_motion`). 256 bytes a frame.
"""

import numpy as np

THUMB_SIDE = 16


def thumbnail(image: np.ndarray) -> np.ndarray:
    """(THUMB_SIDE * THUMB_SIDE,) uint8 grey levels of an RGB frame, area-averaged."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).reshape(-1)
