"""REST API v1: every endpoint, every role, validation errors as 400s."""

import json
import shutil

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from dedup.models import DuplicateGroup, ScoringConfig, Verdict, Video
from review.models import Decision

from . import factories as make

pytestmark = pytest.mark.django_db


def _client(role: str | None) -> APIClient:
    client = APIClient()
    if role is None:
        return client
    person = make.user(role, None if role == "outsider" else role)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=person).key}")
    return client


@pytest.fixture
def data():
    config = ScoringConfig.active()
    a = make.video("a.mp4", status="ready", width=1280, height=720)
    b = make.video("b.mp4", status="ready", width=640, height=360)
    c = make.video("c.mp4", status="failed", error="file is empty")
    near = make.pair(
        a,
        b,
        score=0.88,
        config=config,
        breakdown={"matched_frames": 9},
        segments={"a": [[0, 9]], "b": [[0, 9]]},
    )
    group = DuplicateGroup.objects.create(suggested_keep=a)
    Video.objects.filter(pk__in=[a.pk, b.pk]).update(group=group)
    return {"a": a, "b": b, "c": c, "pair": near, "group": group}


READS = ["/api/v1/videos", "/api/v1/pairs", "/api/v1/groups", "/api/v1/export"]


@pytest.mark.parametrize("url", READS + ["/api/schema/"])
def test_anonymous_requests_are_refused(data, url):
    assert _client(None).get(url).status_code in (401, 403)


@pytest.mark.parametrize("url", READS)
def test_outsiders_are_forbidden(data, url):
    assert _client("outsider").get(url).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "moderator", "admin"])
def test_every_role_reads(data, role):
    client = _client(role)
    videos = client.get("/api/v1/videos").json()
    assert videos["count"] == 3 and {v["rel_path"] for v in videos["results"]} == {"a.mp4", "b.mp4", "c.mp4"}
    assert client.get(f"/api/v1/videos/{data['c'].pk}").json()["error"] == "file is empty"
    assert client.get("/api/v1/videos?status=failed").json()["count"] == 1
    pair = client.get(f"/api/v1/pairs/{data['pair'].pk}").json()
    assert (
        pair["label"] == "near_duplicate"
        and pair["segments"]["a"] == [[0, 9]]
        and pair["breakdown"]["matched_frames"] == 9
    )
    assert client.get("/api/v1/pairs?label=near_duplicate&min_score=0.8").json()["count"] == 1
    assert client.get("/api/v1/pairs?min_score=0.9").json()["count"] == 0
    group = client.get(f"/api/v1/groups/{data['group'].pk}").json()
    assert sorted(group["members"]) == sorted([data["a"].pk, data["b"].pk])


def test_bad_filters_are_400_with_field_messages(data):
    response = _client("viewer").get("/api/v1/pairs?min_score=lots&label=nope")
    assert response.status_code == 400 and {"min_score", "label"} <= set(response.json())


def test_pagination(data):
    for i in range(60):
        make.video(f"x{i}.mp4")
    page = _client("viewer").get("/api/v1/videos").json()
    assert page["count"] == 63 and len(page["results"]) == 50 and page["next"]


def test_export_as_csv_and_json(data):
    client = _client("viewer")
    csv_text = client.get("/api/v1/export").content.decode()
    assert csv_text.splitlines()[0].startswith("a,b,score,label")
    rows = json.loads(client.get("/api/v1/export?as=json").content)
    assert rows[0]["label"] == "near_duplicate"
    assert client.get("/api/v1/export?as=xml").status_code == 400


def test_viewers_cannot_import_or_decide(data, tmp_path):
    client = _client("viewer")
    assert client.post("/api/v1/import", {"paths": [str(tmp_path)]}, format="json").status_code == 403
    assert (
        client.post(
            f"/api/v1/pairs/{data['pair'].pk}/decision", {"action": "confirm"}, format="json"
        ).status_code
        == 403
    )


def test_decisions_follow_the_review_rules(data):
    moderator, admin = _client("moderator"), _client("admin")
    url = f"/api/v1/pairs/{data['pair'].pk}/decision"
    assert moderator.post(url, {"action": "launch"}, format="json").status_code == 400
    no_copy = moderator.post(url, {"action": "merge"}, format="json")  # a validation error, as documented
    assert no_copy.status_code == 400 and "canonical" in no_copy.json()
    made = moderator.post(url, {"action": "merge", "canonical": data["a"].pk}, format="json")
    assert made.status_code == 201 and made.json()["action"] == "merge"
    again = admin.post(url, {"action": "not_duplicate"}, format="json")
    assert again.status_code == 409 and "already decided by moderator" in again.json()["detail"]
    assert Verdict.objects.count() == 1 and Decision.objects.count() == 1
    assert DuplicateGroup.objects.get(videos=data["a"]).canonical == data["a"]


