"""The results contract of ../shared/bench: a,b,score,label first, then everything that explains it.

Besides every scored pair, two members of one duplicate group are duplicates even when their
own comparison fell short (a heavily blurred copy and a mirrored one may both match the
original clearly but each other weakly): such pairs are written with label `duplicate` and
`via=group`, scored as the group's weakest confident link. A pair a moderator decided is written with the
verdict (`duplicate` or `different`, `via=verdict`): re-scoring never overturns a decision.
"""

import csv
import itertools
import json
from collections.abc import Sequence

from .matching.breakdown import Breakdown, Segments
from .models import Pair, Video
from .services.groups import verdict_edges

COLUMNS = [
    "a",
    "b",
    "score",
    "label",
    "via",
    "visual",
    "audio",
    "metadata",
    "a_start",
    "a_end",
    "b_start",
    "b_end",
    "coverage_a",
    "coverage_b",
    "offset",
    "speed",
    "matched_frames",
    "config",
]


def _pair_row(p: Pair) -> dict:
    seg = Segments.from_json(p.segments)
    a_seg: Sequence[float | None] = seg.span_a or [None, None]
    b_seg: Sequence[float | None] = seg.span_b or [None, None]
    return {
        "a": p.video_a.rel_path,
        "b": p.video_b.rel_path,
        "score": round(p.score, 4),
        "label": p.label,
        "via": "pair",
        "visual": p.visual,
        "audio": p.audio,
        "metadata": p.metadata,
        "a_start": a_seg[0],
        "a_end": a_seg[1],
        "b_start": b_seg[0],
        "b_end": b_seg[1],
        "coverage_a": seg.coverage_a,
        "coverage_b": seg.coverage_b,
        "offset": seg.offset,
        "speed": seg.speed,
        "matched_frames": Breakdown.from_json(p.breakdown).matched_frames,
        "config": p.config_id,
    }


def pair_rows(pairs=None, *, include_groups: bool = True):
    # a moderator's verdict is the answer for its pair, whatever any score or group says
    confirmed, rejected = verdict_edges()
    confirmed_keys = {(a, b) for a, b, *_ in confirmed}
    pairs = pairs if pairs is not None else Pair.objects.all()
    scored: dict[tuple[int, int], Pair] = {}
    for p in pairs.select_related("video_a", "video_b").order_by("-score", "pk").iterator(chunk_size=2000):
        scored[(p.video_a_id, p.video_b_id)] = p
    verdict_rows = []
    for key in sorted(confirmed_keys | rejected):
        own = scored.pop(key, None)
        if own is None:
            continue
        row = _pair_row(own)
        row.update(label="duplicate" if key in confirmed_keys else "different", via="verdict")
        verdict_rows.append(row)
    group_rows = []
    if include_groups:
        members: dict[int | None, list[Video]] = {}
        for video in Video.objects.filter(group__isnull=False).only("pk", "rel_path", "group_id"):
            members.setdefault(video.group_id, []).append(video)
        for videos in members.values():
            videos.sort(key=lambda v: v.pk)
            links = [
                scored[k].score
                for k in itertools.combinations([v.pk for v in videos], 2)
                if k in scored and scored[k].is_duplicate
            ]
            weakest = min(links) if links else 0.0
            for a, b in itertools.combinations(videos, 2):
                if (a.pk, b.pk) in rejected or (a.pk, b.pk) in confirmed_keys:
                    continue
                own = scored.get((a.pk, b.pk))
                if own is not None and own.is_duplicate:
                    continue
                row = _pair_row(own) if own is not None else {c: None for c in COLUMNS}
                row.update(
                    a=a.rel_path,
                    b=b.rel_path,
                    label="duplicate",
                    via="group",
                    score=round(max(weakest, own.score if own else 0.0), 4),
                )
                group_rows.append(row)
                scored.pop((a.pk, b.pk), None)
    rows = [_pair_row(p) for p in scored.values()] + group_rows + verdict_rows
    rows.sort(key=lambda r: -r["score"])
    return rows


# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A value as a CSV cell: text that a spreadsheet would run as a formula gets a leading quote.
    Only text: a negative score or offset is a number and stays one."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_matches(fh, *, fmt: str = "csv", pairs=None) -> int:
    rows = pair_rows(pairs)
    if fmt == "json":
        # JSON is read by programs, not spreadsheets: file names stay exactly as they are
        json.dump(rows, fh, indent=1)
        return len(rows)
    writer = csv.DictWriter(fh, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return len(rows)
