"""Config activations recorded with who made them (issue 28). Configs activated before this keep
their last activation time only (ScoringConfig.activated_at): one "earlier" row each, by nobody
known; an earlier switch away and back was never stored."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def record_earlier_activations(apps, schema_editor):
    ScoringConfig = apps.get_model("dedup", "ScoringConfig")
    ConfigActivation = apps.get_model("dedup", "ConfigActivation")
    ConfigActivation.objects.bulk_create(
        ConfigActivation(config=config, activated_at=config.activated_at, via="earlier")
        for config in ScoringConfig.objects.filter(activated_at__isnull=False).order_by("activated_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dedup", "0015_job"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ConfigActivation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("activated_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                (
                    "via",
                    models.CharField(
                        choices=[
                            ("admin", "Django admin"),
                            ("calibration", "calibration applied"),
                            ("restore", "restored on the calibration page"),
                            ("command", "management command"),
                            ("default", "first default config"),
                            ("earlier", "before activations were recorded"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "activated_by",
                    models.ForeignKey(
                        blank=True,
                        help_text="Empty for a management command or the automatic first config.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "config",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="activations",
                        to="dedup.scoringconfig",
                    ),
                ),
                (
                    "previous",
                    models.ForeignKey(
                        blank=True,
                        help_text="The config that was active until then.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="dedup.scoringconfig",
                    ),
                ),
            ],
            options={
                "ordering": ["-activated_at", "-pk"],
            },
        ),
        migrations.RunPython(record_earlier_activations, migrations.RunPython.noop),
    ]
