"""Fitting fusion weights and class thresholds to moderators' labels. Pure numpy: no Django here.

A pair's stored fusion inputs (dedup.matching.score.FusionInputs) re-score exactly under any
config, so a candidate config is judged by what it would have labelled the decided pairs.

- Weights: a search over the weight simplex for the best average precision of the pair score
  (the ranking the thresholds cut), preferring the weights closest to the current ones when
  several rank the labels equally well: small label sets must not swing the weights for nothing.
- Near-duplicate and partial thresholds: the pair that flags the most duplicates while the
  precision on the labels stays at or above the target.
- Auto-confirm (exact) threshold: above the highest-scored "not a duplicate", so no labelled
  non-duplicate would have skipped the queue.
- Similar threshold (the queue's floor): low enough that the queue still shows nearly every
  labelled duplicate the thresholds above miss.
- Everything is cross-validated (stratified folds: fit on the rest, count on the held-out fold),
  for the current config too, so the two columns of the report compare like with like.
- A one-variable logistic fit maps a pair score to the probability that it is a duplicate.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np

from dedup.matching.score import DUPLICATE_CODES, FusionArrays, classify
from dedup.matching.signals import ScoringParams

WEIGHT_STEP = 0.05
THRESHOLD_GRID = np.round(np.arange(0.50, 0.995, 0.01), 2)
AP_TOLERANCE = 0.002
QUEUE_RECALL = 0.99
QUEUE_MIN_YIELD = 0.2
EXACT_MARGIN = 0.02
FOLDS = 5

# told the name of each step as it starts (a job's progress); the steps are STEPS long
Step = Callable[[str], None]
STEPS = 1 + FOLDS


def _no_step(name: str) -> None:
    pass


@dataclass(frozen=True)
class Metrics:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    tn: int

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def metrics(flagged: np.ndarray, y: np.ndarray) -> Metrics:
    tp = int((flagged & y).sum())
    fp = int((flagged & ~y).sum())
    fn = int((~flagged & y).sum())
    tn = int((~flagged & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Metrics(precision, recall, f1, tp, fp, fn, tn)


def flagged_by(x: FusionArrays, params: ScoringParams) -> np.ndarray:
    _, labels = classify(x, params)
    return np.isin(labels, DUPLICATE_CODES)


def evaluate(x: FusionArrays, y: np.ndarray, params: ScoringParams) -> Metrics:
    return metrics(flagged_by(x, params), y)


def average_precision(scores: np.ndarray, y: np.ndarray) -> float:
    """Ranking quality of the scores, ties grouped (as ../shared/bench/evaluate.py counts it)."""
    if not y.any():
        return 0.0
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], y[order]
    # the last index of each run of equal scores: a tie is ranked as one block
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(t)[ends]
    seen = ends + 1
    new_tp = np.diff(np.r_[0, tp])
    return float(np.sum(new_tp * (tp / seen)) / t.sum())


def weight_grid(step: float = WEIGHT_STEP) -> np.ndarray:
    n = int(round(1 / step))
    rows = [
        (v / n, a / n, (n - v - a) / n)
        for v in range(1, n + 1)  # visual always counts: audio and metadata alone never make a copy
        for a in range(0, n - v + 1)
    ]
    return np.array(rows)


def fit_weights(x: FusionArrays, y: np.ndarray, current: ScoringParams) -> tuple[ScoringParams, float]:
    grid = weight_grid()
    aps = np.array(
        [
            average_precision(
                classify(x, replace(current, visual_weight=v, audio_weight=a, metadata_weight=m))[0], y
            )
            for v, a, m in grid
        ]
    )
    now = np.array([current.visual_weight, current.audio_weight, current.metadata_weight])
    now = now / now.sum() if now.sum() > 0 else now
    near_best = aps >= aps.max() - AP_TOLERANCE
    distance = np.abs(grid - now).sum(axis=1)
    pick = int(np.flatnonzero(near_best)[np.argmin(distance[near_best])])
    v, a, m = (round(float(w), 2) for w in grid[pick])
    return replace(current, visual_weight=v, audio_weight=a, metadata_weight=m), float(aps[pick])


def fit_thresholds(x: FusionArrays, y: np.ndarray, params: ScoringParams, target: float) -> ScoringParams:
    """Near-duplicate and partial thresholds with the highest recall at precision ≥ target; then the
    exact (auto-confirm) and similar (queue floor) thresholds around them."""
    best_key, best = None, params
    for near in THRESHOLD_GRID:
        for partial in THRESHOLD_GRID:
            trial = replace(
                params, near_threshold=float(near), partial_threshold=float(partial), exact_threshold=1.0
            )
            m = evaluate(x, y, trial)
            reaches = m.precision >= target
            closeness = -abs(near - params.near_threshold) - abs(partial - params.partial_threshold)
            # reach the target first; then recall; then precision; then stay near the current values
            key = (reaches, m.recall if reaches else m.precision, m.precision, closeness)
            if best_key is None or key > best_key:
                best_key, best = key, trial
    near = best.near_threshold
    scores, _ = classify(x, best)
    exact = auto_confirm_threshold(scores, y, near, params.exact_threshold, target)
    similar = queue_floor(scores, y, near, params.similar_threshold)
    return replace(best, exact_threshold=exact, similar_threshold=similar)


def queue_floor(scores: np.ndarray, y: np.ndarray, near: float, current: float) -> float:
    """The similar threshold: lowered from the current one (never raised) while the queue still
    misses labelled duplicates, but only as far as the band between it and the near threshold
    keeps at least QUEUE_MIN_YIELD duplicates: a queue of near-certain non-duplicates wastes
    moderators' time."""
    floor = round(min(near, current), 2)
    total = int(y.sum())
    t = floor
    while total and t - 0.01 >= 0.3:
        if (scores[y] >= t).sum() >= QUEUE_RECALL * total:
            break
        lower = round(t - 0.01, 2)
        band = (scores >= lower) & (scores < near)
        if band.any() and y[band].mean() < QUEUE_MIN_YIELD:
            break
        t = lower
    return t


