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


# ---------------------------------------------------------------- dashboard (small multiples)


def bar_chart(
    items: list[tuple[str, int]], *, width: int = 360, height: int = 150, label_every: int = 1
) -> dict:
    """Vertical bars, one per (label, n), heights relative to the tallest; every `label_every`-th
    bar is labelled underneath (fourteen dates do not fit under fourteen narrow bars)."""
    pad, top, bottom = 8, 16, 18  # room for the numbers over the bars and the labels under them
    tallest = max([n for _, n in items] + [1])
    plot_h = height - top - bottom
    slot = (width - 2 * pad) / max(len(items), 1)
    bar_w = min(slot * 0.8, 48)  # one moderator is not a wall of colour
    bars = []
    for i, (label, n) in enumerate(items):
        h = plot_h * n / tallest
        x = pad + i * slot
        bars.append(
            {
                "x": round(x + (slot - bar_w) / 2, 1),
                "y": round(top + plot_h - h, 1),
                "w": round(bar_w, 1),
                "h": round(h, 1),
                "cx": round(x + slot / 2, 1),
                "label": label,
                "show_label": i % label_every == 0,
                "n": n,
            }
        )
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "tallest": tallest,
        "baseline": top + plot_h,
        "label_y": height - 5,
        "left": pad,
        "right": width - pad,
    }


def stacked_rows(
    rows: list[tuple[str, list[int]]], parts: list[str], *, width: int = 360, row_h: int = 22
) -> dict:
    """One horizontal bar per row, split into its parts (counts), lengths relative to the longest
    row; the label sits left of the bar."""
    label_w, pad = 110, 6
    longest = max([sum(counts) for _, counts in rows] + [1])
    plot_w = width - label_w - 2 * pad - 30  # room for the total after the bar
    out = []
    for i, (label, counts) in enumerate(rows):
        y = pad + i * row_h
        x = label_w
        segments = []
        for j, n in enumerate(counts):
            w = plot_w * n / longest
            if n:
                segments.append({"x": round(x, 1), "w": round(w, 1), "n": n, "part": j, "name": parts[j]})
            x += w
        out.append(
            {
                "label": label,
                "y": y,
                "text_y": y + row_h * 0.65,
                "h": row_h - 6,
                "segments": segments,
                "total": sum(counts),
                "total_x": round(x + 4, 1),
            }
        )
    return {"width": width, "height": pad * 2 + row_h * len(rows), "rows": out, "label_x": label_w - 6}
