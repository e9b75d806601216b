"""docker-compose.yml is only written, never started here (no Docker): it is held to what
`make deploy-check` does start and check (lib/topology.py, scripts/deploy_check.py)."""

import re
from pathlib import Path

import yaml

from lib import portable_pgvector, topology

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_web_and_workers_run_the_deploy_checks_commands_in_exec_form():
    web = SERVICES["web"]["command"]
    assert web[:1] == ["python"] and web[1 : 1 + len(topology.GUNICORN)] == topology.GUNICORN
    assert web[-1] == topology.WSGI_APP and web[-3:-1] == ["--bind", "0.0.0.0:8000"]
    assert SERVICES["worker"]["command"] == ["python", *topology.QCLUSTER]
    assert SERVICES["worker"]["deploy"]["replicas"] == 2  # two clusters, as in the check
    migrate = " ".join(SERVICES["migrate"]["command"])
    for step in ("migrate --noinput", "createcachetable", "collectstatic --noinput"):
        assert step in migrate
    assert "runserver" not in (ROOT / "docker-compose.yml").read_text() + (ROOT / "Dockerfile").read_text()


def test_the_settings_are_the_deploy_checks():
    env = SERVICES["web"]["environment"]
    assert env["ASTRADUP_ACCEL_REDIRECT"] == topology.ACCEL_PREFIX
    assert env["ASTRADUP_REDIS_URL"].startswith("redis://redis:")
    assert env["DATABASE_URL"].startswith("postgres://") and env["DJANGO_BEHIND_PROXY"] == "1"
    assert env["DJANGO_DEBUG"] == "0" and env["PROMETHEUS_MULTIPROC_DIR"]
    script = (ROOT / "scripts" / "deploy_check.py").read_text()
    for name in env:
        if name.startswith("ASTRADUP_") or name.startswith("DJANGO_BEHIND"):
            assert f'"{name}"' in script, f"{name} is set in compose but not in the deploy check"
    # the import API accepts the mounted folder
    assert env["ASTRADUP_IMPORT_ROOTS"] == "/videos"
    for name in ("web", "worker", "nginx"):
        assert any(v.startswith("./videos:/videos") for v in SERVICES[name]["volumes"])


def test_nginx_gets_the_deploy_checks_config():
    conf = (ROOT / "deploy" / "nginx.compose.conf").read_text()
    assert conf.split("\n", 1)[1] == topology.nginx_config(**topology.COMPOSE_NGINX), (
        "deploy/nginx.compose.conf is out of date: render it again from deploy/nginx.conf.in"
    )
    assert "./deploy/nginx.compose.conf:/etc/nginx/nginx.conf:ro" in SERVICES["nginx"]["volumes"]
    assert "appdata:/data:ro" in SERVICES["nginx"]["volumes"]  # thumbnails are sent from /data


def test_start_order_health_restart_and_users():
    for name in ("db", "redis", "web"):
        assert SERVICES[name]["healthcheck"]["test"]
    assert SERVICES["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert SERVICES[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert SERVICES[name]["user"] != "root" and SERVICES[name]["restart"] == "unless-stopped"
    assert SERVICES["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert "USER 10001" in (ROOT / "Dockerfile").read_text()


def test_the_pgvector_image_is_pinned_to_a_safe_release():
    tag = re.fullmatch(r"pgvector/pgvector:(\d+\.\d+\.\d+)-pg(\d+)", SERVICES["db"]["image"])
    assert tag, SERVICES["db"]["image"]
    assert portable_pgvector.version_key(tag.group(1)) >= portable_pgvector.version_key(
        portable_pgvector.SAFE_HNSW_VACUUM
    )


def test_the_build_context_leaves_out_data_and_environments():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".venv", "var/", "videos/", ".git", ".env"):
        assert path in ignored
