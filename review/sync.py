"""Where the two players of a pair stand against each other: the aligned line t_b = speed · t_a +
offset the matcher found, and the step between A's samples (pure: no Django).

The pair screen plays B at `speed` times A's rate so both show the same moment, and ←/→ move
both by one sample of A (the frames the match was computed on)."""

from dataclasses import dataclass
from statistics import median


@dataclass(frozen=True)
class SyncLine:
    speed: float
    offset: float
    step: float  # seconds between A's sampled frames
    start_a: float  # where "play in sync" starts: the matched segment's start in A


def sync_line(*, segments: dict | None, times_a: list[float]) -> SyncLine:
    segments = segments or {}
    speed = segments.get("speed")
    speed = float(speed) if isinstance(speed, int | float) and speed > 0 else 1.0
    offset = segments.get("offset")
    offset = float(offset) if isinstance(offset, int | float) else 0.0
    seg_a, seg_b = segments.get("a") or [], segments.get("b") or []
    if seg_a:
        start_a = float(seg_a[0][0])
    elif seg_b:  # only B's side stored: map it back onto A
        start_a = max(0.0, (float(seg_b[0][0]) - offset) / speed)
    else:
        start_a = 0.0
    gaps = [b - a for a, b in zip(times_a, times_a[1:], strict=False) if b > a]
    step = round(median(gaps), 3) if gaps else 1.0
    return SyncLine(speed=speed, offset=offset, step=step, start_a=start_a)
