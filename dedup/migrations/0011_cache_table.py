"""The database cache's table (CACHES["default"]), made by the migrations rather than by `serve`
alone: /health and the worker statistics read the cache, and a server started any other way
after `migrate` (runserver, gunicorn, the compose file) answered 500 without it."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # createcachetable's own logic: every DatabaseCache in settings, skipped where it exists
    # (`serve` made it before this migration) or where the cache is not in the database
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [
        ("dedup", "0010_video_sar"),
    ]

    # reversed, the table stays: it holds no model's rows, and it may predate this migration
    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop, elidable=False)]
