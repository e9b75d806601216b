"""The calibration benchmark step: on a library where `make bench` left every pair scored, label a
random half of the candidate pairs from the benchmark's ground truth through the service the review
screen uses, calibrate, and compare the default and the calibrated configs on the other half."""

import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dedup.matching.breakdown import Breakdown
from dedup.matching.score import FusionArrays, FusionInputs
from dedup.matching.signals import ScoringParams
from dedup.models import Pair, ScoringConfig, Verdict
from dedup.services import config_activate
from review import calibration as calib
from review import services
from review.models import Calibration, Claim, Decision


class Command(BaseCommand):
    help = (
        "Label half the benchmark's candidate pairs from its ground truth, calibrate, score the other half."
    )

    def add_arguments(self, parser):
        parser.add_argument("bench_dir", type=Path, help="Output folder of make_bench.py (manifest.csv).")
        parser.add_argument(
            "--evaluator", type=Path, required=True, help="Path to ../shared/bench/evaluate.py"
        )
        parser.add_argument("--seed", type=int, default=0, help="Which random half gets labelled.")
        parser.add_argument("--target", type=float, default=None)
        parser.add_argument(
            "--keep", action="store_true", help="Leave the labels and the calibrated config in place."
        )

    def handle(self, *args, bench_dir: Path, evaluator: Path, seed: int, target, keep: bool, **options):
        truth = _truth(bench_dir / "manifest.csv", evaluator)
        default = _fresh_start()
        pairs = list(Pair.objects.select_related("video_a", "video_b").order_by("pk"))
        pairs = [p for p in pairs if Breakdown.from_json(p.breakdown).fusion is not None]
        if not pairs:
            raise CommandError("no scored pairs: run `make bench` first")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(pairs))
        labelled = [pairs[i] for i in order[: len(pairs) // 2]]
        held_out = [pairs[i] for i in order[len(pairs) // 2 :]]

        user = _bench_user()
        t0 = time.monotonic()
        for pair in labelled:
            dup = _key(pair) in truth
            services.pair_decide(pair_id=pair.pk, user=user, action="confirm" if dup else "not_duplicate")
        label_seconds = time.monotonic() - t0
        t0 = time.monotonic()
        run = services.calibration_run(user=user, target=target)
        fit_seconds = time.monotonic() - t0
        if not run.ready:
            raise CommandError(f"too few labels: {run.labels_needed}")

        x = FusionArrays.stack([_fusion(p) for p in held_out])
        y = np.array([_key(p) in truth for p in held_out], dtype=bool)
        proposed = ScoringParams(**run.report["proposed"])
        before = calib.evaluate(x, y, default.params())
        after = calib.evaluate(x, y, proposed)
        result = {
            "pairs": len(pairs),
            "labelled": {
                "pairs": len(labelled),
                "duplicate": run.n_duplicate,
                "not_duplicate": run.n_not_duplicate,
            },
            "held_out": {"pairs": len(held_out), "duplicate": int(y.sum()), "not_duplicate": int((~y).sum())},
            "target_precision": run.target_precision,
            "default": default.params().__dict__,
            "calibrated": run.report["proposed"],
            "held_out_default": before.as_dict(),
            "held_out_calibrated": after.as_dict(),
            "cross_validated_on_labels": run.report["cross_validated"],
            "seconds": {"labelling": round(label_seconds, 1), "calibration": round(fit_seconds, 1)},
        }
        self.stdout.write(json.dumps(result, indent=1))
        self.stdout.write(
            f"\nheld-out half ({len(held_out)} pairs, {int(y.sum())} duplicates):"
            f"\n  default    P {before.precision:.4f}  R {before.recall:.4f}  F1 {before.f1:.4f}"
            f"\n  calibrated P {after.precision:.4f}  R {after.recall:.4f}  F1 {after.f1:.4f}"
            f"  (target precision {run.target_precision}, gap {after.precision - run.target_precision:+.4f})"
            f"\n  F1 calibrated ≥ default: {after.f1 >= before.f1}; precision within 1 point of the target: "
            f"{after.precision >= run.target_precision - 0.01}"
        )
        if keep:
            services.calibration_apply(calibration=run, user=user, rescore="sync")
        else:
            _fresh_start()


def _fusion(pair: Pair) -> FusionInputs:
    fusion = Breakdown.from_json(pair.breakdown).fusion
    assert fusion is not None  # only pairs with stored fusion inputs are kept
    return fusion


def _key(pair: Pair) -> tuple[str, str]:
    a, b = Path(pair.video_a.rel_path).name, Path(pair.video_b.rel_path).name
    return (a, b) if a < b else (b, a)


def _truth(manifest: Path, evaluator: Path) -> set[tuple[str, str]]:
    if not manifest.exists():
        raise CommandError(f"{manifest} not found: run make_bench.py first")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "truth.csv"
        subprocess.run(
            [sys.executable, str(evaluator), "--manifest", str(manifest), "--write-truth", str(out)],
            check=True,
            capture_output=True,
        )
        with open(out, newline="") as fh:
            rows = list(csv.reader(fh))
    header, rows = rows[0], rows[1:]
    ia, ib = header.index("a"), header.index("b")
    return {tuple(sorted((Path(r[ia]).name, Path(r[ib]).name))) for r in rows}


def _fresh_start() -> ScoringConfig:
    """No labels, and the default config active with every pair scored under it."""
    with transaction.atomic():
        Claim.objects.all().delete()
        Verdict.objects.all().delete()
        Decision.objects.all().delete()
        Calibration.objects.all().delete()
    defaults = ScoringConfig()
    default = next(
        (c for c in ScoringConfig.objects.order_by("pk") if c.params_equal(defaults)), None
    ) or ScoringConfig.objects.create(name="default")
    return config_activate(config=default, via="command", rescore="sync")


def _bench_user() -> User:
    user, _ = User.objects.get_or_create(username="bench-calibration")
    user.groups.add(Group.objects.get(name="admin"))
    return user
