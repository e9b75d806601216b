import os
import subprocess
import sys
from pathlib import Path

import pytest


def _env(**changes: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {**env, **changes}


def test_check_deploy_passes_with_production_settings():
    env = _env(
        **{
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "x" * 60 + "-not-a-real-secret-but-long-and-varied-9f8e7d6c5b4a",
            "DJANGO_ALLOWED_HOSTS": "astradup.example.org",
            "DJANGO_HTTPS": "1",
        }
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "command", [["migrate"], ["serve", "127.0.0.1:1"]], ids=["migrate", "make run's serve"]
)
def test_an_unusable_database_url_stops_migrate_with_a_clear_message(command):
    env = _env(DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "dedup.E004" in result.stderr and "Cannot connect" in result.stderr


def test_an_unknown_decode_device_stops_the_app_at_its_checks():
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=root,
        env=_env(ASTRADUP_DECODE_DEVICE="nvdec"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "dedup.E007" in result.stderr
