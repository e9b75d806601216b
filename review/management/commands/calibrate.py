import json

from django.core.management.base import BaseCommand, CommandError

from review import services


class Command(BaseCommand):
    help = (
        "Fit fusion weights and thresholds to the moderators' decisions, print the current and "
        "proposed configs with their cross-validated precision and recall, and optionally apply."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--target", type=float, default=None, help="Target precision (default from settings)."
        )
        parser.add_argument("--apply", action="store_true", help="Make the proposal the active config.")
        parser.add_argument(
            "--rescore",
            choices=["enqueue", "sync"],
            default="enqueue",
            help="With --apply: re-score pairs how.",
        )
        parser.add_argument("--json", action="store_true", help="Print the whole report as JSON.")

    def handle(self, *args, target, apply, rescore, json: bool, **options):
        try:
            run = services.calibration_run(target=target)
        except services.CalibrationRefused as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_json(run.report))
        self.stdout.write(
            f"calibration #{run.pk}: {run.n_duplicate} duplicate and {run.n_not_duplicate} not-duplicate labels"
        )
        if not run.ready:
            raise CommandError(f"not enough labels: {run.labels_needed}")
        report = run.report
        self.stdout.write(f"\n{'':34}{'current':>10}{'proposed':>10}")
        for key, value in report["current"].items():
            self.stdout.write(f"{key:34}{value:>10}{report['proposed'][key]:>10}")
        cv = report["cross_validated"]
        self.stdout.write(
            f"\ncross-validated on the labels ({cv['folds']} folds), target precision {run.target_precision}"
        )
        for key in ("precision", "recall", "f1"):
            self.stdout.write(f"{key:34}{cv['current'][key]:>10.4f}{cv['proposed'][key]:>10.4f}")
        self.stdout.write(f"{'average precision':34}{cv['current_ap']:>10.4f}{cv['proposed_ap']:>10.4f}")
        if apply:
            config = services.calibration_apply(calibration=run, rescore=rescore)
            self.stdout.write(f"\napplied: config #{config.pk} is active (re-score: {rescore})")


def _json(report: dict) -> str:
    return json.dumps(report, indent=1)
