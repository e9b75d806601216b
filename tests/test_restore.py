"""Backups: a pg_dump of the library restores with the same videos, frames, pairs, verdicts,
decisions and config history, pgvector included. Runs the commands docs/operations.md gives
("Backup and restore"), with the pg_dump and pg_restore of the embedded server's own build,
against the test database on that server."""

import subprocess
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from dedup.models import ScoringConfig, Verdict
from lib.portable_pgvector import pginstall
from review.models import Decision

from . import factories as make

# committed rows: pg_dump reads them from another connection
pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
PGBIN = pginstall() / "bin"
# what a backup must bring back, compared row by row (each row as PostgreSQL's text of it)
TABLES = [
    "dedup_video",
    "dedup_frame",
    "dedup_pair",
    "dedup_verdict",
    "dedup_scoringconfig",
    "dedup_configactivation",
    "review_decision",
    "auth_user",
]


def _library() -> None:
    """Videos with frames (vectors), pairs, a verdict and the decisions behind it, and a second
    config version activated by a person."""
    moderator = make.user("mo", "moderator")
    a, b, c = make.videos(3, status="ready", duration=6.0, sha256="0" * 64)
    for v in (a, b, c):
        make.frames(v, 4)
    near = make.pair(a, b, "near_duplicate", 0.91)
    make.pair(b, c, "similar", 0.74)
    Verdict.objects.create(video_a=a, video_b=b, kind="duplicate", canonical=a, decided_by=moderator)
    Decision.objects.create(
        pair=near, video_a=a, video_b=b, action="confirm", canonical=a, user=moderator, pair_score=0.91
    )
    Decision.objects.create(
        pair=near, video_a=a, video_b=b, action="skip", user=moderator, undone_at=timezone.now()
    )
    from dedup.services import config_activate

    ScoringConfig.active()
    config_activate(
        config=ScoringConfig.objects.create(name="strict"), via="admin", user=moderator, rescore="none"
    )


def _rows(cursor) -> dict[str, list[str]]:
    rows = {}
    for table in TABLES:
        cursor.execute(f"SELECT t::text FROM {table} t ORDER BY id")
        rows[table] = [r[0] for r in cursor.fetchall()]
    return rows


def _url(name: str) -> str:
    """DATABASE_URL of a database on the test server (a Unix socket)."""
    host = connection.settings_dict["HOST"]
    return f"postgresql://{connection.settings_dict['USER']}@/{name}?host={host}"


def _run(*args: str, stdout=None) -> None:
    done = subprocess.run(args, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 0, f"{args[0]}: {done.stderr}"


@pytest.fixture
def restored_name():
    name = "astradup_restored_test"
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_dump_restores_into_a_fresh_database_with_the_same_library(tmp_path, restored_name):
    _library()
    with connection.cursor() as cursor:
        before = _rows(cursor)
    assert [len(before[t]) for t in ("dedup_video", "dedup_frame", "dedup_pair", "review_decision")] == [
        3,
        12,
        2,
        2,
    ]
    dump = tmp_path / "astradup.dump"
    host = connection.settings_dict["HOST"]

    # docs/operations.md, "With an external PostgreSQL" (DATABASE_URL: the test database)
    with dump.open("wb") as out:
        _run(str(PGBIN / "pg_dump"), "-Fc", _url(connection.settings_dict["NAME"]), stdout=out)
    _run(str(PGBIN / "createdb"), "-h", host, "-U", "postgres", restored_name)
    _run(str(PGBIN / "pg_restore"), "--no-owner", "-d", _url(restored_name), str(dump))

    with psycopg.connect(_url(restored_name)) as restored, restored.cursor() as cursor:
        assert _rows(cursor) == before
        # pgvector came along: the extension, the vector columns and their nearest-neighbour indexes
        cursor.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() == (1,)
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'dedup_frame' AND indexdef LIKE '%hnsw%'"
        )
        assert cursor.fetchone()[0] >= 1
        cursor.execute(
            "SELECT count(*) FROM dedup_frame f, dedup_frame g WHERE g.id = (SELECT min(id) FROM dedup_frame) "
            "AND f.embedding <-> g.embedding < 1"
        )
        assert cursor.fetchone() == (12,)
        cursor.execute("SELECT name FROM django_migrations WHERE app = 'dedup' ORDER BY id DESC LIMIT 1")
        assert cursor.fetchone()[0].startswith("00")  # `manage.py migrate` takes it from there


def test_the_embedded_restore_over_the_running_database_brings_the_dump_back(tmp_path):
    _library()
    with connection.cursor() as cursor:
        before = _rows(cursor)
    dump = tmp_path / "astradup.dump"
    host, name = connection.settings_dict["HOST"], connection.settings_dict["NAME"]

    # docs/operations.md, "With the embedded database" (-h: the server's socket folder, var/pg)
    with dump.open("wb") as out:
        _run(str(PGBIN / "pg_dump"), "-h", host, "-U", "postgres", "-Fc", name, stdout=out)
    Decision.objects.all().delete()  # what the backup is for
    Verdict.objects.all().delete()
    make.video("after-the-dump.mp4")
    connection.close()  # --clean drops the tables: no session of ours in the way
    _run(
        str(PGBIN / "pg_restore"),
        "-h",
        host,
        "-U",
        "postgres",
        "--no-owner",
        "--clean",
        "--if-exists",
        "-d",
        name,
        str(dump),
    )

    with connection.cursor() as cursor:
        assert _rows(cursor) == before


def test_the_documented_commands_are_the_ones_tested():
    """The tests above run these lines of docs/operations.md, with the test server's socket folder
    for the host and its superuser for astradup."""
    docs = (ROOT / "docs/operations.md").read_text()
    for line in (
        'pg_dump -Fc "$DATABASE_URL" > astradup-$(date +%F).dump',
        "createdb -h db-host -U astradup astradup_restored",
        "pg_restore --no-owner -d postgres://astradup@db-host/astradup_restored astradup-",
        '$PGBIN/pg_dump -h "$PGSOCKET" -U postgres -Fc astradup > astradup.dump',
        '$PGBIN/pg_restore -h "$PGSOCKET" -U postgres --no-owner --clean --if-exists -d astradup astradup.dump',
    ):
        assert line in docs, line
