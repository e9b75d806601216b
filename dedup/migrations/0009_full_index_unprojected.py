"""The full-embedding HNSW index holds only frames without a projection.

Once a library's projection is fitted (manage.py fit_index_projection), candidate search reads
the 256-d projected index and never the full one, yet every frame written still paid an insert
into the full index: 3.9 GB per million 1280-d frames, and at 10 M frames an index four times
this machine's memory that each new video's 60 inserts walk on disk. Frames that carry a
projection now stay out of it; a library without a projection has every frame in it, as before.
"""

from django.db import migrations

BACKBONE_DIMS = {"efficientnet_lite0": 1280, "resnet50": 2048, "clip_vit_b32": 512}


def create_index(name: str, dim: int, *, unprojected: bool) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS frame_emb_hnsw_{name} ON dedup_frame "
        f"USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64) "
        f"WHERE model = '{name}' AND informative AND indexed"
        + (" AND index_embedding IS NULL" if unprojected else "")
    )


class Migration(migrations.Migration):
    dependencies = [("dedup", "0008_frame_embedding_plain_storage")]

    operations = [
        migrations.RunSQL(
            [f"DROP INDEX IF EXISTS frame_emb_hnsw_{name}", create_index(name, dim, unprojected=True)],
            [f"DROP INDEX IF EXISTS frame_emb_hnsw_{name}", create_index(name, dim, unprojected=False)],
        )
        for name, dim in BACKBONE_DIMS.items()
    ]
