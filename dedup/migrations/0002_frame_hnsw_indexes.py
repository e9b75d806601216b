"""HNSW indexes on frame embeddings, one partial expression index per backbone.

All backbones share one untyped halfvec column; each index casts it to that backbone's
dimension, so a library can switch backbone (and re-extract) without a schema change.
Queries must repeat the cast, the model and the informative predicate to use an index.
"""

from django.db import migrations

BACKBONE_DIMS = {"efficientnet_lite0": 1280, "resnet50": 2048, "clip_vit_b32": 512}


def _create(name: str, dim: int) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS frame_emb_hnsw_{name} ON dedup_frame "
        f"USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64) "
        f"WHERE model = '{name}' AND informative"
    )


class Migration(migrations.Migration):
    dependencies = [("dedup", "0001_initial")]

    operations = [
        migrations.RunSQL(_create(name, dim), f"DROP INDEX IF EXISTS frame_emb_hnsw_{name}")
        for name, dim in BACKBONE_DIMS.items()
    ]
