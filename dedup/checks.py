"""System checks: a missing Chromaprint library, pgvector and weights are reported with an id, not a traceback."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import connection
from django.db.utils import OperationalError


@register()
def audio_library_check(app_configs, **kwargs):
    # Video and audio are read in-process through PyAV (its wheel carries FFmpeg's libraries), so
    # the ffmpeg/ffprobe programs are only needed by the tests and benchmarks, not checked here.
    errors = []
    try:
        import chromaprint  # noqa: F401
    except (ImportError, OSError):
        errors.append(
            Warning(
                "libchromaprint is missing: audio fingerprints will be skipped.",
                hint="apt-get install libchromaprint1",
                id="dedup.W002",
            )
        )
    return errors


@register(Tags.database)
def pgvector_check(app_configs, databases=None, **kwargs):
    """Runs with `migrate` (so `make run` stops here) and `check --database default`."""
    if not databases:
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            if cursor.fetchone() is None:
                return [
                    Error(
                        "The PostgreSQL server has no 'vector' extension (pgvector).",
                        hint="Install pgvector on the server or unset DATABASE_URL to use the embedded one.",
                        id="dedup.E003",
                    )
                ]
    except OperationalError as exc:
        return [Error(f"Cannot connect to the database: {exc}", id="dedup.E004")]
    return []


@register()
def weights_check(app_configs, **kwargs):
    from .features.embed import BACKBONES, WeightsMissing
    from .services import backbone_weights

    name = settings.ASTRADUP["BACKBONE"]
    if name not in BACKBONES:
        return [
            Error(f"Unknown backbone '{name}'.", hint=f"Choose one of {sorted(BACKBONES)}.", id="dedup.E005")
        ]
    try:
        backbone_weights(name)
    except WeightsMissing as exc:
        return [Error(str(exc), id="dedup.E006")]
    return []


@register()
def decode_device_check(app_configs, **kwargs):
    value = settings.ASTRADUP["DECODE_DEVICE"]
    if value not in ("auto", "cpu", "cuda"):
        return [
            Error(
                f"ASTRADUP_DECODE_DEVICE is '{value}'.",
                hint="Use auto (decode on the GPU when embedding on CUDA), cpu or cuda.",
                id="dedup.E007",
            )
        ]
    return []
