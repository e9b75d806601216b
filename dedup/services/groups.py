"""Duplicate groups: connected components of confident pairs and moderators' verdicts, each with
the copy to keep."""

from django.db import transaction
from django.db.models.fields.json import KT

from ..matching.breakdown import SPEED, Segments
from ..matching.groups import Link, Span, family_edges, group_components, group_links, keep_best
from ..models import DuplicateGroup, Pair, Verdict, Video


def verdict_edges() -> tuple[list[tuple[int, int, float, str]], set[tuple[int, int]]]:
    """Confirmed pairs (as edges) and pairs judged not duplicates (never edges)."""
    confirmed, rejected = [], set()
    for a, b, kind in Verdict.objects.values_list("video_a_id", "video_b_id", "kind"):
        if kind == Verdict.Kind.DUPLICATE:
            confirmed.append((a, b, 1.0, "confirmed"))
        else:
            rejected.add((a, b))
    return confirmed, rejected


def groups_refresh() -> None:
    """Recompute duplicate groups from confident pairs and moderators' verdicts; a moderator's
    canonical choice is kept while that video stays in the group."""
    # moderators' verdicts win over scores
    confirmed, rejected = verdict_edges()
    scored = list(
        Pair.objects.filter(label__in=Pair.DUPLICATE_LABELS).values_list(
            "video_a_id", "video_b_id", "score", "label", "segments"
        )
    )
    edges = [(a, b, score, label) for a, b, score, label, _ in scored if (a, b) not in rejected] + confirmed
    # copies of one original that match the same stretch of it are one family even where their own
    # comparison fell short; never against a moderator's "not a duplicate"
    # only whole copies carry a family: a partial match (a clip, a montage's excerpt, a look-alike
    # stretch) links its two videos and no further, so one doubtful stretch never joins two families
    spans = [
        _span(a, b, score, segments)
        for a, b, score, label, segments in scored
        if (a, b) not in rejected and label in WHOLE_LABELS
    ]
    linked = [e for e in family_edges(spans) if (e[0], e[1]) not in rejected]
    components = group_components(edges + linked)
    videos = Video.objects.in_bulk([v for comp in components for v in comp])
    links = group_links(scored_links(list(videos)), components)
    with transaction.atomic():
        old_groups = {g.pk: g for g in DuplicateGroup.objects.all()}
        old_members: dict[int, set[int]] = {}
        for pk, group_id in Video.objects.filter(group__isnull=False).values_list("pk", "group_id"):
            old_members.setdefault(group_id, set()).add(pk)
        used: set[int] = set()
        assigned: set[int] = set()
        for comp in components:
            members = [videos[v] for v in comp]
            previous = [m.group_id for m in members if m.group_id in old_groups and m.group_id not in used]
            group = (
                old_groups[max(set(previous), key=previous.count)]
                if previous
                else DuplicateGroup.objects.create()
            )
            used.add(group.pk)
            assigned.update(comp)
            best = keep_best([m.keep_facts() for m in members], links[tuple(comp)])
            canonical = group.canonical_id if group.canonical_id in comp else None
            # most groups are unchanged by one new pair or decision: write only what changed
            if old_members.get(group.pk) == set(comp) and (group.suggested_keep_id, group.canonical_id) == (
                best,
                canonical,
            ):
                continue
            group.suggested_keep_id, group.canonical_id = best, canonical
            group.save()
            Video.objects.filter(pk__in=comp).exclude(group=group).update(group=group)
        Video.objects.filter(group__isnull=False).exclude(pk__in=assigned).update(group=None)
        DuplicateGroup.objects.exclude(pk__in=used).delete()


WHOLE_LABELS = ("exact", "near_duplicate")


def _span(a: int, b: int, score: float, segments: dict | None) -> Span:
    seg = Segments.from_json(segments)
    return Span(a, b, float(score), _pair_of(seg.span_a), _pair_of(seg.span_b))


def _pair_of(span: list[float] | None) -> tuple[float, float] | None:
    return (float(span[0]), float(span[1])) if span and None not in span else None


def scored_links(video_ids: list[int]) -> list[Link]:
    """The scored pairs among these videos, as keep_choice reads them (label and matched speed)."""
    rows = Pair.objects.filter(video_a__in=video_ids, video_b__in=video_ids).values_list(
        "video_a_id", "video_b_id", "label", KT(f"segments__{SPEED}")
    )
    return [Link(a, b, label, float(speed) if speed else 1.0) for a, b, label, speed in rows]
