"""Tiny typed readers for settings that come from environment variables."""

import os
import secrets
import tempfile
from pathlib import Path


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_auto_int(name: str) -> int:
    """An int, or 0 for "auto" (also when unset or empty): the code then chooses."""
    value = (os.environ.get(name) or "").strip().lower()
    return 0 if value in ("", "auto") else int(value)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name: str, default: list[str] | None = None, sep: str = ",") -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return list(default or [])
    return [item.strip() for item in value.split(sep) if item.strip()]


def persistent_secret(path: Path) -> str:
    """A random secret kept in `path` (mode 0600), made on first use.

    Every process that reads settings (the web server, each worker cluster) calls this at start,
    possibly at the same moment: the secret is written to a private temporary file and linked into
    place, which fails if another process won, so all of them end up with the same one."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()
