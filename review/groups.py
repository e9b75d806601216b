"""Duplicate groups for moderators: what each member is, the copy to keep and why, and resolving
groups (one, or every exact group at once) as audited decisions that are undone together."""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from dedup.matching.breakdown import Segments
from dedup.matching.groups import KeepChoice, Link, keep_choice
from dedup.models import DuplicateGroup, Frame, Pair, Verdict, Video
from dedup.services import groups_refresh

from .models import Claim, Decision, Resolution
from .services import DecisionRefused, decision_record, decision_take_back

# the strongest label first: a member's kind is the strongest link it has to the group
KIND_ORDER = (Pair.Label.EXACT, Pair.Label.NEAR, Pair.Label.PARTIAL, Pair.Label.SIMILAR, Pair.Label.DIFFERENT)
KIND_WORDS = {
    Pair.Label.EXACT: "exact copy",
    Pair.Label.NEAR: "near duplicate",
    Pair.Label.PARTIAL: "partial copy",
    Pair.Label.SIMILAR: "similar",
    Pair.Label.DIFFERENT: "different",
}


@dataclass
class Member:
    video: Video
    kind: str  # exact copy, near duplicate, partial copy; "" for the copy kept
    partial: bool
    kept: bool

    @property
    def duration_text(self) -> str:
        seconds = self.video.duration or 0.0
        return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


@dataclass
class GroupOverview:
    group: DuplicateGroup
    members: list[Member]
    choice: KeepChoice
    keep: Video | None  # the canonical once chosen, else the suggestion (None: a person must choose)
    reasons: tuple[str, ...]
    exact: bool  # every pair in it is an exact duplicate
    open_pairs: list[Pair] = field(default_factory=list)  # duplicate pairs with no verdict yet
    freed_bytes: int = 0

    @property
    def has_partial(self) -> bool:
        return any(m.partial for m in self.members)

    @property
    def resolvable(self) -> bool:
        return bool(self.open_pairs) or self.group.canonical_id is None


def groups_overview(*, group_ids: list[int] | None = None) -> list[GroupOverview]:
    """Every duplicate group (or these) with its members, their kinds and the copy to keep; a fixed
    number of queries whatever the number of groups."""
    groups = DuplicateGroup.objects.order_by("pk")
    if group_ids is not None:
        groups = groups.filter(pk__in=group_ids)
    groups = list(groups)
    # a frame a third of the way in: past black openings and titles
    thumb = (
        Frame.objects.filter(video=OuterRef("pk"), t__gte=OuterRef("duration") / 3)
        .order_by("t")
        .values("idx")[:1]
    )
    members: dict[int, list[Video]] = {}
    for video in Video.objects.filter(group__in=groups).annotate(thumb_idx=Subquery(thumb)).order_by("pk"):
        members.setdefault(video.group_id, []).append(video)
    in_group = dict(video_a__group__in=groups, video_b__group=F("video_a__group"))
    pairs: dict[int, list[Pair]] = {}
    for pair in Pair.objects.filter(**in_group).select_related("video_a", "video_b", "config").order_by("pk"):
        pairs.setdefault(pair.video_a.group_id, []).append(pair)
    decided = set(Verdict.objects.filter(**in_group).values_list("video_a_id", "video_b_id"))
    return [_overview(g, members.get(g.pk, []), pairs.get(g.pk, []), decided) for g in groups]


def _overview(group: DuplicateGroup, videos: list[Video], pairs: list[Pair], decided: set) -> GroupOverview:
    links = [
        Link(p.video_a_id, p.video_b_id, p.label, Segments.from_json(p.segments).speed or 1.0) for p in pairs
    ]
    choice = keep_choice([v.keep_facts() for v in videos], links)
    by_id = {v.pk: v for v in videos}
    if group.canonical_id in by_id:
        keep, reasons = by_id[group.canonical_id], ("chosen by a moderator",)
    else:
        keep, reasons = by_id.get(choice.keep), choice.reasons
    members = []
    for video in videos:
        labels = [p.label for p in pairs if video.pk in (p.video_a_id, p.video_b_id)]
        to_keep = [
            p.label for p in pairs if keep is not None and {p.video_a_id, p.video_b_id} == {video.pk, keep.pk}
        ]
        strongest = min(to_keep or labels, key=KIND_ORDER.index) if (to_keep or labels) else ""
        kept = keep is not None and video.pk == keep.pk
        members.append(
            Member(
                video=video,
                kind="" if kept else KIND_WORDS.get(strongest, "confirmed by a moderator"),
                partial=video.pk in choice.partial,
                kept=kept,
            )
        )
    return GroupOverview(
        group=group,
        members=members,
        choice=choice,
        keep=keep,
        reasons=reasons,
        exact=bool(pairs) and all(p.label == Pair.Label.EXACT for p in pairs),
        open_pairs=[
            p
            for p in pairs
            if p.label in Pair.DUPLICATE_LABELS and (p.video_a_id, p.video_b_id) not in decided
        ],
        freed_bytes=sum(v.size or 0 for v in videos if keep is None or v.pk != keep.pk),
    )


