"""/metrics (Prometheus), /health/live and /health/ready, JSON logs, and the Redis broker."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django_q.tasks import async_task

from dedup.models import ScoringConfig
from review.models import Decision

from . import factories as make

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-for-tests"


@pytest.fixture
def scrape(client, settings):
    settings.ASTRADUP_METRICS_TOKEN = TOKEN

    def get() -> str:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=")
        return response.content.decode()

    return get


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    raise AssertionError(f"{series} not in /metrics:\n{text}")


@pytest.mark.django_db
def test_metrics_show_the_library_queue_stages_pairs_decisions_and_config(scrape, client):
    a = make.video("a.mp4", status="ready", timings={"decode": 0.3, "embed": 2.0})
    b = make.video("b.mp4", status="ready", timings={"decode": 0.7, "embed": 40.0, "note": "x"})
    make.video("c.mp4", status="failed")
    pair = make.pair(a, b, label="near_duplicate")
    Decision.objects.create(pair=pair, video_a=a, video_b=b, action="confirm")
    config = ScoringConfig.active()
    async_task("time.sleep", 0)  # waits in the ORM broker: no cluster runs here
    client.get("/health/live")

    text = scrape()
    assert _value(text, 'astradup_videos{status="ready"}') == 2
    assert _value(text, 'astradup_videos{status="failed"}') == 1
    assert _value(text, 'astradup_videos{status="processing"}') == 0
    assert _value(text, "astradup_queue_tasks") == 1
    assert _value(text, "astradup_queue_oldest_task_age_seconds") >= 0
    assert _value(text, "astradup_queue_tasks_in_flight") == 0
    assert _value(text, "astradup_broker_up") == 1
    # the stored timings, as a histogram per stage (a value that is no number is left out)
    assert _value(text, 'astradup_extraction_stage_seconds_bucket{le="0.5",stage="decode"}') == 1
    assert _value(text, 'astradup_extraction_stage_seconds_bucket{le="1.0",stage="decode"}') == 2
    assert _value(text, 'astradup_extraction_stage_seconds_bucket{le="+Inf",stage="embed"}') == 2
    assert _value(text, 'astradup_extraction_stage_seconds_sum{stage="embed"}') == 42.0
    assert 'stage="note"' not in text
    assert _value(text, 'astradup_pairs{label="near_duplicate"}') == 1
    assert _value(text, 'astradup_decisions_total{action="confirm"}') == 1
    assert _value(text, "astradup_scoring_config_active_id") == config.pk
    assert (
        _value(text, 'astradup_http_requests_total{method="GET",status="200",view="dedup:health_live"}') >= 1
    )
    assert (
        'astradup_http_request_duration_seconds_bucket{le="0.01",method="GET",view="dedup:health_live"}'
        in text
    )


@pytest.mark.django_db
def test_the_bench_api_scrape_reads_the_queue_videos_and_stages_from_metrics(scrape):
    from bench.scrape import parse, queue_table, stage_table

    make.video("a.mp4", status="ready", timings={"decode": 0.5, "embed": 2.0})
    make.video("b.mp4", status="ready", timings={"decode": 1.5, "embed": 4.0})
    make.video("c.mp4", status="pending")
    async_task("time.sleep", 0)  # waits in the ORM broker: no cluster runs here

    sample = parse(scrape(), at=12.0)
    assert (sample.waiting, sample.in_flight) == (1, 0) and sample.oldest_age >= 0
    assert sample.videos == {"pending": 1, "processing": 0, "ready": 2, "failed": 0}
    assert sample.stages == {"decode": (2, 2.0), "embed": (2, 6.0)}
    assert queue_table([sample]).splitlines()[1].split() == [
        "12",
        "1",
        "0",
        f"{sample.oldest_age:.1f}",
        "1",
        "0",
        "2",
        "0",
        "0",
    ]
    assert stage_table(sample).splitlines()[1].split() == ["embed", "2", "6.0", "3.000"]


@pytest.mark.django_db
def test_metrics_are_refused_without_the_token_or_an_allowed_address(client, settings):
    settings.ASTRADUP_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    client.force_login(make.user("admin", "admin"))  # a role is not enough: this is for monitoring
    assert client.get("/metrics").status_code == 403
    settings.ASTRADUP_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="11.1.2.3").status_code == 403


@pytest.mark.django_db
def test_liveness_and_readiness(client, settings):
    settings.ASTRADUP_METRICS_TOKEN = TOKEN
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").json() == {"status": "ok"}  # anonymous: no details
    ready = client.get("/health/ready", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert ready["status"] == "ok" and ready["database"] == "ok" and ready["broker"] == "orm"
    assert ready["pgvector"] and ready["workers"] == 0
    assert client.get("/health").json() == {"status": "ok"}  # the old endpoint answers as before


def _manage(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_json_logs_with_one_switch():
    result = _manage(
        "import logging; logging.getLogger('astradup.test').warning('hello %s', 'json')",
        ASTRADUP_LOG_FORMAT="json",
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if "hello" in line)
    record = json.loads(line)
    assert record["message"] == "hello json" and record["level"] == "WARNING"
    assert record["logger"] == "astradup.test" and "time" in record


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_the_redis_broker_when_asked_for(tmp_path):
    from lib.topology import free_port, wait_port

    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port, deadline=time.monotonic() + 30, process=redis)
        code = (
            "import json; from django_q.tasks import async_task; from dedup import observability as o;"
            "async_task('time.sleep', 0); async_task('time.sleep', 0);"
            "ok, body = o.readiness(); print(json.dumps({'ready': ok, **body, **o.broker_queue()}))"
        )
        result = _manage(code, ASTRADUP_REDIS_URL=f"redis://127.0.0.1:{port}/0")
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        assert seen["broker"] == "redis", seen
        assert seen["waiting"] == 2 and seen["oldest_age"] >= 0 and seen["in_flight"] is None
    finally:
        redis.send_signal(signal.SIGTERM)
        redis.wait(timeout=30)
