"""Keep frame embeddings in the row instead of TOAST.

A 1280-d halfvec is 2.6 kB, over PostgreSQL's 2 kB TOAST threshold, and pgvector stores its types
EXTERNAL: every frame's embedding went to the TOAST table, so reading one (scoring, the candidate
search's re-rank by full cosine) cost two more index and heap lookups. PLAIN keeps it in the row
(two frames per 8 kB page); rows written before stay where they are until re-extracted. The
projected embedding and the thumbnail stay in the row too: with a PLAIN column over the threshold,
PostgreSQL would otherwise move every other movable value of the row out to TOAST.
60 projected searches re-ranked by full cosine over 120,000 vectors (`manage.py bench_index
--vectors 120000 --spectrum-decay 1.5 --project 256 --ef-search 100 100 --per-frame-statements
--storage external|plain`): p50 172–193 ms EXTERNAL, 143–157 ms PLAIN.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("dedup", "0007_index_projection")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE dedup_frame ALTER COLUMN embedding SET STORAGE PLAIN, "
            "ALTER COLUMN index_embedding SET STORAGE PLAIN, ALTER COLUMN thumb SET STORAGE MAIN",
            "ALTER TABLE dedup_frame ALTER COLUMN embedding SET STORAGE EXTERNAL, "
            "ALTER COLUMN index_embedding SET STORAGE EXTERNAL, ALTER COLUMN thumb SET STORAGE EXTENDED",
        )
    ]
