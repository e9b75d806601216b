"""Duplicate groups from pair edges, guarded against daisy chains, and the copy to keep."""

from collections.abc import Sequence
from dataclasses import dataclass


def group_components(edges: list[tuple[int, int, float, str]]) -> list[list[int]]:
    """Connected components in which every member is linked to most of the others.

    Plain connected components chain A~B~C into one group even when A and C differ. Here a
    video joins a group only if it has edges to at least half of the group's current members and
    to two of them at least, so a chain of two links stays two separate groups (the shared video
    goes with its stronger link).
    """
    adjacency: dict[int, dict[int, float]] = {}
    for a, b, score, _label in edges:
        adjacency.setdefault(a, {})[b] = score
        adjacency.setdefault(b, {})[a] = score
    ordered = sorted(((score, a, b) for a, b, score, _ in edges), reverse=True)
    group_of: dict[int, int] = {}
    groups: dict[int, set[int]] = {}
    next_id = 0
    for _score, a, b in ordered:
        ga, gb = group_of.get(a), group_of.get(b)
        if ga is None and gb is None:
            groups[next_id] = {a, b}
            group_of[a] = group_of[b] = next_id
            next_id += 1
        elif ga is not None and gb is not None:
            if ga == gb:
                continue
            small, big = (ga, gb) if len(groups[ga]) <= len(groups[gb]) else (gb, ga)
            if all(_joins(adjacency, m, groups[big]) for m in groups[small]):
                for m in groups[small]:
                    group_of[m] = big
                groups[big] |= groups.pop(small)
        else:
            newcomer, g = (b, ga) if ga is not None else (a, gb)
            assert g is not None  # one of the two has a group: both or neither went above
            if _joins(adjacency, newcomer, groups[g]):
                groups[g].add(newcomer)
                group_of[newcomer] = g
    return [sorted(members) for members in groups.values() if len(members) > 1]