def auto_confirm_threshold(
    scores: np.ndarray, y: np.ndarray, near: float, current: float, target: float
) -> float:
    """The lowest threshold that no labelled non-duplicate comes within EXACT_MARGIN of, and that
    enough labelled duplicates clear for "no error in n" to mean an error rate below 1 − target
    (rule of three: n ≥ 3 / (1 − target) at 95 % confidence). Without that much evidence the
    current threshold stays."""
    needed = int(np.ceil(3 / max(1e-6, 1 - target)))
    top_negative = float(scores[~y].max()) if (~y).any() else -1.0
    for t in THRESHOLD_GRID[THRESHOLD_GRID >= near]:
        if t < top_negative + EXACT_MARGIN:
            continue
        if int((scores[y] >= t).sum()) >= needed:
            return float(t)
        break
    return round(max(near, current), 2)


def fit(x: FusionArrays, y: np.ndarray, current: ScoringParams, target: float) -> ScoringParams:
    weighted, _ = fit_weights(x, y, current)
    return fit_thresholds(x, y, weighted, target)


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for cls in (True, False):
        idx = rng.permutation(np.flatnonzero(y == cls))
        for i, j in enumerate(idx):
            folds[i % k].append(int(j))
    return [np.array(sorted(f), dtype=int) for f in folds if f]


def cross_validate(
    x: FusionArrays,
    y: np.ndarray,
    current: ScoringParams,
    target: float,
    k: int = FOLDS,
    seed: int = 0,
    step: Step = _no_step,
) -> dict:
    """Held-out flags for the proposal (fitted without the fold) and for the current config."""
    proposed_flags = np.zeros(len(y), dtype=bool)
    proposed_scores = np.zeros(len(y))
    for i, fold in enumerate(stratified_folds(y, k, seed)):
        step(f"cross-validating: fold {i + 1} of {k}")
        train = np.setdiff1d(np.arange(len(y)), fold)
        params = fit(x.take(train), y[train], current, target)
        held = x.take(fold)
        proposed_flags[fold] = flagged_by(held, params)
        proposed_scores[fold] = classify(held, params)[0]
    current_flags = flagged_by(x, current)
    return {
        "proposed": metrics(proposed_flags, y).as_dict(),
        "current": metrics(current_flags, y).as_dict(),
        "proposed_ap": round(average_precision(proposed_scores, y), 4),
        "current_ap": round(average_precision(classify(x, current)[0], y), 4),
        "folds": k,
    }


def logistic_fit(
    scores: np.ndarray, y: np.ndarray, iterations: int = 50, ridge: float = 1e-3
) -> tuple[float, float]:
    """P(duplicate | score) = 1 / (1 + exp(-(a·score + b))), by Newton's method with a small ridge
    (perfectly separated labels would otherwise send a to infinity)."""
    X = np.c_[scores, np.ones_like(scores)]
    w = np.zeros(2)
    t = y.astype(float)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -30, 30)))
        grad = X.T @ (p - t) + ridge * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def pr_curve(scores: np.ndarray, y: np.ndarray, points: int = 60) -> list[dict]:
    """Precision and recall of "score ≥ t" over a grid of t, for the picture."""
    out = []
    for t in np.linspace(0.0, 1.0, points + 1):
        m = metrics(scores >= t, y)
        if m.tp + m.fp:
            out.append(
                {"t": round(float(t), 3), "precision": round(m.precision, 4), "recall": round(m.recall, 4)}
            )
    return out


def histograms(scores: np.ndarray, y: np.ndarray, bins: int = 20) -> dict:
    edges = np.linspace(0.0, 1.0, bins + 1)
    dup, _ = np.histogram(np.clip(scores[y], 0, 1), bins=edges)
    other, _ = np.histogram(np.clip(scores[~y], 0, 1), bins=edges)
    return {
        "edges": [round(float(e), 3) for e in edges],
        "duplicate": dup.tolist(),
        "not_duplicate": other.tolist(),
    }


def params_dict(p: ScoringParams) -> dict:
    return {k: round(v, 4) for k, v in asdict(p).items()}


def calibrate(
    x: FusionArrays,
    y: np.ndarray,
    current: ScoringParams,
    target: float,
    seed: int = 0,
    step: Step = _no_step,
) -> dict:
    """The whole report: proposal fitted on every label, its cross-validated metrics next to the
    current config's, and the pictures' data. `step` hears of each of the STEPS long steps."""
    step(f"fitting weights and thresholds to {len(y)} labels")
    proposed = fit(x, y, current, target)
    cv = cross_validate(x, y, current, target, seed=seed, step=step)
    scores_now, _ = classify(x, current)
    scores_new, _ = classify(x, proposed)
    a, b = logistic_fit(scores_new, y)
    return {
        "target_precision": target,
        "current": params_dict(current),
        "proposed": params_dict(proposed),
        "cross_validated": cv,
        "on_all_labels": {
            "current": evaluate(x, y, current).as_dict(),
            "proposed": evaluate(x, y, proposed).as_dict(),
        },
        "logistic": {"a": round(a, 4), "b": round(b, 4)},
        "curve": {"current": pr_curve(scores_now, y), "proposed": pr_curve(scores_new, y)},
        "histogram": {"current": histograms(scores_now, y), "proposed": histograms(scores_new, y)},
    }
