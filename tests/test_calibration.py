"""Calibration from moderators' labels: the fit, the report, config versions and re-scoring."""

import numpy as np
import pytest
from django.core.management import call_command

from dedup.exports import pair_rows
from dedup.matching.score import FusionArrays, FusionInputs
from dedup.matching.signals import ScoringParams
from dedup.models import ConfigActivation, Pair, ScoringConfig, Verdict
from dedup.services import config_activate
from review import calibration as calib
from review import services
from review.models import Calibration, Decision

from . import factories as make
from .calibration_data import library as _library
from .calibration_data import synthetic_pairs

DEFAULT = ScoringParams()


def _arrays(data):
    return FusionArrays.stack([d for d, _ in data]), np.array([t for _, t in data], dtype=bool)


# ---------------------------------------------------------------- the pure fit


def test_average_precision_groups_ties_like_the_benchmark():
    scores = np.array([0.9, 0.8, 0.8, 0.1])
    y = np.array([True, False, True, False])
    # ranks: 1 (tp 1/1), then a tie block of two holding one positive: 2/3 at depth 3
    assert calib.average_precision(scores, y) == pytest.approx((1.0 + 2 / 3) / 2)


def test_the_auto_confirm_threshold_needs_evidence_and_no_negative_near_it():
    rng = np.random.default_rng(0)
    pos = rng.uniform(0.9, 1.0, 400)
    neg = np.r_[rng.uniform(0.0, 0.6, 300), [0.88]]
    scores, y = np.r_[pos, neg], np.r_[np.ones(400, bool), np.zeros(301, bool)]
    assert calib.auto_confirm_threshold(scores, y, near=0.8, current=0.95, target=0.99) == 0.9
    # 100 positives are too few to vouch for 99 % precision: the current threshold stays
    few = np.r_[pos[:100], neg]
    few_y = np.r_[np.ones(100, bool), np.zeros(301, bool)]
    assert calib.auto_confirm_threshold(few, few_y, near=0.8, current=0.95, target=0.99) == 0.95


def test_the_logistic_fit_is_increasing_and_centred_between_the_classes():
    rng = np.random.default_rng(1)
    scores = np.r_[rng.uniform(0.6, 0.9, 200), rng.uniform(0.3, 0.7, 200)]
    y = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    a, b = calib.logistic_fit(scores, y)
    assert a > 0 and 0.6 <= -b / a <= 0.7


def test_calibration_lowers_thresholds_that_miss_duplicates_and_keeps_the_precision():
    data = synthetic_pairs(600, seed=3)
    x, y = _arrays(data)
    order = np.random.default_rng(0).permutation(600)
    train, test = order[:300], order[300:]
    report = calib.calibrate(x.take(train), y[train], DEFAULT, target=0.99)
    proposed = ScoringParams(**report["proposed"])
    before = calib.evaluate(x.take(test), y[test], DEFAULT)
    after = calib.evaluate(x.take(test), y[test], proposed)
    assert before.recall < 0.85  # hard transforms leave moderate visual evidence: the defaults miss them
    assert after.f1 > before.f1 and after.precision >= 0.98
    assert proposed.near_threshold < DEFAULT.near_threshold
    assert proposed.similar_threshold <= proposed.near_threshold <= proposed.exact_threshold
    cv = report["cross_validated"]
    assert cv["proposed"]["f1"] >= cv["current"]["f1"]
    assert report["curve"]["proposed"] and sum(report["histogram"]["proposed"]["duplicate"]) == int(
        y[train].sum()
    )


def test_no_threshold_reaching_the_target_gives_the_most_precise_one():
    # duplicates and non-duplicates with the same evidence: no threshold reaches 99 %
    items = [
        (FusionInputs(v, v, None, 0.8, full=True, long_enough=True), i % 2 == 0)
        for i, v in enumerate(np.linspace(0.5, 1.0, 200))
    ]
    x, y = _arrays(items)
    params = calib.fit(x, y, DEFAULT, target=0.99)
    m = calib.evaluate(x, y, params)
    assert m.precision < 0.99 and m.tp > 0


# ---------------------------------------------------------------- through the services


