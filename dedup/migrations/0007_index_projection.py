"""A projected copy of each frame embedding and its HNSW index, per backbone.

The projection is fitted on a library (manage.py fit_index_projection); until then the column is
empty and so is the partial index. 256 dimensions: dedup.features.projection.PROJECTED_DIM.
"""

import django.utils.timezone
import pgvector.django.halfvec
from django.db import migrations, models

BACKBONES = ("efficientnet_lite0", "resnet50", "clip_vit_b32")


def create_index(name: str) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS frame_proj_hnsw_{name} ON dedup_frame "
        f"USING hnsw ((index_embedding::halfvec(256)) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64) "
        f"WHERE model = '{name}' AND informative AND indexed AND index_embedding IS NOT NULL"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dedup", "0006_frame_thumb"),
    ]

    operations = [
        migrations.CreateModel(
            name="IndexProjection",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("backbone", models.CharField(max_length=50, unique=True)),
                ("dim", models.PositiveIntegerField()),
                ("basis", models.BinaryField(help_text="float32 (embedding dim x dim), row-major.")),
                ("frames", models.PositiveIntegerField(help_text="Frames the basis was fitted on.")),
                (
                    "ready",
                    models.BooleanField(
                        default=False, help_text="Every frame of this backbone carries its projection."
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.AddField(
            model_name="frame",
            name="index_embedding",
            field=pgvector.django.halfvec.HalfVectorField(
                blank=True,
                help_text="The embedding projected for the candidate index (see IndexProjection).",
                null=True,
            ),
        ),
        *(
            migrations.RunSQL(create_index(name), f"DROP INDEX IF EXISTS frame_proj_hnsw_{name}")
            for name in BACKBONES
        ),
    ]
