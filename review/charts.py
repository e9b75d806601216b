"""Coordinates for the calibration page's two pictures (inline SVG, no chart library)."""

WIDTH, HEIGHT, PAD = 360, 220, 30


def _x(v: float) -> float:
    return round(PAD + v * (WIDTH - 2 * PAD), 1)


def _y(v: float) -> float:
    return round(HEIGHT - PAD - v * (HEIGHT - 2 * PAD), 1)


def pr_polyline(curve: list[dict]) -> str:
    """Precision (up) against recall (right)."""
    return " ".join(
        f"{_x(p['recall'])},{_y(p['precision'])}" for p in sorted(curve, key=lambda p: p["recall"])
    )


def histogram_bars(hist: dict, thresholds: dict[str, float]) -> dict:
    """Bars of both classes side by side in each score bin, heights relative to the tallest bin."""
    edges, dup, other = hist["edges"], hist["duplicate"], hist["not_duplicate"]
    tallest = max(dup + other + [1])
    bin_w = (WIDTH - 2 * PAD) / (len(edges) - 1)
    bars = []
    for i, (d, o) in enumerate(zip(dup, other, strict=True)):
        left = PAD + i * bin_w
        for j, (n, kind) in enumerate(((d, "duplicate"), (o, "not_duplicate"))):
            h = (HEIGHT - 2 * PAD) * n / tallest
            bars.append(
                {
                    "x": round(left + j * bin_w / 2, 1),
                    "y": round(HEIGHT - PAD - h, 1),
                    "w": round(bin_w / 2 - 1, 1),
                    "h": round(h, 1),
                    "kind": kind,
                    "n": n,
                    "range": f"{edges[i]:.2f}–{edges[i + 1]:.2f}",
                }
            )
    lines = [{"name": k, "x": _x(v)} for k, v in thresholds.items()]
    return {"bars": bars, "lines": lines, "tallest": tallest}


def frame() -> dict:
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": PAD,
        "right": WIDTH - PAD,
        "top": PAD,
        "bottom": HEIGHT - PAD,
        "plot_w": WIDTH - 2 * PAD,
        "plot_h": HEIGHT - 2 * PAD,
        "ticks": [{"v": v, "x": _x(v), "y": _y(v)} for v in (0.0, 0.25, 0.5, 0.75, 1.0)],
    }