def test_import_is_limited_to_the_import_roots(settings, tmp_path, clip):
    root = tmp_path / "import"
    root.mkdir()
    shutil.copy(clip, root / "one.mp4")
    settings.ASTRADUP = {**settings.ASTRADUP, "IMPORT_ROOTS": [str(root)]}
    client = _client("moderator")
    outside = client.post("/api/v1/import", {"paths": [str(clip)]}, format="json")
    assert outside.status_code == 400 and "outside the import roots" in outside.json()["paths"][0]
    sneaky = client.post("/api/v1/import", {"paths": [f"{root}/../{clip.name}"]}, format="json")
    assert sneaky.status_code == 400 and "'..'" in sneaky.json()["paths"][0]
    assert client.post("/api/v1/import", {"paths": "not a list"}, format="json").status_code == 400
    first = client.post("/api/v1/import", {"paths": [str(root)]}, format="json")
    assert first.status_code == 201 and len(first.json()["created"]) == 1
    second = client.post("/api/v1/import", {"paths": [str(root / "one.mp4")]}, format="json")
    body = second.json()
    assert {k: body[k] for k in ("created", "existing", "identical", "skipped")} == {
        "created": [],
        "existing": 1,
        "identical": 0,
        "skipped": [],
    }
    assert body["job_url"].endswith(f"/api/v1/jobs/{body['job']}")  # the job that follows the import
    assert Video.objects.count() == 1


def test_uploads_are_stored_and_ingested_within_the_size_limit(settings, tmp_path, clip):
    settings.MEDIA_ROOT = tmp_path / "media"
    client = _client("moderator")
    upload = SimpleUploadedFile("holiday.mp4", clip.read_bytes(), content_type="video/mp4")
    response = client.post("/api/v1/uploads", {"file": upload}, format="multipart")
    assert response.status_code == 201
    video = Video.objects.get(pk=response.json()["created"][0])
    assert video.file_name == "holiday.mp4" and (tmp_path / "media" / "uploads" / "holiday.mp4").exists()
    settings.ASTRADUP = {**settings.ASTRADUP, "UPLOAD_MAX_MB": 0}
    big = SimpleUploadedFile("big.mp4", clip.read_bytes(), content_type="video/mp4")
    refused = client.post("/api/v1/uploads", {"file": big}, format="multipart")
    assert refused.status_code == 400 and "larger than" in refused.json()["file"][0]
    assert client.post("/api/v1/uploads", {}, format="multipart").status_code == 400


def test_the_schema_and_its_doc_page_are_served_to_users(data, client):
    api = _client("viewer")
    schema = api.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/pairs/{pair_id}/decision" in schema.content
    user = User.objects.get(username="viewer")
    client.force_login(user)
    page = client.get("/api/docs/")
    assert page.status_code == 200 and b"swagger" in page.content.lower()


def test_a_decision_on_a_pair_that_does_not_exist_is_404(data):
    gone = data["pair"].pk + 1000
    response = _client("moderator").post(
        f"/api/v1/pairs/{gone}/decision", {"action": "confirm"}, format="json"
    )
    assert response.status_code == 404 and "no longer exists" in response.json()["detail"]
    assert Decision.objects.count() == 0


def test_a_merge_keeping_a_video_outside_the_pair_is_400(data):
    url = f"/api/v1/pairs/{data['pair'].pk}/decision"
    response = _client("moderator").post(url, {"action": "merge", "canonical": data["c"].pk}, format="json")
    assert response.status_code == 400 and "choose which" in response.json()["canonical"][0]
    assert Decision.objects.count() == 0


def test_a_blank_filter_is_400_not_ignored(data):
    response = _client("viewer").get("/api/v1/pairs?label=&min_score=")
    assert response.status_code == 400 and {"label", "min_score"} <= set(response.json())


@pytest.mark.parametrize(
    "url", ["/api/v1/videos/abc", "/api/v1/pairs/-1", "/api/v1/groups/null", "/api/v1/nothing"]
)
def test_an_api_url_that_names_nothing_is_a_json_404(data, url):
    response = _client("viewer").get(url)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_an_oversized_body_is_a_json_413(data, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = _client("moderator").post("/api/v1/import", {"paths": ["/x" * 1000]}, format="json")
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert "too large" in response.json()["detail"]


def test_the_api_export_escapes_formula_cells(data):
    Video.objects.filter(pk=data["a"].pk).update(rel_path="=cmd.mp4")
    client = _client("viewer")
    csv_text = client.get("/api/v1/export?as=csv").content.decode()
    assert "'=cmd.mp4" in csv_text and ",=cmd.mp4" not in csv_text
    assert json.loads(client.get("/api/v1/export?as=json").content)[0]["a"] == "=cmd.mp4"
