"""Verdict moved to dedup (dedup migration 0013, which keeps its rows and renames its table): here it
leaves review's migration state only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0004_group_resolution"),
        ("dedup", "0013_verdict_from_review"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Verdict")],
            database_operations=[],
        ),
    ]
