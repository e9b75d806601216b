"""Verdict moves from review to dedup, beside Pair: groups and exports read it, and dedup must not
import review. Its rows stay: the model is taken over in the migration state only (the table is
the same), then the table is renamed review_verdict -> dedup_verdict."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dedup", "0012_video_claim_heartbeat"),
        ("review", "0004_group_resolution"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Verdict",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[("duplicate", "duplicate"), ("not_duplicate", "not a duplicate")],
                                max_length=20,
                            ),
                        ),
                        ("decided_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "canonical",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="dedup.video",
                            ),
                        ),
                        (
                            "decided_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "video_a",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="dedup.video",
                            ),
                        ),
                        (
                            "video_b",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="dedup.video",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "review_verdict",
                        "constraints": [
                            models.UniqueConstraint(fields=("video_a", "video_b"), name="verdict_unique"),
                            models.CheckConstraint(
                                condition=models.Q(("video_a__lt", models.F("video_b"))),
                                name="verdict_ordered",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="verdict", table=None),
    ]