def _joins(adjacency: dict[int, dict[int, float]], video: int, members: set[int]) -> bool:
    """A video joins a group when linked to at least half its members, and to two of them at least
    (so A~B plus B~C never makes {A, B, C} unless A~C too)."""
    links = _links(adjacency, video, members)
    return links >= max(2, (len(members) + 1) // 2)


def _links(adjacency: dict[int, dict[int, float]], video: int, members: set[int]) -> int:
    neighbours = adjacency.get(video, {})
    return sum(1 for m in members if m in neighbours)


# more efficient first: at one resolution the newer codec keeps the same picture in fewer bytes
CODEC_RANK = {"av1": 4, "hevc": 3, "h265": 3, "vp9": 2, "h264": 1, "avc1": 1}
NEAR_TIE = 0.98  # values within 2 % of each other are ties
SPEED_TOLERANCE = 0.02


@dataclass(frozen=True)
class Link:
    """One scored pair inside a group: its label and the matched playback speed (t_b = speed * t_a + offset)."""

    a: int
    b: int
    label: str
    speed: float = 1.0


@dataclass(frozen=True)
class KeepChoice:
    """The copy to keep (None: a person must choose) and why, in words; `partial` are the members
    linked to the group only as partial copies, never chosen automatically."""

    keep: int | None
    reasons: tuple[str, ...]
    partial: frozenset[int]


def keep_choice(videos: list[dict], links: Sequence[Link] = ()) -> KeepChoice:
    """The copy to keep: never a partial member (a montage must not become the canonical of the
    clips it quotes); among byte-identical files the earliest ingested; then the higher
    resolution, the longer one (only when no pair is a speed change: a slowed copy is longer
    without holding more), the more efficient codec, and last the earliest file, most likely the
    original. Bitrate and file size are never reasons: an added-noise re-upload is bigger, not better.

    `videos`: dicts with id, pixels, duration, codec, sha256, mtime (see Video.keep_facts).
    """
    by_id = {v["id"]: v for v in videos}
    labels: dict[int, set[str]] = {v: set() for v in by_id}
    for link in links:
        for v in (link.a, link.b):
            if v in labels:
                labels[v].add(link.label)
    partial = frozenset(v for v, seen in labels.items() if seen and seen <= {"partial"})
    candidates = [v for v in videos if v["id"] not in partial]
    if not candidates:
        return KeepChoice(None, ("every member is only a partial copy of another: choose by hand",), partial)
    reasons: list[str] = []
    if partial:
        reasons.append("partial copies are never kept automatically")
    # byte-identical files count once, as their earliest-ingested copy
    first_of: dict[str, dict] = {}
    for facts in sorted(candidates, key=lambda v: v["id"]):
        if facts.get("sha256"):
            first_of.setdefault(facts["sha256"], facts)
    unique = [v for v in candidates if not v.get("sha256") or first_of[v["sha256"]] is v]
    if len(unique) < len(candidates):
        reasons.append("byte-identical files (same SHA-256): the earliest ingested is kept")
    candidates = unique
    ids = {v["id"] for v in candidates}
    speeds = [link.speed for link in links if link.a in ids and link.b in ids]
    steps = [("pixels", "higher resolution"), ("duration", "longer: holds the others")]
    for key, why in steps:
        if len(candidates) == 1:
            break
        if key == "duration" and any(abs((s or 1.0) - 1.0) > SPEED_TOLERANCE for s in speeds):
            reasons.append("durations differ by playback speed (a slowed copy is not longer content)")
            continue
        top = max(v[key] or 0 for v in candidates)
        kept = [v for v in candidates if (v[key] or 0) >= top * NEAR_TIE]
        if len(kept) < len(candidates):
            reasons.append(why)
        candidates = kept
    if len(candidates) > 1:
        top = max(CODEC_RANK.get(v.get("codec") or "", 0) for v in candidates)
        kept = [v for v in candidates if CODEC_RANK.get(v.get("codec") or "", 0) == top]
        if len(kept) < len(candidates):
            reasons.append(f"more efficient codec ({kept[0]['codec']})")
        candidates = kept
    if len(candidates) > 1:
        reasons.append("the earliest file: most likely the original")
        candidates = [min(candidates, key=lambda v: (v.get("mtime") or 0.0, v["id"]))]
    return KeepChoice(candidates[0]["id"], tuple(reasons) or ("the only full copy",), partial)


def keep_best(videos: list[dict], links: Sequence[Link] = ()) -> int | None:
    """The id of the copy to keep (see keep_choice); None when only a person may choose."""
    return keep_choice(videos, links).keep


def group_links(links: list[Link], components: list[list[int]]) -> dict[tuple[int, ...], list[Link]]:
    """The links inside each component, keyed by the component's (sorted) member ids."""
    member_of = {v: tuple(comp) for comp in components for v in comp}
    out: dict[tuple[int, ...], list[Link]] = {tuple(comp): [] for comp in components}
    for link in links:
        comp = member_of.get(link.a)
        if comp is not None and member_of.get(link.b) == comp:
            out[comp].append(link)
    return out


# Two copies of one video share footage when the stretches of it that they match overlap by at
# least this much of the shorter stretch, or by this many seconds: the benchmark's own rule for a
# duplicate (2 s or half the shorter) with a second of slack for where a matched stretch ends.
FAMILY_OVERLAP_SHARE = 0.5
FAMILY_OVERLAP_SECONDS = 3.0


@dataclass(frozen=True)
class Span:
    """A confident duplicate pair and the stretch of each video it covers (seconds, or None)."""

    a: int
    b: int
    score: float
    a_span: tuple[float, float] | None
    b_span: tuple[float, float] | None


def family_edges(spans: list[Span]) -> list[tuple[int, int, float, str]]:
    """Edges between two copies of one video that their own comparison missed.

    Two edited copies of one original (one mirrored, one shrunk into a corner) may each match the
    original clearly and each other weakly. When both match the same stretch of a third video
    (on that video's own timeline), they show the same footage and are linked, scored as the
    weaker of the two links. One hop only, and only through overlapping stretches: a montage that
    quotes two clips never links those clips (their stretches of the montage do not overlap), and
    an inferred edge never serves as a link for another, so unrelated videos are not chained.
    """
    direct = {(min(s.a, s.b), max(s.a, s.b)) for s in spans}
    spokes: dict[int, list[tuple[int, tuple[float, float] | None, float]]] = {}
    for s in spans:
        spokes.setdefault(s.a, []).append((s.b, s.a_span, s.score))
        spokes.setdefault(s.b, []).append((s.a, s.b_span, s.score))
    found: dict[tuple[int, int], float] = {}
    for around in spokes.values():
        for i, (x, span_x, score_x) in enumerate(around):
            for y, span_y, score_y in around[i + 1 :]:
                key = (min(x, y), max(x, y))
                if x == y or key in direct or not _share_footage(span_x, span_y):
                    continue
                found[key] = max(found.get(key, 0.0), min(score_x, score_y))
    return [(a, b, score, "family") for (a, b), score in sorted(found.items())]


def _share_footage(x: tuple[float, float] | None, y: tuple[float, float] | None) -> bool:
    if x is None or y is None:
        return False
    overlap = min(x[1], y[1]) - max(x[0], y[0])
    shorter = min(x[1] - x[0], y[1] - y[0])
    return overlap > 0 and (overlap >= FAMILY_OVERLAP_SECONDS or overlap >= FAMILY_OVERLAP_SHARE * shorter)
