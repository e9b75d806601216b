import random
import statistics
import time

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from django.test.utils import override_settings

from dedup.models import Pair, ScoringConfig, Verdict, Video
from review.models import Claim, Decision
from review.services import QUEUE_LABELS


class Command(BaseCommand):
    help = (
        "Server time of the review screens: fills the library's pairs up to --pairs with synthetic ones, "
        "then times the pair page, decisions and the queue in-process. Meant for a benchmark data dir."
    )

    def add_arguments(self, parser):
        parser.add_argument("--pairs", type=int, default=10_000)
        parser.add_argument("--requests", type=int, default=100)

    def handle(self, *args, pairs: int, requests: int, **options):
        ids = list(Video.objects.values_list("pk", flat=True))
        if len(ids) * (len(ids) - 1) // 2 < pairs:
            raise CommandError(f"{len(ids)} videos cannot make {pairs} pairs: ingest a benchmark first")
        Verdict.objects.all().delete()
        Decision.objects.all().delete()
        Claim.objects.all().delete()
        self._fill(ids, pairs)
        user, _ = User.objects.get_or_create(username="bench-review")
        user.groups.add(Group.objects.get_or_create(name="moderator")[0])
        client = Client()
        client.force_login(user)
        queue = list(Pair.objects.filter(label__in=QUEUE_LABELS).values_list("pk", flat=True)[: 2 * requests])
        if len(queue) < 2 * requests:
            raise CommandError("not enough queued pairs")
        with override_settings(ALLOWED_HOSTS=["*"], DEBUG=False):
            page = self._time(lambda pk: client.get(f"/review/pairs/{pk}"), queue[:requests])
            decide = self._time(
                lambda pk: client.post(
                    f"/review/pairs/{pk}/decide", {"action": "not_duplicate"}, HTTP_HX_REQUEST="true"
                ),
                queue[requests:],
            )
            listing = self._time(lambda _: client.get("/review/"), range(20))
        self.stdout.write(
            f"{Pair.objects.count()} pairs, {len(ids)} videos, database {settings.DATABASES['default']['NAME']}"
        )
        for name, samples in (("pair page", page), ("decision + next pair", decide), ("queue page", listing)):
            ordered = sorted(samples)
            p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
            self.stdout.write(
                f"{name}: p50 {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms ({len(samples)} requests)"
            )

    def _fill(self, ids: list[int], target: int) -> None:
        existing = set(Pair.objects.values_list("video_a_id", "video_b_id"))
        config = ScoringConfig.active()
        rng = random.Random(0)
        labels = ["near_duplicate", "partial", "similar", "different", "exact"]
        new = []
        while len(existing) < target:
            a, b = sorted(rng.sample(ids, 2))
            if (a, b) in existing:
                continue
            existing.add((a, b))
            new.append(
                Pair(
                    video_a_id=a,
                    video_b_id=b,
                    score=rng.random(),
                    label=rng.choice(labels),
                    visual=0.8,
                    audio=0.7,
                    metadata=0.5,
                    config=config,
                    breakdown={"matched_frames": 5},
                    segments={
                        "a": [[0, 5]],
                        "b": [[0, 5]],
                        "coverage_a": 1,
                        "coverage_b": 1,
                        "offset": 0,
                        "speed": 1,
                    },
                )
            )
        Pair.objects.bulk_create(new, batch_size=2000)

    def _time(self, request, keys) -> list[float]:
        samples = []
        for key in keys:
            start = time.perf_counter()
            response = request(key)
            samples.append((time.perf_counter() - start) * 1000)
            if response.status_code >= 400:
                raise CommandError(f"request failed with {response.status_code}")
        return samples
