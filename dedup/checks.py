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
    from lib.portable_pgvector import SAFE_HNSW_VACUUM, version_key

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            row = cursor.fetchone()
    except OperationalError as exc:
        return [Error(f"Cannot connect to the database: {exc}", id="dedup.E004")]
    if row is None:
        return [
            Error(
                "The PostgreSQL server has no 'vector' extension (pgvector).",
                hint="Install pgvector on the server or unset DATABASE_URL to use the embedded one.",
                id="dedup.E003",
            )
        ]
    # the server's library is the release its control file offers (ALTER EXTENSION only renames)
    if version_key(row[0]) < version_key(SAFE_HNSW_VACUUM):
        return [
            Warning(
                f"The server's pgvector is {row[0]}: before {SAFE_HNSW_VACUUM}, vacuuming an HNSW index "
                "while workers insert frames can corrupt it or fail ('hnsw graph not repaired').",
                hint=f"Upgrade pgvector to {SAFE_HNSW_VACUUM} or newer on the server; for the embedded "
                "one run `python -m lib.portable_pgvector` (make run does).",
                id="dedup.W004",
            )
        ]
    return []


# From this many frames the full 1280-d index outgrows a small server's memory (3.9 GB at 1 M) and
# the 256-d projected index is the one to search (docs/matching.md, docs/benchmarks.md)
PROJECTION_ADVISED_FRAMES = 1_000_000


@register(Tags.database)
def index_projection_check(app_configs, databases=None, **kwargs):
    """Runs with `migrate` (so `make run` shows it) and `check --database default`: fitting the
    projection stops candidate search for a while, so it is advised, never started by itself."""
    if not databases:
        return []
    from django.db.utils import DatabaseError

    from .models import IndexProjection
    from .services.candidates import library_frames

    try:
        frames = library_frames()
        if frames < PROJECTION_ADVISED_FRAMES:
            return []
        backbone = settings.ASTRADUP["BACKBONE"]
        if IndexProjection.objects.filter(backbone=backbone, ready=True).exists():
            return []
    except DatabaseError:  # not migrated yet: nothing to advise
        return []
    return [
        Warning(
            f"The library holds about {frames:,} frames and the '{backbone}' candidate index is not projected.",
            hint="Stop the workers and run `manage.py fit_index_projection`: a 256-d index searches "
            "faster and fits in memory at this size (docs/matching.md).",
            id="dedup.W003",
        )
    ]


@register()
def weights_check(app_configs, **kwargs):
    from .features.embed import BACKBONES, WeightsMissing
    from .services.extraction import backbone_weights

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
    from .features.frames import pick_decode_device

    value = settings.ASTRADUP["DECODE_DEVICE"]
    try:
        pick_decode_device(value, "cpu")
    except ValueError as exc:
        return [Error(str(exc), hint="auto decodes on the GPU when embedding on CUDA.", id="dedup.E007")]
    return []


def is_loopback_host(host: str) -> bool:
    """A host name or address that only this machine reaches (`serve`'s address, ALLOWED_HOSTS)."""
    import ipaddress

    host = host.strip().strip("[]").lower()
    if host in ("localhost", ".localhost") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register(Tags.security)
def debug_exposure_check(app_configs, **kwargs):
    """Not only with --deploy: DEBUG shows tracebacks and settings on every error page, so a
    server that other machines reach must not start with it (runserver, migrate and serve stop)."""
    if not settings.DEBUG:
        return []
    public = [h for h in settings.ALLOWED_HOSTS if not is_loopback_host(h)]
    if not public:
        return []
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        return [
            Error(
                f"DJANGO_DEBUG is on with the built-in development secret key, and ALLOWED_HOSTS "
                f"{public} lets other machines in: anyone could forge sessions and read tracebacks.",
                hint="Unset DJANGO_DEBUG (it defaults to off), or keep DJANGO_ALLOWED_HOSTS to "
                "localhost/127.0.0.1 for development.",
                id="dedup.E010",
            )
        ]
    return [
        Warning(
            f"DJANGO_DEBUG is on and ALLOWED_HOSTS {public} lets other machines in: error pages "
            "show tracebacks and settings to them.",
            hint="Unset DJANGO_DEBUG in production (it defaults to off).",
            id="dedup.W010",
        )
    ]
