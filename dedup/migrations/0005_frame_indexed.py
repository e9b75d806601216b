"""Frames sampled faster than 1 fps (short videos) stay out of the HNSW indexes.

Short videos are sampled at up to 4 fps so that copies cut at another phase still line up, but
the candidate index keeps one frame per second per video: otherwise a query frame's k nearest
neighbours fill up with one look-alike video's consecutive frames and crowd out other copies.
Every frame still queries the index, and scoring uses all of them.
"""

from django.db import migrations, models

BACKBONE_DIMS = {"efficientnet_lite0": 1280, "resnet50": 2048, "clip_vit_b32": 512}


def create_index(name: str, dim: int) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS frame_emb_hnsw_{name} ON dedup_frame "
        f"USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64) "
        f"WHERE model = '{name}' AND informative AND indexed"
    )


def _previous(name: str, dim: int) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS frame_emb_hnsw_{name} ON dedup_frame "
        f"USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64) "
        f"WHERE model = '{name}' AND informative"
    )


class Migration(migrations.Migration):
    dependencies = [("dedup", "0004_config_history")]

    operations = [
        migrations.AddField(
            model_name="frame",
            name="indexed",
            field=models.BooleanField(
                default=True, help_text="In the candidate index (one frame per second of video)."
            ),
        ),
        *(
            migrations.RunSQL(
                [f"DROP INDEX IF EXISTS frame_emb_hnsw_{name}", create_index(name, dim)],
                [f"DROP INDEX IF EXISTS frame_emb_hnsw_{name}", _previous(name, dim)],
            )
            for name, dim in BACKBONE_DIMS.items()
        ),
    ]
