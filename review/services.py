"""Moderator work: the queue, claims, decisions (with their audit rows) and undo."""

from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FloatField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Abs, Cast, RowNumber
from django.utils import timezone

from dedup.matching.breakdown import SEGMENT_SCORE, Breakdown
from dedup.matching.score import FusionArrays, FusionInputs
from dedup.models import DuplicateGroup, Job, Pair, ScoringConfig, Verdict, Video
from dedup.services import acting_user, config_activate, groups_refresh, job_start, pair_score

from . import calibration as calib
from .models import Calibration, Claim, Decision

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


class PairGone(DecisionRefused):
    """The pair does not exist (any more): the API answers 404, the review screen reloads."""


class DecisionInvalid(DecisionRefused):
    """The request itself is wrong, whatever the pair's state: the API answers 400."""


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
        pairs = pairs.annotate(**_hidden_from(user, now)).filter(taken=False, skipped=False)
    if order == "score":
        return pairs.order_by("-score", "pk")
    if order == "-score":
        return pairs.order_by("score", "pk")
    return _most_informative_first(pairs)


def _hidden_from(user, now) -> dict:
    """Why a pair is left out of one user's queue: someone else is reviewing it, or the user
    skipped it within the hour."""
    others_claim = Claim.objects.filter(pair=OuterRef("pk"), expires_at__gt=now).exclude(user=user)
    skipped = Decision.objects.filter(
        pair=OuterRef("pk"),
        user=user,
        action=Decision.Action.SKIP,
        undone_at__isnull=True,
        created_at__gt=now - SKIP_HIDES_FOR,
    )
    return {"taken": Exists(others_claim), "skipped": Exists(skipped)}


def _most_informative_first(pairs: QuerySet[Pair]) -> QuerySet[Pair]:
    """Active learning: the decisions that move calibration most come first. A pair is uncertain
    when its score sits close to the threshold that decides it (the partial threshold for partial
    copies, the near-duplicate threshold otherwise); the queue takes the most uncertain pair of
    each kind of evidence in turn (visual-led, audio-led, visual only, partial segment) so the
    labels cover every modality instead of piling up on the commonest one."""
    config = ScoringConfig.active()
    segment = Cast(KT(f"breakdown__{SEGMENT_SCORE}"), FloatField())
    return (
        pairs.annotate(
            uncertainty=Case(
                When(label=Pair.Label.PARTIAL, then=Abs(segment - Value(config.partial_threshold))),
                default=Abs(F("score") - Value(config.near_threshold)),
                output_field=FloatField(),
            ),
            evidence=Case(
                When(label=Pair.Label.PARTIAL, then=Value("segment")),
                When(audio__isnull=True, then=Value("visual only")),
                When(audio__gt=F("visual"), then=Value("audio-led")),
                default=Value("visual-led"),
            ),
        )
        .annotate(
            turn=Window(
                RowNumber(), partition_by=[F("evidence")], order_by=[F("uncertainty").asc(), F("pk").asc()]
            )
        )
        .order_by("turn", "uncertainty", "pk")
    )


def queue_counts(*, user=None) -> dict[str, int]:
    """Pairs per class in the queue; for a user, those their queue shows (as queue_pairs)."""
    counts = {label: 0 for label in QUEUE_LABELS}
    for row in queue_pairs(user=user, order="score").values("label").order_by().annotate(n=Count("pk")):
        counts[row["label"]] = row["n"]
    return counts


def queue_hidden(*, user) -> dict[str, int]:
    """Undecided pairs left out of this user's queue, and why, so an empty list is not a mystery."""
    hidden = queue_pairs(order="score").annotate(**_hidden_from(user, timezone.now())).order_by()
    return {
        "skipped": hidden.filter(skipped=True).count(),
        "taken": hidden.filter(taken=True, skipped=False).count(),
    }