def exact_groups_pending(overviews: list[GroupOverview]) -> list[GroupOverview]:
    """Exact groups still waiting for a copy to keep: what "Resolve all exact groups" resolves."""
    return [o for o in overviews if o.exact and o.resolvable and o.keep is not None]


def group_resolve(*, group_id: int, user, keep_id: int | None = None, partial_ok: bool = False) -> Resolution:
    """Keep one copy of a group and mark the rest its duplicates: each open pair gets a decision
    (merge where the kept copy is in it, confirm otherwise), audited as single ones are and tied to
    one Resolution row, undone together. A group holding partial copies needs `partial_ok`: a
    montage must not become the canonical of the clips it quotes by a careless click."""
    with transaction.atomic():
        if not DuplicateGroup.objects.select_for_update().filter(pk=group_id).exists():
            raise DecisionRefused("this group no longer exists (groups were recomputed); reload the page")
        (overview,) = groups_overview(group_ids=[group_id])
        if not overview.resolvable:
            raise DecisionRefused("this group is already resolved")
        keep = overview.keep
        if keep_id is not None and (keep is None or keep.pk != keep_id):
            if overview.group.canonical_id is not None:
                raise DecisionRefused("this group's copy to keep was already chosen")
            keep = next((m.video for m in overview.members if m.video.pk == keep_id), None)
            if keep is None:
                raise DecisionRefused("the copy to keep must be a member of the group")
        if keep is None:
            raise DecisionRefused("choose the copy to keep: every member is a partial copy")
        if overview.has_partial and not partial_ok:
            raise DecisionRefused(
                "this group holds partial copies: confirm that they are duplicates of the copy kept"
            )
        return _resolve([(overview, keep)], user=user, scope=Resolution.Scope.GROUP)


def groups_exact_resolve(*, user) -> Resolution:
    """Resolve every exact group at once, each keeping its suggested copy; one Resolution, one undo."""
    with transaction.atomic():
        ids = list(DuplicateGroup.objects.select_for_update().values_list("pk", flat=True))
        pending = exact_groups_pending(groups_overview(group_ids=ids))
        if not pending:
            raise DecisionRefused("no exact group is waiting to be resolved")
        return _resolve([(o, o.keep) for o in pending], user=user, scope=Resolution.Scope.EXACT)


def _resolve(items: list[tuple[GroupOverview, Video]], *, user, scope: str) -> Resolution:
    open_ids = [p.pk for overview, _ in items for p in overview.open_pairs]
    pairs = list(
        Pair.objects.select_for_update().filter(pk__in=open_ids).select_related("video_a", "video_b")
    )
    claim = (
        Claim.objects.filter(pair__in=pairs, expires_at__gt=timezone.now())
        .exclude(user=user)
        .select_related("user")
        .first()
    )
    if claim is not None:
        raise DecisionRefused(f"{claim.user} is reviewing a pair of this group right now")
    members = [m.video for overview, keep in items for m in overview.members if m.video.pk != keep.pk]
    resolution = Resolution.objects.create(
        scope=scope,
        user=user,
        groups=len(items),
        duplicates=len(members),
        freed_bytes=sum(v.size or 0 for v in members),
    )
    by_pk = {p.pk: p for p in pairs}
    for overview, keep in items:
        choose = overview.group.canonical_id is None
        for open_pair in overview.open_pairs:
            pair = by_pk[open_pair.pk]
            merge = choose and keep.pk in (pair.video_a_id, pair.video_b_id)
            decision_record(
                pair=pair,
                user=user,
                action=Decision.Action.MERGE if merge else Decision.Action.CONFIRM,
                canonical=keep if merge else None,
                resolution=resolution,
            )
        if choose:
            DuplicateGroup.objects.filter(pk=overview.group.pk).update(canonical=keep)
            resolution.kept.add(keep)
    return resolution


def resolution_undo(*, resolution: Resolution, user) -> Decision | None:
    """Take back a whole resolution: its verdicts go, each decision gets its UNDO audit row, the
    groups it gave a canonical have none again. Returns the last UNDO row (None if it had no pair)."""
    with transaction.atomic():
        resolution = Resolution.objects.select_for_update().get(pk=resolution.pk)
        if resolution.user_id != user.pk:
            raise DecisionRefused("only the moderator who resolved these groups can undo it")
        if resolution.undone_at is not None:
            raise DecisionRefused("this resolution was already undone")
        now = timezone.now()
        undo = None
        for decision in resolution.decisions.filter(undone_at__isnull=True).exclude(
            action=Decision.Action.UNDO
        ):
            undo = decision_take_back(decision, user=user, at=now, resolution=resolution)
        DuplicateGroup.objects.filter(canonical__in=resolution.kept.all()).update(canonical=None)
        resolution.undone_at = now
        resolution.save(update_fields=["undone_at"])
        groups_refresh()
    return undo


def resolution_last(*, user) -> Resolution | None:
    """The user's latest resolution still standing (the one an Undo button offers)."""
    if not user.is_authenticated:
        return None
    return Resolution.objects.filter(user=user, undone_at__isnull=True).first()