@pytest.mark.django_db
def test_too_few_labels_says_how_many_more_are_needed(settings):
    settings.ASTRADUP = {**settings.ASTRADUP, "CALIBRATION_MIN_LABELS": 5}
    moderator = make.user("mod", "moderator")
    library = _library(synthetic_pairs(12, seed=1))
    for pair, truth in library[:4]:
        services.pair_decide(pair_id=pair.pk, user=moderator, action="confirm" if truth else "not_duplicate")
    run = services.calibration_run()
    assert not run.ready
    assert run.report["needed"] == {"duplicate": 3, "not_duplicate": 3}
    with pytest.raises(services.CalibrationRefused):
        services.calibration_apply(calibration=run)


@pytest.mark.django_db
def test_half_labelled_through_the_review_service_calibrates_the_other_half():
    moderator = make.user("mod", "moderator")
    library = _library(synthetic_pairs(300, seed=7))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(library))
    labelled, held_out = order[:150], order[150:]
    for i in labelled:
        pair, truth = library[i]
        services.pair_decide(pair_id=pair.pk, user=moderator, action="confirm" if truth else "not_duplicate")
    run = services.calibration_run(target=0.99)
    assert run.ready and run.n_duplicate + run.n_not_duplicate == 150
    x = FusionArrays.stack([FusionInputs.from_dict(library[i][0].breakdown["fusion"]) for i in held_out])
    y = np.array([library[i][1] for i in held_out])
    before = calib.evaluate(x, y, DEFAULT)
    after = calib.evaluate(x, y, ScoringParams(**run.report["proposed"]))
    assert after.f1 >= before.f1
    assert after.precision >= 0.99 - 0.01


@pytest.mark.django_db
def test_applying_and_restoring_configs_keeps_every_decision():
    moderator = make.user("mod", "moderator")
    library = _library(synthetic_pairs(300, seed=11))
    for pair, truth in library[:150]:
        services.pair_decide(pair_id=pair.pk, user=moderator, action="confirm" if truth else "not_duplicate")
    # a wrong "confirmed" and a wrong "not a duplicate" stay what the moderator said
    unlabelled = library[150:]
    missed_dup = next(p for p, truth in unlabelled if truth and not p.is_duplicate)
    flagged_other = next((p for p, truth in unlabelled if not truth and p.score < 0.5), None)
    services.pair_decide(pair_id=missed_dup.pk, user=moderator, action="not_duplicate")
    if flagged_other is not None:
        services.pair_decide(pair_id=flagged_other.pk, user=moderator, action="confirm")
    verdicts = set(Verdict.objects.values_list("video_a", "video_b", "kind"))
    decisions = Decision.objects.count()
    default = ScoringConfig.active()
    before = dict(Pair.objects.values_list("pk", "label"))

    run = services.calibration_run()
    config = services.calibration_apply(calibration=run, rescore="sync")
    assert ScoringConfig.active() == config and config.based_on == default
    assert config.calibration["calibration_id"] == run.pk
    assert Calibration.objects.get(pk=run.pk).applied_config == config
    assert set(Pair.objects.values_list("config", flat=True)) == {config.pk}
    after = dict(Pair.objects.values_list("pk", "label"))
    assert after != before  # lower thresholds flag more pairs
    assert set(Verdict.objects.values_list("video_a", "video_b", "kind")) == verdicts
    assert Decision.objects.count() == decisions
    rows = {(r["a"], r["b"]): r for r in pair_rows()}
    row = rows[(missed_dup.video_a.rel_path, missed_dup.video_b.rel_path)]
    assert (row["label"], row["via"]) == ("different", "verdict")
    assert not services.queue_pairs().filter(pk=missed_dup.pk).exists()

    with pytest.raises(services.CalibrationRefused):
        services.calibration_apply(calibration=run)
    services.config_restore(config=default, rescore="sync")
    assert ScoringConfig.active() == default and ScoringConfig.objects.count() == 2
    assert dict(Pair.objects.values_list("pk", "label")) == before
    assert set(Verdict.objects.values_list("video_a", "video_b", "kind")) == verdicts


@pytest.mark.django_db(transaction=True)
def test_applying_enqueues_the_rescore_for_the_workers():
    from django_q.models import OrmQ

    library = _library(synthetic_pairs(10, seed=2))
    config = ScoringConfig.objects.create(name="stricter", near_threshold=0.97, exact_threshold=0.99)
    config_activate(config=config, via="command")
    assert any(
        q.func() == "dedup.tasks.rescore_pairs" and q.args() == (config.pk,) for q in OrmQ.objects.all()
    )
    assert Pair.objects.filter(config=config).count() == 0  # nothing re-scored in the request
    from dedup.tasks import rescore_pairs

    assert rescore_pairs(config.pk)["rescored"] == len(library)
    assert Pair.objects.filter(config=config).count() == len(library)


