"""Verdicts moved from review to dedup (dedup 0013, review 0005): a database migrated before the
move keeps its verdicts, in the new table."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from dedup.models import Verdict

BEFORE = [("dedup", "0012_video_claim_heartbeat"), ("review", "0004_group_resolution")]

pytestmark = pytest.mark.django_db(transaction=True)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # what is applied now
    return executor.loader.project_state(targets).apps


def test_verdicts_recorded_before_the_move_survive_it():
    old = _migrate(BEFORE)
    video = old.get_model("dedup", "Video")
    a, b, c = (
        video.objects.create(path=f"/v/{n}.mp4", rel_path=f"{n}.mp4", file_name=f"{n}.mp4", size=1, mtime=0)
        for n in "abc"
    )
    old_verdict = old.get_model("review", "Verdict")
    old_verdict.objects.create(video_a=a, video_b=b, kind="duplicate", canonical=a)
    old_verdict.objects.create(video_a=a, video_b=c, kind="not_duplicate")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert set(Verdict.objects.values_list("video_a", "video_b", "kind", "canonical")) == {
        (a.pk, b.pk, "duplicate", a.pk),
        (a.pk, c.pk, "not_duplicate", None),
    }
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    assert "dedup_verdict" in tables and "review_verdict" not in tables
    # the constraints came along: a pair is judged once, in order
    Verdict.objects.create(video_a_id=b.pk, video_b_id=c.pk, kind="duplicate")
    with pytest.raises(Exception, match="verdict_unique"):
        Verdict.objects.create(video_a_id=b.pk, video_b_id=c.pk, kind="duplicate")


def test_the_move_can_be_migrated_back():
    old = _migrate(BEFORE)
    with connection.cursor() as cursor:
        assert "review_verdict" in connection.introspection.table_names(cursor)
    assert old.get_model("review", "Verdict")._meta.db_table == "review_verdict"
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_configs_activated_before_the_history_get_one_earlier_activation_each():
    from datetime import UTC, datetime

    from dedup.models import ConfigActivation

    old = _migrate([("dedup", "0014_frame_views")])
    config = old.get_model("dedup", "ScoringConfig")
    config.objects.all().delete()
    when = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    earlier = config.objects.create(name="earlier", is_active=False, activated_at=when)
    active = config.objects.create(name="active", is_active=True, activated_at=when.replace(day=2))
    config.objects.create(name="never active")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    rows = ConfigActivation.objects.order_by("activated_at").values_list(
        "config", "activated_at", "activated_by", "via"
    )
    assert list(rows) == [
        (earlier.pk, when, None, "earlier"),
        (active.pk, when.replace(day=2), None, "earlier"),
    ]
