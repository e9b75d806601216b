import pytest

from . import factories as make

pytestmark = pytest.mark.django_db


def test_the_library_page_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_library_lists_videos_with_status(client, moderator):
    make.video("a.mp4", status="failed", error="file is empty (0 bytes)")
    client.force_login(moderator)
    response = client.get("/")
    assert response.status_code == 200
    assert b"a.mp4" in response.content and b"file is empty" in response.content
    assert b"failed 1" in response.content


def test_search_filters_by_file_name(client, moderator):
    make.video("cat.mp4")
    make.video("dog.mp4")
    client.force_login(moderator)
    content = client.get("/?q=cat").content
    assert b"cat.mp4" in content and b"dog.mp4" not in content


def test_health_reports_database_and_queue_to_users_with_a_role(client, moderator):
    client.force_login(moderator)
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok" and body["pgvector"].startswith("0.8")
    assert "queued_tasks" in body and "workers" in body


def test_users_without_a_role_cannot_see_the_library(client, db):
    client.force_login(make.user("stranger"))
    assert client.get("/").status_code == 403


@pytest.mark.parametrize("role", ["viewer", "moderator", "admin"])
def test_every_role_sees_the_library(client, db, role):
    client.force_login(make.user(role, role))
    assert client.get("/").status_code == 200
