"""The review's series on /metrics (dedup.observability reads them at each scrape)."""

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from dedup.views import counts_by

from .models import Decision


def decision_metrics() -> Iterator[Metric]:
    decisions = CounterMetricFamily("astradup_decisions", "Moderator decisions, by action", labels=["action"])
    counts = counts_by(Decision.objects.all(), "action")
    for action in Decision.Action.values:
        decisions.add_metric([action], counts.get(action, 0))
    yield decisions
