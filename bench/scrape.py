"""What `make bench-api` reads from /metrics while the workers drain the import: the queue, the
videos by status and, at the end, the extraction stages. Parsed from Prometheus' text format as a
monitoring system receives it (no Django here), so the numbers are those production exposes."""

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

STATUSES = ("pending", "processing", "ready", "failed")


@dataclass
class Sample:
    """One scrape: seconds since the import was posted, and the series the table shows."""

    at: float
    waiting: float = 0.0
    in_flight: float | None = None
    oldest_age: float = 0.0
    videos: dict[str, float] = field(default_factory=dict)
    pairs: float = 0.0
    # stage -> (count, sum of CPU seconds)
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)


def parse(text: str, *, at: float) -> Sample:
    sample = Sample(at=at)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "astradup_queue_tasks":
                sample.waiting = s.value
            elif s.name == "astradup_queue_tasks_in_flight":
                sample.in_flight = s.value
            elif s.name == "astradup_queue_oldest_task_age_seconds":
                sample.oldest_age = s.value
            elif s.name == "astradup_videos":
                sample.videos[s.labels["status"]] = s.value
            elif s.name == "astradup_pairs":
                sample.pairs += s.value
            elif s.name in (
                "astradup_extraction_stage_seconds_count",
                "astradup_extraction_stage_seconds_sum",
            ):
                count, total = sample.stages.get(s.labels["stage"], (0.0, 0.0))
                if s.name.endswith("_count"):
                    count = s.value
                else:
                    total = s.value
                sample.stages[s.labels["stage"]] = (count, total)
    return sample


def queue_table(samples: list[Sample]) -> str:
    """One line a scrape: time, queue depth (waiting + taken by a worker), oldest waiting task's
    age, videos by status, pairs found so far."""
    head = f"{'t s':>6} {'queue':>6} {'in fl.':>6} {'oldest s':>9} " + " ".join(f"{s:>10}" for s in STATUSES)
    lines = [head + f" {'pairs':>6}"]
    for s in samples:
        in_flight = "-" if s.in_flight is None else f"{s.in_flight:.0f}"
        lines.append(
            f"{s.at:6.0f} {s.waiting:6.0f} {in_flight:>6} {s.oldest_age:9.1f} "
            + " ".join(f"{s.videos.get(status, 0):10.0f}" for status in STATUSES)
            + f" {s.pairs:6.0f}"
        )
    return "\n".join(lines)


def stage_table(sample: Sample) -> str:
    """The extraction stages' histogram sums and counts: CPU seconds in all and per video."""
    lines = [f"{'stage':<16} {'videos':>7} {'CPU s':>9} {'s/video':>8}"]
    for stage, (count, total) in sorted(sample.stages.items(), key=lambda kv: -kv[1][1]):
        per = total / count if count else 0.0
        lines.append(f"{stage:<16} {count:7.0f} {total:9.1f} {per:8.3f}")
    return "\n".join(lines)