def pair_claim_holder(*, pair: Pair) -> Claim | None:
    """The live claim on a pair, if any (with who holds it)."""
    return Claim.objects.filter(pair=pair, expires_at__gt=timezone.now()).select_related("user").first()


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
        raise DecisionInvalid(f"unknown action '{action}'")
    with transaction.atomic():
        try:
            pair = Pair.objects.select_for_update().select_related("video_a", "video_b").get(pk=pair_id)
        except Pair.DoesNotExist:
            raise PairGone("this pair no longer exists (it was re-scored); reload the queue") from None
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
                raise DecisionInvalid("choose which of the two videos to keep")
            canonical = pair.video_a if canonical_id == pair.video_a_id else pair.video_b
        decision = decision_record(pair=pair, user=user, action=action, canonical=canonical)
        if action in VERDICT_FOR and _changes_groups(pair, VERDICT_FOR[action]):
            groups_refresh()
        if canonical is not None:
            _set_canonical(canonical)
    return decision


def decision_record(
    *, pair: Pair, user, action: str, canonical: Video | None = None, resolution=None
) -> Decision:
    """The verdict and the audit row of one decision (the caller holds the transaction and has
    checked the pair is free to decide); group resolutions write theirs through here too."""
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
        resolution=resolution,
    )
    Claim.objects.filter(pair=pair).delete()
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
        if last.resolution_id is not None:
            # a group action is undone whole, as it was done
            from .groups import resolution_undo

            return resolution_undo(resolution=last.resolution, user=user)
        if last.action in VERDICT_FOR and last.canonical_id:
            DuplicateGroup.objects.filter(canonical_id=last.canonical_id).update(canonical=None)
        undo = decision_take_back(last, user=user, at=timezone.now())
        if last.action in VERDICT_FOR:
            groups_refresh()
    return undo


def decision_take_back(decision: Decision, *, user, at, resolution=None) -> Decision:
    """One decision undone, inside the caller's transaction: its verdict goes, it is marked undone
    and an UNDO audit row records who took it back (with the resolution it belonged to, if any)."""
    if decision.action in VERDICT_FOR:
        Verdict.objects.filter(
            video_a=decision.video_a_id,
            video_b=decision.video_b_id,
            kind=VERDICT_FOR[decision.action],
            decided_by=user,
        ).delete()
    decision.undone_at = at
    decision.save(update_fields=["undone_at"])
    return Decision.objects.create(
        pair=decision.pair,
        video_a=decision.video_a,
        video_b=decision.video_b,
        action=Decision.Action.UNDO,
        user=user,
        undoes=decision,
        pair_score=decision.pair_score,
        pair_label=decision.pair_label,
        config=decision.config,
        resolution=resolution,
    )


# ---------------------------------------------------------------- calibration


class CalibrationRefused(Exception):
    """Shown to the admin as is."""


def labelled_pairs() -> tuple[FusionArrays, np.ndarray]:
    """The fusion inputs of every scored pair with a moderator's verdict, and the labels (True =
    duplicate). Pairs scored before fusion inputs were stored are scored again first."""
    kind = Verdict.objects.filter(video_a=OuterRef("video_a"), video_b=OuterRef("video_b")).values("kind")[:1]
    pairs = list(
        Pair.objects.annotate(verdict=Subquery(kind))
        .filter(verdict__isnull=False)
        .select_related("video_a", "video_b", "config")
        .order_by("pk")
    )
    inputs: list[FusionInputs] = []
    duplicate: list[bool] = []
    for pair in pairs:
        fusion = Breakdown.from_json(pair.breakdown).fusion
        if fusion is None:
            if Video.Status.READY != pair.video_a.status or Video.Status.READY != pair.video_b.status:
                continue
            scored = pair_score(a=pair.video_a, b=pair.video_b, config=pair.config or ScoringConfig.active())
            # the scorer writes the fusion inputs on every pair it scores
            fusion = Breakdown.from_json(scored.breakdown).fusion
            assert fusion is not None
        inputs.append(fusion)
        duplicate.append(pair.verdict == Verdict.Kind.DUPLICATE)
    x = FusionArrays.stack(inputs)
    y = np.array(duplicate, dtype=bool)
    return x, y


def label_counts() -> dict[str, int]:
    counts = dict(Verdict.objects.values_list("kind").order_by().annotate(n=Count("pk")))
    return {kind: counts.get(kind, 0) for kind in Verdict.Kind.values}


def _target(target: float | None) -> float:
    target = target if target is not None else settings.ASTRADUP["CALIBRATION_TARGET_PRECISION"]
    if not 0.5 <= target < 1.0:
        raise CalibrationRefused("the target precision must lie in [0.5, 1)")
    return target


