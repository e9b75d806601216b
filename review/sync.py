"""Where the two players of a pair stand against each other: the aligned line t_b = speed · t_a +
offset the matcher found, and the step between A's samples (pure: no Django).

The pair screen plays B at `speed` times A's rate so both show the same moment, and ←/→ move
both by one sample of A (the frames the match was computed on)."""

from dataclasses import dataclass
from statistics import median

from dedup.matching.breakdown import Json, Segments


@dataclass(frozen=True)
class SyncLine:
    speed: float
    offset: float
    step: float  # seconds between A's sampled frames
    start_a: float  # where "play in sync" starts: the matched segment's start in A


def sync_line(*, segments: Json | None, times_a: list[float]) -> SyncLine:
    seg = Segments.from_json(segments)
    speed = seg.speed if seg.speed is not None and seg.speed > 0 else 1.0
    offset = seg.offset if seg.offset is not None else 0.0
    if seg.span_a:
        start_a = float(seg.span_a[0])
    elif seg.span_b:  # only B's side stored: map it back onto A
        start_a = max(0.0, (float(seg.span_b[0]) - offset) / speed)
    else:
        start_a = 0.0
    gaps = [b - a for a, b in zip(times_a, times_a[1:], strict=False) if b > a]
    step = round(median(gaps), 3) if gaps else 1.0
    return SyncLine(speed=speed, offset=offset, step=step, start_a=start_a)
