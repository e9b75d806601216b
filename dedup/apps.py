from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DedupConfig(AppConfig):
    name = "dedup"
    verbose_name = "Videos and matching"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)

        post_migrate.connect(update_vector_extension, sender=self)
        from django_q.signals import post_spawn

        post_spawn.connect(worker_started)


def worker_started(sender, proc_name: str = "", **kwargs) -> None:
    """A django-q2 worker process started (with the cluster, or in place of one that died or was
    recycled): videos whose extraction process died are tried again at once, not after the
    task's `retry` (35 minutes), and the per-minute recovery is scheduled."""
    import logging

    from django.db import DatabaseError

    from .services.claims import claims_recover, claims_recovery_schedule

    try:
        claims_recovery_schedule()
        claims_recover()
    except DatabaseError as exc:
        logging.getLogger(__name__).warning("recovering dead extraction claims: %s", exc)


def update_vector_extension(sender, using: str = "default", **kwargs) -> None:
    """After `migrate`: the database's pgvector extension brought to the release the server's
    files offer (`update_extension`). Without the privilege it is left as it is: the library in
    use is the server's either way."""
    import logging

    from django.db import DatabaseError, connections, transaction

    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            update_extension(cursor)
    except DatabaseError as exc:
        logging.getLogger(__name__).warning("pgvector extension left at its release: %s", exc)


def update_extension(cursor) -> str | None:
    """`ALTER EXTENSION vector UPDATE` where the database's extension is older than the release the
    server's files offer, as pgvector asks after each upgrade of its library (the embedded one is
    rebuilt by lib.portable_pgvector; 0.8.2 to 0.8.6 changes no SQL, so this records the release).
    Returns the release updated to, or None."""
    cursor.execute(
        "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'"
    )
    row = cursor.fetchone()
    if not row or not row[1] or row[0] == row[1]:
        return None
    cursor.execute("ALTER EXTENSION vector UPDATE")
    return row[0]
