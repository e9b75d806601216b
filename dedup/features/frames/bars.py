"""Letterbox and pillarbox bars, and frames too uniform to say anything."""

import numpy as np

BAR_LUMA = 28  # a bar row/column never gets brighter than this in any sampled frame
BAR_STEADY = 10  # ... nor do (nine in ten of) its pixels change by more than this between frames
MIN_BAR_FRACTION = 0.02
UNIFORM_STD = 7.0  # grey-level std below which a frame is considered uniform (black, white, flat)


def detect_bars(images: list[np.ndarray]) -> tuple[int, int, int, int]:
    """Letterbox/pillarbox bars: rows/columns that stay dark, and steady, in every sampled frame."""
    import cv2

    gray_max = images[0].max(axis=2)
    gray_min = gray_max
    for img in images[1:]:
        # brightest channel per pixel, kept as running extremes (numpy's axis reductions over
        # 3-channel frames cost more than decoding's conversion step)
        brightest = cv2.max(cv2.max(img[:, :, 0], img[:, :, 1]), img[:, :, 2])
        gray_max = cv2.max(gray_max, brightest)
        gray_min = cv2.min(gray_min, brightest)
    h, w = gray_max.shape
    # dark footage flickers (a blurred visualiser's dark edge stays under BAR_LUMA but changes);
    # a bar holds its level, but for the odd pixel where re-encoding smeared the picture into it
    flicker = cv2.subtract(gray_max, gray_min)
    dark_rows = (gray_max.max(axis=1) <= BAR_LUMA) & (np.percentile(flicker, 90, axis=1) <= BAR_STEADY)
    dark_cols = (gray_max.max(axis=0) <= BAR_LUMA) & (np.percentile(flicker, 90, axis=0) <= BAR_STEADY)
    if dark_rows.all() or dark_cols.all():
        return 0, 0, 0, 0

    def run(mask: np.ndarray) -> int:
        n = 0
        for value in mask:
            if not value:
                break
            n += 1
        return n

    top, bottom = run(dark_rows), run(dark_rows[::-1])
    left, right = run(dark_cols), run(dark_cols[::-1])
    min_h, min_w = MIN_BAR_FRACTION * h, MIN_BAR_FRACTION * w
    top, bottom = (top if top >= min_h else 0), (bottom if bottom >= min_h else 0)
    left, right = (left if left >= min_w else 0), (right if right >= min_w else 0)
    if h - top - bottom < 0.3 * h:
        top = bottom = 0
    if w - left - right < 0.3 * w:
        left = right = 0
    return top, bottom, left, right


def is_informative(image: np.ndarray) -> bool:
    import cv2

    # the plain mean of the three channels, as a float image, so the threshold keeps its meaning
    gray = cv2.transform(image.astype(np.float32), np.full((1, 3), 1 / 3, dtype=np.float32))
    return float(cv2.meanStdDev(gray)[1][0, 0]) >= UNIFORM_STD
