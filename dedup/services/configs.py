"""Scoring config versions: one active at a time, and every pair re-scored under a new one."""

import logging

from django.db import transaction
from django.utils import timezone

from ..matching.breakdown import Breakdown
from ..matching.score import LABELS, FusionArrays, FusionInputs, classify
from ..models import ConfigActivation, Pair, ScoringConfig
from .groups import groups_refresh
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
    in a background task (`enqueue`), right here (`sync`) or not at all (`none`). Moderators'
    verdicts are keyed by the videos, so no decision is touched. Who did it (`user`, None for a
    command) and from where (`via`, a ConfigActivation.Via) is recorded with the switch."""
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
            activated_by=user if user is not None and user.is_authenticated else None,
            via=ConfigActivation.Via(via),
        )
    if rescore == "sync":
        pairs_rescore(config_id=config.pk)
    elif rescore == "enqueue":
        transaction.on_commit(lambda: _enqueue_rescore(config.pk))
    return config


def _enqueue_rescore(config_id: int) -> None:
    from django_q.tasks import async_task

    async_task("dedup.tasks.rescore_pairs", config_id, task_name=f"rescore-{config_id}", group="rescore")


RESCORE_CHUNK = 2000


def pairs_rescore(*, config_id: int) -> dict:
    """Re-label every pair under a config. Pairs carry their fusion inputs, so this is arithmetic,
    not video reading; pairs scored before fusion inputs were stored are scored again in full."""
    config = ScoringConfig.objects.get(pk=config_id)
    if not config.is_active:
        return {"skipped": "config is no longer active"}
    params = config.params()
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
    scored, changed = pairs_score_again(Pair.objects.filter(pk__in=full), config)
    counts["rescored_in_full"] += scored
    counts["changed_label"] += changed
    groups_refresh()
    logger.info("re-scored pairs under config %s: %s", config.pk, counts)
    return counts
