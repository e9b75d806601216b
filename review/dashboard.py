"""What a team lead looks at: videos by status, the queue by class and age, decisions per day and
per moderator, and the storage that resolving the duplicate groups would free.

Every number is an aggregate query: the page costs the same few queries for ten videos or a
million (tests/test_dashboard.py holds it)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Case, Count, F, Min, Q, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from dedup.models import Video
from dedup.progress import IngestProgress, ingest_progress

from .models import Decision
from .services import QUEUE_LABELS, queue_pairs

# the ages a waiting pair is sorted into: (name, younger than), the last one open-ended
QUEUE_AGES = (
    ("under a day", timedelta(days=1)),
    ("1–7 days", timedelta(days=7)),
    ("1–4 weeks", timedelta(days=28)),
    ("older", None),
)
# what counts as a decision on the dashboard: the actions that settle a pair (a skip does not,
# and a decision since undone is counted as undone, not as decided)
DECIDING = (Decision.Action.CONFIRM, Decision.Action.NOT_DUPLICATE, Decision.Action.MERGE)


@dataclass(frozen=True)
class Storage:
    groups: int
    copies: int  # members that are not the copy kept
    freeable: int  # bytes: their sizes
    freeable_chosen: int  # bytes, in groups whose copy to keep a moderator has chosen
    undecided_groups: int  # groups with a suggested copy only


@dataclass(frozen=True)
class Dashboard:
    videos: IngestProgress
    queue: dict[str, dict[str, int]]  # class -> age -> pairs
    queue_oldest: datetime | None
    per_day: list[tuple[date, int]]  # oldest first, every day of the window
    per_moderator: list[dict]  # username, decided, skipped, undone; most decisions first
    storage: Storage
    days: int


def dashboard_summarize(*, now: datetime | None = None, days: int = 14) -> Dashboard:
    now = now or timezone.now()
    queue, oldest = _queue_by_age(now)
    return Dashboard(
        videos=ingest_progress(now=now),
        queue=queue,
        queue_oldest=oldest,
        per_day=_decisions_per_day(now, days),
        per_moderator=_decisions_per_moderator(now, days),
        storage=_storage(),
        days=days,
    )


def _queue_by_age(now: datetime) -> tuple[dict[str, dict[str, int]], datetime | None]:
    waiting = queue_pairs(order="score").order_by()
    age = Case(
        *[When(created_at__gt=now - limit, then=Value(name)) for name, limit in QUEUE_AGES if limit],
        default=Value(QUEUE_AGES[-1][0]),
    )
    table = {label: {name: 0 for name, _ in QUEUE_AGES} for label in QUEUE_LABELS}
    for row in waiting.annotate(age=age).values("label", "age").annotate(n=Count("pk")):
        table[row["label"]][row["age"]] = row["n"]
    return table, waiting.aggregate(oldest=Min("created_at"))["oldest"]


def _window(now: datetime, days: int) -> tuple[date, datetime]:
    """The first local day of the window and the moment it starts."""
    first = timezone.localdate(now) - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    return first, start


def _decisions_per_day(now: datetime, days: int) -> list[tuple[date, int]]:
    first, start = _window(now, days)
    counts = dict(
        Decision.objects.filter(created_at__gte=start, action__in=DECIDING, undone_at__isnull=True)
        .annotate(day=TruncDate("created_at"))  # in the site's time zone
        .values("day")
        .order_by()
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    return [(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)]


def _decisions_per_moderator(now: datetime, days: int) -> list[dict]:
    _, start = _window(now, days)
    rows = (
        Decision.objects.filter(created_at__gte=start)
        .exclude(action=Decision.Action.UNDO)
        .values("user__username")
        .order_by()
        .annotate(
            decided=Count("pk", filter=Q(action__in=DECIDING, undone_at__isnull=True)),
            skipped=Count("pk", filter=Q(action=Decision.Action.SKIP, undone_at__isnull=True)),
            undone=Count("pk", filter=Q(undone_at__isnull=False)),
        )
    )
    out = [
        {
            "username": r["user__username"] or "(deleted user)",
            "decided": r["decided"],
            "skipped": r["skipped"],
            "undone": r["undone"],
        }
        for r in rows
    ]
    return sorted(out, key=lambda r: (-r["decided"], r["username"]))


def _storage() -> Storage:
    # the copy a group keeps: the moderator's choice, else the suggested one
    members = Video.objects.filter(group__isnull=False).annotate(
        keep=Coalesce(F("group__canonical_id"), F("group__suggested_keep_id"))
    )
    copy = Q(keep__isnull=False) & ~Q(pk=F("keep"))
    row = members.aggregate(
        groups=Count("group", distinct=True),
        copies=Count("pk", filter=copy),
        freeable=Sum("size", filter=copy, default=0),
        freeable_chosen=Sum("size", filter=copy & Q(group__canonical__isnull=False), default=0),
        undecided_groups=Count("group", distinct=True, filter=Q(group__canonical__isnull=True)),
    )
    return Storage(**row)
