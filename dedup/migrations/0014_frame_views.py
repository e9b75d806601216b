"""Sub-picture views (issue 26): Video.layout (the boxes found; existing videos read as having
none, an empty list, so they are scored exactly as before) and FrameView, the crops of those
boxes embedded, with a partial HNSW index per backbone over their full embeddings, as the frame
table's (migration 0009). The embeddings stay in the row, as the frames' do (migration 0008)."""

import django.db.models.deletion
import pgvector.django.halfvec
from django.db import migrations, models

BACKBONE_DIMS = {"efficientnet_lite0": 1280, "resnet50": 2048, "clip_vit_b32": 512}


def create_index(name: str, dim: int) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS view_emb_hnsw_{name} ON dedup_frameview "
        f"USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64) "
        f"WHERE model = '{name}' AND informative AND indexed"
    )


class Migration(migrations.Migration):
    dependencies = [("dedup", "0013_verdict_from_review")]

    operations = [
        migrations.AddField(
            model_name="video",
            name="layout",
            field=models.JSONField(
                blank=True,
                default=list,
                db_default=[],
                help_text="Sub-pictures found (picture-in-picture, stacks, split screens): one entry per "
                "view, its box as fractions of the frame (top, bottom, left, right); see FrameView.",
            ),
        ),
        migrations.CreateModel(
            name="FrameView",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("view", models.PositiveSmallIntegerField(help_text="1.. as in Video.layout")),
                ("idx", models.PositiveIntegerField(help_text="The frame (Frame.idx) the box was cut from.")),
                ("t", models.FloatField()),
                ("informative", models.BooleanField(default=True)),
                ("indexed", models.BooleanField(default=True)),
                ("phash", models.BigIntegerField()),
                ("thumb", models.BinaryField(blank=True, null=True)),
                ("model", models.CharField(max_length=50)),
                ("embedding", pgvector.django.halfvec.HalfVectorField()),
                ("index_embedding", pgvector.django.halfvec.HalfVectorField(blank=True, null=True)),
                (
                    "video",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="views", to="dedup.video"
                    ),
                ),
            ],
            options={
                "ordering": ["video_id", "view", "idx"],
                "constraints": [
                    models.UniqueConstraint(fields=("video", "view", "idx"), name="frameview_video_view_idx")
                ],
            },
        ),
        migrations.RunSQL(
            "ALTER TABLE dedup_frameview ALTER COLUMN embedding SET STORAGE PLAIN, "
            "ALTER COLUMN index_embedding SET STORAGE PLAIN, ALTER COLUMN thumb SET STORAGE MAIN",
            migrations.RunSQL.noop,
        ),
        *(
            migrations.RunSQL(create_index(name, dim), f"DROP INDEX IF EXISTS view_emb_hnsw_{name}")
            for name, dim in BACKBONE_DIMS.items()
        ),
    ]
