from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dedup.features.embed import BACKBONES
from dedup.features.projection import PROJECTED_DIM
from dedup.services.projection import index_projection_fit


class Command(BaseCommand):
    help = (
        f"Fit a {PROJECTED_DIM}-d projection of the frame embeddings for the candidate index and "
        "project every frame; candidate search then uses the smaller index (docs/matching.md). It "
        "rebuilds the backbone's frame indexes: stop the workers first."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--backbone", default="", help="Backbone whose frames to project (default: the configured one)."
        )
        parser.add_argument(
            "--max-frames", type=int, default=200_000, help="Frames (evenly spread) the basis is fitted on."
        )

    def handle(self, *args, backbone: str, max_frames: int, **options):
        backbone = backbone or settings.ASTRADUP["BACKBONE"]
        if backbone not in BACKBONES:
            raise CommandError(f"unknown backbone {backbone!r} (one of: {', '.join(BACKBONES)})")
        try:
            projection = index_projection_fit(
                backbone=backbone,
                max_frames=max_frames,
                log=lambda message: self.stderr.write(message),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{projection.backbone}: {projection.dim}-d index projection ready "
            f"(fitted on {projection.frames} frames)"
        )