@pytest.mark.django_db
def test_the_queue_puts_the_most_informative_pairs_first_across_modalities():
    config = ScoringConfig.active()
    videos = [make.video(f"{i}.mp4", path=f"/q/{i}", status="ready") for i in range(12)]

    def pair(i, score, label, visual, audio, segment=None):
        breakdown = {"segment_score": segment} if segment is not None else {}
        return make.pair(
            videos[i],
            videos[i + 1],
            label,
            score,
            visual=visual,
            audio=audio,
            metadata=0.8,
            breakdown=breakdown,
            config=config,
        )

    visual_close = pair(0, 0.86, "near_duplicate", 0.9, 0.8)
    visual_closer = pair(2, 0.851, "near_duplicate", 0.9, 0.8)
    audio_led = pair(4, 0.75, "similar", 0.6, 0.95)
    partial = pair(6, 0.7, "partial", 0.5, None, segment=0.74)  # 0.01 from the partial threshold
    silent = pair(8, 0.80, "similar", 0.8, None)
    order = list(services.queue_pairs())
    # one of each kind of evidence first, each the most uncertain of its kind
    assert set(order[:4]) == {visual_closer, audio_led, partial, silent}
    assert order[0] == visual_closer or order[0] == partial
    assert order[4] == visual_close


# ---------------------------------------------------------------- the page and the command


@pytest.mark.django_db
def test_the_calibration_page_is_for_admins_and_applies_a_proposal(client, settings):
    settings.ASTRADUP = {**settings.ASTRADUP, "CALIBRATION_MIN_LABELS": 20}
    admin = make.user("boss", "admin")
    moderator = make.user("mod", "moderator")
    library = _library(synthetic_pairs(120, seed=5))
    for pair, truth in library[:80]:
        services.pair_decide(pair_id=pair.pk, user=moderator, action="confirm" if truth else "not_duplicate")
    client.force_login(moderator)
    assert client.get("/review/calibration").status_code == 403
    assert client.post("/review/calibration/run").status_code == 403
    client.force_login(admin)
    page = client.get("/review/calibration")
    assert page.status_code == 200 and b"A proposal needs 20 of each" in page.content
    client.post("/review/calibration/run", {"target": "0.99"})
    assert not Calibration.objects.exists()  # a job, run by a worker: not in the request
    from dedup.models import Job
    from dedup.tasks import run_job

    run_job(Job.objects.get().pk)
    run = Calibration.objects.get()
    page = client.get("/review/calibration").content.decode()
    assert "<polyline" in page and 'class="bar duplicate"' in page and "cross-validated" in page
    assert f"/review/calibration/{run.pk}/apply" in page
    default = ScoringConfig.active()
    client.post(f"/review/calibration/{run.pk}/apply")
    applied = ScoringConfig.active()
    assert applied.based_on == default
    last = ConfigActivation.objects.first()
    assert (last.config, last.previous, last.activated_by, last.via) == (
        applied,
        default,
        admin,
        "calibration",
    )
    page = client.get("/review/calibration").content.decode()
    assert f"/review/configs/{default.pk}/restore" in page and "Calibration</a>" in page
    assert " by boss</td>" in page  # who activated the applied version
    client.post(f"/review/configs/{default.pk}/restore")
    last = ConfigActivation.objects.first()
    assert (last.config, last.previous, last.activated_by, last.via) == (default, applied, admin, "restore")


@pytest.mark.django_db
def test_the_calibrate_command_reports_and_applies(capsys, settings):
    settings.ASTRADUP = {**settings.ASTRADUP, "CALIBRATION_MIN_LABELS": 20}
    moderator = make.user("mod", "moderator")
    library = _library(synthetic_pairs(120, seed=6))
    for pair, truth in library[:80]:
        services.pair_decide(pair_id=pair.pk, user=moderator, action="confirm" if truth else "not_duplicate")
    call_command("calibrate", "--apply", "--rescore", "sync")
    out = capsys.readouterr().out
    assert "near_threshold" in out and "cross-validated" in out and "applied: config #" in out
    assert ScoringConfig.active().name.startswith("calibrated")
    last = ConfigActivation.objects.first()
    assert (last.config, last.activated_by, last.via) == (ScoringConfig.active(), None, "calibration")