def calibration_run(*, user=None, target: float | None = None, seed: int = 0, progress=None) -> Calibration:
    """Fit weights and thresholds to the labels and store the report; with too few labels of a kind
    the report says how many more are needed. `progress(done, total, message)` hears of each step
    (a job's progress: `calibration_start`)."""
    target = _target(target)
    need = settings.ASTRADUP["CALIBRATION_MIN_LABELS"]
    config = ScoringConfig.active()
    total = 1 + calib.STEPS
    done = 0

    def step(message: str) -> None:
        nonlocal done
        if progress is not None:
            progress(done, total, message)
        done += 1

    step("reading the labelled pairs")
    x, y = labelled_pairs()
    n_dup, n_not = int(y.sum()), int((~y).sum())
    ready = n_dup >= need and n_not >= need
    report: dict = {
        "min_labels": need,
        "needed": {"duplicate": max(0, need - n_dup), "not_duplicate": max(0, need - n_not)},
    }
    if ready:
        report.update(calib.calibrate(x, y, config.params(), target, seed=seed, step=step))
    run = Calibration.objects.create(
        created_by=acting_user(user),
        target_precision=target,
        n_duplicate=n_dup,
        n_not_duplicate=n_not,
        base_config=config,
        ready=ready,
        report=report,
    )
    if progress is not None:
        outcome = "compare and apply" if ready else f"not enough labels yet: {run.labels_needed}"
        progress(total, total, f"calibration #{run.pk} done: {outcome}")
    return run


def calibration_start(*, user=None, target: float | None = None) -> Job:
    """A calibration as a background job (it takes from seconds to minutes: never in a request).
    The target is checked here, so a wrong one is refused at once, not by a failed job."""
    return job_start(kind=Job.Kind.CALIBRATION, user=user, params={"target": _target(target)})


def calibration_job(job: Job, progress) -> dict:
    """The work of a calibration job (registered in ReviewConfig.ready; run by a dedup worker)."""
    run = calibration_run(user=job.created_by, target=job.params.get("target"), progress=progress)
    return {"calibration_id": run.pk, "ready": run.ready}


def calibration_apply(*, calibration: Calibration, user=None, rescore: str = "enqueue") -> ScoringConfig:
    """A new config version from the proposal, made active; pairs are re-scored under it."""
    if not calibration.ready:
        raise CalibrationRefused("this calibration had too few labels to propose a config")
    if calibration.applied_config_id:
        raise CalibrationRefused(f"already applied as config #{calibration.applied_config_id}")
    proposed = calibration.report["proposed"]
    base = calibration.base_config or ScoringConfig.active()
    cv = calibration.report["cross_validated"]
    with transaction.atomic():
        config = ScoringConfig.objects.create(
            name=f"calibrated {timezone.now():%Y-%m-%d %H:%M}",
            based_on=base,
            frame_match_threshold=base.frame_match_threshold,
            **{f: proposed[f] for f in ScoringConfig.PARAM_FIELDS if f != "frame_match_threshold"},
            calibration={
                "calibration_id": calibration.pk,
                "labels": {
                    "duplicate": calibration.n_duplicate,
                    "not_duplicate": calibration.n_not_duplicate,
                },
                "target_precision": calibration.target_precision,
                "cross_validated": cv["proposed"],
            },
            notes=(
                f"From calibration #{calibration.pk} by {user or 'a command'}: "
                f"{calibration.n_duplicate} duplicate and {calibration.n_not_duplicate} not-duplicate labels; "
                f"cross-validated precision {cv['proposed']['precision']:.3f}, recall {cv['proposed']['recall']:.3f}."
            ),
        )
        calibration.applied_config = config
        calibration.save(update_fields=["applied_config"])
        config_activate(config=config, via="calibration", user=user, rescore=rescore)
    return config


def config_restore(*, config: ScoringConfig, user=None, rescore: str = "enqueue") -> ScoringConfig:
    """Make an earlier config version active again; pairs are re-scored under it."""
    config.refresh_from_db()
    if config.is_active:
        raise CalibrationRefused(f"config #{config.pk} is already the active one")
    return config_activate(config=config, via="restore", user=user, rescore=rescore)
