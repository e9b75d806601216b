"""Dependencies run one way: review uses dedup, dedup never uses review; the extractors and the
matching maths use no Django, so they can be tested and benchmarked without a database. Read from
the source (ast), so a lazy import inside a function counts as much as one at the top."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved to absolute names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            # `from . import services` imports a module too
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def outside(names: set[str], *prefixes: str) -> set[str]:
    return {n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)}


def test_the_import_reader_sees_relative_and_lazy_imports():
    assert "dedup.services.groups" in imported(ROOT / "dedup/exports.py")
    assert "dedup.access" in imported(ROOT / "dedup/security.py")  # inside a function
    assert "review.services" in imported(ROOT / "review/views.py")


@pytest.mark.parametrize("path", modules("dedup"), ids=lambda p: str(p.relative_to(ROOT)))
def test_dedup_never_imports_review(path):
    assert not outside(imported(path), "review")


@pytest.mark.parametrize(
    "path", [*modules("dedup"), *modules("review")], ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_product_never_imports_the_benchmarks(path):
    # the bench app is installed only on request (ASTRADUP_BENCH): the product must run without it
    assert not outside(imported(path), "bench")


@pytest.mark.parametrize(
    "path", [*modules("dedup/features"), *modules("dedup/matching")], ids=lambda p: str(p.relative_to(ROOT))
)
def test_extractors_and_matching_import_no_django(path):
    names = imported(path)
    assert not outside(names, "django", "rest_framework", "review")
    # nor the rest of dedup (its models and services are Django)
    assert not {n for n in outside(names, "dedup") if not outside({n}, "dedup.features", "dedup.matching")}
