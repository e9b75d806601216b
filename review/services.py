"""Moderator work: the queue, claims, decisions (with their audit rows) and undo."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, QuerySet
from django.db.models.functions import Abs
from django.utils import timezone

from dedup.models import DuplicateGroup, Pair, ScoringConfig, Video
from dedup.services import groups_refresh

from .models import Claim, Decision, Verdict

CLAIM_SECONDS = 300
SKIP_HIDES_FOR = timedelta(hours=1)
QUEUE_LABELS = (Pair.Label.NEAR, Pair.Label.PARTIAL, Pair.Label.SIMILAR)
VERDICT_FOR = {
    Decision.Action.CONFIRM: Verdict.Kind.DUPLICATE,
    Decision.Action.MERGE: Verdict.Kind.DUPLICATE,
    Decision.Action.NOT_DUPLICATE: Verdict.Kind.NOT_DUPLICATE,
}


class DecisionRefused(Exception):
    """Shown to the moderator as is."""


def queue_pairs(
    *,
    user=None,
    label: str = "",
    min_score: float | None = None,
    max_score: float | None = None,
    order: str = "uncertainty",
) -> QuerySet[Pair]:
    """Pairs that need a human: near duplicate, partial or similar, with no verdict yet.

    Default order: most uncertain first (closest to the near-duplicate threshold), where a
    decision teaches calibration the most.
    """
    now = timezone.now()
    verdict = Verdict.objects.filter(video_a=OuterRef("video_a"), video_b=OuterRef("video_b"))
    pairs = (
        Pair.objects.filter(label__in=QUEUE_LABELS)
        .annotate(decided=Exists(verdict))
        .filter(decided=False)
        .select_related("video_a", "video_b")
    )
    if label in QUEUE_LABELS:
        pairs = pairs.filter(label=label)
    if min_score is not None:
        pairs = pairs.filter(score__gte=min_score)
    if max_score is not None:
        pairs = pairs.filter(score__lte=max_score)
    if user is not None:
        others_claim = Claim.objects.filter(pair=OuterRef("pk"), expires_at__gt=now).exclude(user=user)
        skipped = Decision.objects.filter(
            pair=OuterRef("pk"),
            user=user,
            action=Decision.Action.SKIP,
            undone_at__isnull=True,
            created_at__gt=now - SKIP_HIDES_FOR,
        )
        pairs = pairs.annotate(taken=Exists(others_claim), skipped=Exists(skipped)).filter(
            taken=False, skipped=False
        )
    if order == "score":
        return pairs.order_by("-score", "pk")
    if order == "-score":
        return pairs.order_by("score", "pk")
    near = ScoringConfig.active().near_threshold
    return pairs.annotate(uncertainty=Abs(F("score") - near)).order_by("uncertainty", "pk")


def queue_counts() -> dict[str, int]:
    counts = {label: 0 for label in QUEUE_LABELS}
    for row in queue_pairs().values("label").order_by().annotate(n=Count("pk")):
        counts[row["label"]] = row["n"]
    return counts


def pair_claim(*, pair: Pair, user) -> bool:
    """Claim a pair for a few minutes; False when someone else holds a live claim on it."""
    now = timezone.now()
    with transaction.atomic():
        Claim.objects.filter(pair=pair, expires_at__lte=now).delete()
        claim = Claim.objects.select_for_update().filter(pair=pair).first()
        if claim is not None and claim.user_id != user.pk:
            return False
        Claim.objects.update_or_create(
            pair=pair, defaults={"user": user, "expires_at": now + timedelta(seconds=CLAIM_SECONDS)}
        )
    return True


def next_pair(*, user, **filters) -> Pair | None:
    for pair in queue_pairs(user=user, **filters)[:20]:
        if pair_claim(pair=pair, user=user):
            return pair
    return None


def pair_decide(*, pair_id: int, user, action: str, canonical_id: int | None = None) -> Decision:
    """Record a moderator's decision atomically, with its audit row. A pair someone else already
    decided, or is reviewing right now, is refused rather than overwritten."""
    if action not in Decision.Action.values or action == Decision.Action.UNDO:
        raise DecisionRefused(f"unknown action '{action}'")
    with transaction.atomic():
        try:
            pair = Pair.objects.select_for_update().select_related("video_a", "video_b").get(pk=pair_id)
        except Pair.DoesNotExist:
            raise DecisionRefused("this pair no longer exists (it was re-scored); reload the queue") from None
        claim = Claim.objects.filter(pair=pair, expires_at__gt=timezone.now()).exclude(user=user).first()
        if claim is not None:
            raise DecisionRefused(f"{claim.user} is reviewing this pair right now")
        existing = (
            Verdict.objects.filter(video_a=pair.video_a, video_b=pair.video_b)
            .select_related("decided_by")
            .first()
        )
        if existing is not None:
            who = existing.decided_by or "someone"
            raise DecisionRefused(
                f"already decided by {who} at {existing.decided_at:%Y-%m-%d %H:%M} ({existing.get_kind_display()})"
            )
        canonical = None
        if action == Decision.Action.MERGE:
            if canonical_id not in (pair.video_a_id, pair.video_b_id):
                raise DecisionRefused("choose which of the two videos to keep")
            canonical = pair.video_a if canonical_id == pair.video_a_id else pair.video_b
        if action in VERDICT_FOR:
            Verdict.objects.create(
                video_a=pair.video_a,
                video_b=pair.video_b,
                kind=VERDICT_FOR[action],
                canonical=canonical,
                decided_by=user,
            )
        decision = Decision.objects.create(
            pair=pair,
            video_a=pair.video_a,
            video_b=pair.video_b,
            action=action,
            canonical=canonical,
            user=user,
            pair_score=pair.score,
            pair_label=pair.label,
            breakdown=pair.breakdown,
            config=pair.config,
        )
        Claim.objects.filter(pair=pair).delete()
        if action in VERDICT_FOR and _changes_groups(pair, VERDICT_FOR[action]):
            groups_refresh()
        if canonical is not None:
            _set_canonical(canonical)
    return decision


def _changes_groups(pair: Pair, kind: str) -> bool:
    """Whether a verdict changes the duplicate-group edges (recomputing groups costs a scan of pairs)."""
    if kind == Verdict.Kind.NOT_DUPLICATE:
        return pair.is_duplicate
    grouped = pair.video_a.group_id is not None and pair.video_a.group_id == pair.video_b.group_id
    return not grouped


def _set_canonical(video: Video) -> None:
    video.refresh_from_db(fields=["group"])
    if video.group_id is None:
        group = DuplicateGroup.objects.create(canonical=video, suggested_keep=video)
        Video.objects.filter(pk=video.pk).update(group=group)
    else:
        DuplicateGroup.objects.filter(pk=video.group_id).update(canonical=video)


def decision_undo(*, user) -> Decision | None:
    """Undo the user's last decision: its verdict goes, an UNDO audit row records it."""
    with transaction.atomic():
        last = (
            Decision.objects.select_for_update()
            .filter(user=user, undone_at__isnull=True)
            .exclude(action=Decision.Action.UNDO)
            .first()
        )
        if last is None:
            return None
        if last.action in VERDICT_FOR:
            Verdict.objects.filter(
                video_a=last.video_a, video_b=last.video_b, kind=VERDICT_FOR[last.action], decided_by=user
            ).delete()
            if last.canonical_id:
                DuplicateGroup.objects.filter(canonical_id=last.canonical_id).update(canonical=None)
        last.undone_at = timezone.now()
        last.save(update_fields=["undone_at"])
        undo = Decision.objects.create(
            pair=last.pair,
            video_a=last.video_a,
            video_b=last.video_b,
            action=Decision.Action.UNDO,
            user=user,
            undoes=last,
            pair_score=last.pair_score,
            pair_label=last.pair_label,
            config=last.config,
        )
        if last.action in VERDICT_FOR:
            groups_refresh()
    return undo


def verdict_edges() -> tuple[list[tuple[int, int, float, str]], set[tuple[int, int]]]:
    """Confirmed pairs (as edges) and pairs judged not duplicates (never edges)."""
    confirmed, rejected = [], set()
    for a, b, kind in Verdict.objects.values_list("video_a_id", "video_b_id", "kind"):
        if kind == Verdict.Kind.DUPLICATE:
            confirmed.append((a, b, 1.0, "confirmed"))
        else:
            rejected.add((a, b))
    return confirmed, rejected
