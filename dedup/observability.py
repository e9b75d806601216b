"""What monitoring reads: /metrics in Prometheus' text format, and the checks of /health/ready.

Request counts are kept per process by prometheus-client; under gunicorn (PROMETHEUS_MULTIPROC_DIR,
set by `manage.py serve`) each process writes its own file and a scrape adds them up. Everything
about the library (videos, queue, stage timings, pairs, decisions, the scoring config) is read from
the database and the broker at scrape time, so it is the same whichever process answers and covers
every worker on every machine: the stage histogram comes from the timings each extraction stores
(Video.timings), not from the worker processes' memory."""

import ipaddress
import os
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

# per route (the URL pattern's name), not per URL: one series per view, whatever the ids
REQUESTS = Counter(
    "astradup_http_requests",
    "HTTP requests answered, by method, view and status",
    ["method", "view", "status"],
    registry=None,
)
LATENCY = Histogram(
    "astradup_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by method and view",
    ["method", "view"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None,
)
# CPU seconds of one video's stage; from short clips' decode to an hour of 4K embedding
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match.route) if match else "unresolved"
        LATENCY.labels(request.method, view).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, view, str(response.status_code)).inc()
        return response


def may_scrape(request: HttpRequest) -> bool:
    """ASTRADUP_METRICS_TOKEN as a Bearer token, or a client address inside
    ASTRADUP_METRICS_ALLOWED_IPS (behind nginx: with DJANGO_BEHIND_PROXY, the address nginx saw)."""
    from .security import client_ip, presents_metrics_token

    if presents_metrics_token(request):
        return True
    address = client_ip(request)
    if not address or not settings.ASTRADUP_METRICS_ALLOWED_IPS:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in settings.ASTRADUP_METRICS_ALLOWED_IPS)


def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # every gunicorn process's requests
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(LibraryCollector())
    return registry


def broker_queue() -> dict:
    """Tasks waiting in the broker, the age in seconds of the oldest (None: none waits) and, on
    the ORM broker, tasks taken by a worker and not yet acknowledged (None on Redis, which keeps
    no such list). Raises where the broker cannot be reached."""
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker = get_broker()
    waiting = broker.queue_size()
    oldest_payload = None
    in_flight = None
    if settings.Q_CLUSTER.get("redis"):
        if waiting:
            oldest_payload = broker.connection.lindex(broker.list_key, 0)  # pushed right, taken left
    else:
        from django_q.models import OrmQ

        now = timezone.now()
        queued = OrmQ.objects.using(broker.connection.db).filter(key=broker.list_key)
        first = queued.filter(lock__lte=now).order_by("id").values_list("payload", flat=True).first()
        oldest_payload = first
        in_flight = queued.filter(lock__gt=now).count()
    age = None
    if oldest_payload is not None:
        try:
            started = SignedPackage.loads(oldest_payload)["started"]  # set by async_task
            age = max(0.0, (timezone.now() - started).total_seconds())
        except Exception:  # signed with another key, or not one of django-q2's tasks
            age = None
    return {"waiting": waiting, "oldest_age": age, "in_flight": in_flight}


def stage_histograms() -> dict[str, tuple[list[int], int, float]]:
    """Per stage: cumulative counts at STAGE_BUCKETS, the count and the sum, over the stored
    timings of every video, added up by the database (one row per stage, whatever the library's size)."""
    filters = ", ".join(f"count(*) FILTER (WHERE t.value::float8 <= {le!r})" for le in STAGE_BUCKETS)
    sql = (
        f"SELECT t.key, count(*), coalesce(sum(t.value::float8), 0), {filters} "
        "FROM dedup_video v, jsonb_each(CASE WHEN jsonb_typeof(v.timings) = 'object' THEN v.timings "
        "ELSE '{}'::jsonb END) t WHERE jsonb_typeof(t.value) = 'number' GROUP BY t.key ORDER BY t.key"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {row[0]: (list(row[3:]), row[1], float(row[2])) for row in cursor.fetchall()}


# other apps' series, read at each scrape: callables that yield metric families (review's
# decisions, registered in review.apps)
APP_COLLECTORS: list[Callable[[], Iterator[Metric]]] = []


class LibraryCollector:
    """The library's numbers, read at each scrape."""

    def collect(self):
        from .models import Pair, ScoringConfig, Video
        from .progress import worker_clusters
        from .views import counts_by

        videos = GaugeMetricFamily("astradup_videos", "Videos in the library, by status", labels=["status"])
        counts = counts_by(Video.objects.all(), "status")
        for status in Video.Status.values:
            videos.add_metric([status], counts.get(status, 0))
        yield videos

        try:
            queue = broker_queue()
        except Exception:
            queue = None
        up = GaugeMetricFamily("astradup_broker_up", "1 when the task broker answered this scrape")
        up.add_metric([], 0 if queue is None else 1)
        yield up
        if queue is not None:
            yield GaugeMetricFamily(
                "astradup_queue_tasks", "Tasks waiting in the broker", value=queue["waiting"]
            )
            yield GaugeMetricFamily(
                "astradup_queue_oldest_task_age_seconds",
                "Seconds since the oldest waiting task was queued (0: none waits)",
                value=queue["oldest_age"] or 0,
            )
            if queue["in_flight"] is not None:
                yield GaugeMetricFamily(
                    "astradup_queue_tasks_in_flight",
                    "Tasks taken by a worker and not yet done (ORM broker)",
                    value=queue["in_flight"],
                )
        yield GaugeMetricFamily(
            "astradup_worker_clusters", "django-q2 clusters seen alive", value=worker_clusters()
        )

        stages = HistogramMetricFamily(
            "astradup_extraction_stage_seconds",
            "CPU seconds of one video's extraction stage, from the timings stored with each video",
            labels=["stage"],
        )
        for stage, (cumulative, count, total) in stage_histograms().items():
            buckets = [(repr(float(le)), n) for le, n in zip(STAGE_BUCKETS, cumulative, strict=True)]
            stages.add_metric([stage], buckets + [("+Inf", count)], total)
        yield stages

        pairs = GaugeMetricFamily("astradup_pairs", "Candidate pairs, by label", labels=["label"])
        counts = counts_by(Pair.objects.all(), "label")
        for label in Pair.Label.values:
            pairs.add_metric([label], counts.get(label, 0))
        yield pairs

        for collect in APP_COLLECTORS:  # the review app's decisions (dedup never imports review)
            yield from collect()

        active = ScoringConfig.objects.filter(is_active=True).values_list("pk", flat=True).first()
        yield GaugeMetricFamily(
            "astradup_scoring_config_active_id",
            "Id of the active scoring config (0: none yet)",
            value=active or 0,
        )


def readiness() -> tuple[bool, dict]:
    """Whether this server can do its work: the database answers and has pgvector, the broker
    answers. Worker clusters are counted, not required (the web server serves without them; the
    queue then waits, which astradup_queue_oldest_task_age_seconds shows)."""
    from .progress import worker_clusters

    body: dict = {}
    ok = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        body["database"] = "ok"
        body["pgvector"] = row[0] if row else None
        ok = row is not None
    except Exception as exc:
        body["database"] = f"error: {exc}"
        return False, body
    try:
        from django_q.brokers import get_broker

        get_broker().ping()
        body["broker"] = "redis" if settings.Q_CLUSTER.get("redis") else "orm"
    except Exception as exc:
        body["broker"] = f"error: {exc}"
        ok = False
    body["workers"] = worker_clusters()
    return ok, body
