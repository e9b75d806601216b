"""Scoring config versions: one active at a time, and every pair re-scored under a new one."""

import logging
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from ..matching.breakdown import Breakdown
from ..matching.score import LABELS, FusionArrays, FusionInputs, classify
from ..models import ConfigActivation, Job, Pair, ScoringConfig
from .groups import groups_refresh
from .jobs import acting_user, job_create, job_enqueue, job_run
from .scoring import pairs_score_again

logger = logging.getLogger(__name__)


def config_activate(
    *,
    config: ScoringConfig,
    via: str,
    user=None,
    rescore: str = "enqueue",
) -> ScoringConfig:
    """Make `config` the active one (the others stay as history) and re-score every pair under it:
    in a background job (`enqueue`), right here (`sync`, a job too, run in this process) or not at
    all (`none`). Moderators' verdicts are keyed by the videos, so no decision is touched. Who did
    it (`user`, None for a command) and from where (`via`, a ConfigActivation.Via) is recorded
    with the switch, and the re-score job is theirs."""
    with transaction.atomic():
        # the row lock orders two activations at once: each records the one it replaced
        previous = ScoringConfig.objects.select_for_update().filter(is_active=True).first()
        ScoringConfig.objects.filter(is_active=True).exclude(pk=config.pk).update(is_active=False)
        config.is_active = True
        config.activated_at = timezone.now()
        config.save(update_fields=["is_active", "activated_at"])
        ConfigActivation.objects.create(
            config=config,
            previous=previous,
            activated_at=config.activated_at,
            activated_by=acting_user(user),
            via=ConfigActivation.Via(via),
        )
    if rescore in ("sync", "enqueue"):
        job = job_create(kind=Job.Kind.RESCORE, params={"config_id": config.pk}, user=user)
        if rescore == "sync":
            job_run(job_id=job.pk, work=rescore_work(config.pk))
        else:
            job_enqueue(job, "dedup.tasks.rescore_pairs", config.pk)
    return config


def rescore_work(config_id: int) -> Callable:
    """The re-score as a job's work (`jobs.job_run`)."""

    def work(job: Job, progress: Callable[[int, int, str], None]) -> dict:
        return pairs_rescore(config_id=config_id, progress=progress)

    return work


RESCORE_CHUNK = 2000


def pairs_rescore(*, config_id: int, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Re-label every pair under a config. Pairs carry their fusion inputs, so this is arithmetic,
    not video reading; pairs scored before fusion inputs were stored are scored again in full.
    `progress(done, total, message)` hears after each chunk."""
    config = ScoringConfig.objects.get(pk=config_id)
    report = progress or (lambda done, total, message: None)
    if not config.is_active:
        report(0, 0, f"skipped: config #{config_id} is no longer active")
        return {"skipped": "config is no longer active"}
    params = config.params()
    total = Pair.objects.count()
    report(0, total, f"re-scoring {total} pairs under config #{config_id}")
    counts = {"rescored": 0, "rescored_in_full": 0, "changed_label": 0}
    full: list[int] = []
    last_pk = 0
    while True:
        chunk = list(Pair.objects.filter(pk__gt=last_pk).order_by("pk")[:RESCORE_CHUNK])
        if not chunk:
            break
        last_pk = chunk[-1].pk
        stored: list[Pair] = []
        inputs: list[FusionInputs] = []
        for p in chunk:
            fusion = Breakdown.from_json(p.breakdown).fusion
            if fusion is None:
                full.append(p.pk)
            else:
                stored.append(p)
                inputs.append(fusion)
        if not stored:
            continue
        scores, labels = classify(FusionArrays.stack(inputs), params)
        now = timezone.now()
        for p, score, code in zip(stored, scores, labels, strict=True):
            label = LABELS[int(code)]
            counts["changed_label"] += label != p.label
            p.score, p.label, p.config, p.updated_at = float(score), label, config, now
        Pair.objects.bulk_update(stored, ["score", "label", "config", "updated_at"])
        counts["rescored"] += len(stored)
        report(counts["rescored"], total, f"{counts['rescored']} of {total} pairs re-scored")
    if full:
        report(
            counts["rescored"], total, f"scoring {len(full)} pairs again in full (no stored fusion inputs)"
        )
    scored, changed = pairs_score_again(Pair.objects.filter(pk__in=full), config)
    counts["rescored_in_full"] += scored
    counts["changed_label"] += changed
    groups_refresh()
    logger.info("re-scored pairs under config %s: %s", config.pk, counts)
    report(
        total,
        total,
        f"{counts['rescored'] + counts['rescored_in_full']} pairs re-scored under config #{config_id}, "
        f"{counts['changed_label']} changed label",
    )
    return counts
