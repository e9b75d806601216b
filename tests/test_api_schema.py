"""The served OpenAPI schema says what the API does, checked by reading it and by Schemathesis
fuzzing a real running server against it."""

import json
import os
import subprocess
import sys

import pytest
from django.core.cache import cache
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle

from dedup.api import ExportRowOut
from dedup.exports import COLUMNS
from dedup.models import DuplicateGroup, ScoringConfig, Video

from . import factories as make

pytestmark = pytest.mark.django_db

OPERATIONS = [
    ("/api/v1/import", "post"),
    ("/api/v1/uploads", "post"),
    ("/api/v1/videos", "get"),
    ("/api/v1/videos/{video_id}", "get"),
    ("/api/v1/pairs", "get"),
    ("/api/v1/pairs/{pair_id}", "get"),
    ("/api/v1/pairs/{pair_id}/decision", "post"),
    ("/api/v1/groups", "get"),
    ("/api/v1/groups/{group_id}", "get"),
    ("/api/v1/export", "get"),
    ("/api/v1/jobs/{job_id}", "get"),
]


def _token(role: str) -> str:
    return Token.objects.create(user=make.user(f"{role}-api", role)).key


def _library() -> dict:
    """A few videos with real pairs and a group, one of them named like a spreadsheet formula."""
    config = ScoringConfig.active()
    a, b, c = (
        make.video(name, status="ready", width=640, height=360)
        for name in ("a.mp4", "b.mp4", '=HYPERLINK("http:__evil","x").mp4')
    )
    pair = make.pair(
        a,
        b,
        visual=0.92,
        audio=0.8,
        metadata=1.0,
        config=config,
        breakdown={"matched_frames": 9},
        segments={"a": [[0, 9]], "b": [[0.5, 9.5]], "coverage_a": 1.0, "offset": -0.5, "speed": 1.0},
    )
    make.pair(b, c, "different", 0.3, config=config)
    group = DuplicateGroup.objects.create(suggested_keep=a)
    Video.objects.filter(pk__in=[a.pk, b.pk]).update(group=group)
    return {"a": a, "b": b, "c": c, "pair": pair, "group": group}


@pytest.fixture
def served_schema() -> dict:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {_token('viewer')}")
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def _response(schema: dict, path: str, method: str, code: int) -> dict:
    return schema["paths"][path][method]["responses"][str(code)]


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_the_served_schema_is_valid_openapi_3(served_schema):
    assert served_schema["openapi"].startswith("3.")
    validate_schema(served_schema)  # raises on anything the OpenAPI 3 JSON schema refuses


@pytest.mark.parametrize("path", ["/api/v1/videos", "/api/v1/pairs", "/api/v1/groups"])
def test_list_endpoints_are_documented_as_the_pages_they_answer(served_schema, path):
    body = _resolve(
        served_schema, _response(served_schema, path, "get", 200)["content"]["application/json"]["schema"]
    )
    assert body["type"] == "object" and {"count", "next", "previous", "results"} <= set(body["properties"])
    assert body["properties"]["results"]["type"] == "array"
    params = {p["name"] for p in served_schema["paths"][path]["get"]["parameters"]}
    assert "page" in params


def test_export_documents_csv_and_json_bodies(served_schema):
    content = _response(served_schema, "/api/v1/export", "get", 200)["content"]
    assert content["text/csv"]["schema"]["type"] == "string"
    rows = content["application/json"]["schema"]
    assert rows["type"] == "array"
    assert list(_resolve(served_schema, rows["items"])["properties"]) == COLUMNS


def test_export_row_out_documents_every_export_column():
    assert list(ExportRowOut().fields) == COLUMNS


def test_the_upload_is_a_binary_file_part(served_schema):
    content = served_schema["paths"]["/api/v1/uploads"]["post"]["requestBody"]["content"]
    file_field = _resolve(served_schema, content["multipart/form-data"]["schema"])["properties"]["file"]
    assert file_field == {"type": "string", "format": "binary"}


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_every_operation_documents_its_error_answers(served_schema, path, method):
    codes = set(served_schema["paths"][path][method]["responses"])
    assert {"401", "403", "429"} <= codes
    if "{" in path or path in ("/api/v1/videos", "/api/v1/pairs", "/api/v1/groups"):
        assert "404" in codes  # no such object, or a page past the last
    if method == "post" or path in ("/api/v1/pairs", "/api/v1/export"):
        assert "400" in codes
    for code in codes - {"200", "201"}:
        assert "application/json" in _response(served_schema, path, method, int(code))["content"]


def test_a_decision_documents_its_conflict_and_needs_canonical_only_to_merge(served_schema):
    operation = served_schema["paths"]["/api/v1/pairs/{pair_id}/decision"]["post"]
    assert {"400", "404", "409"} <= set(operation["responses"])
    assert operation["requestBody"]["required"] is True
    body = _resolve(served_schema, operation["requestBody"]["content"]["application/json"]["schema"])
    merge = next(
        _resolve(served_schema, option)
        for option in body["oneOf"]
        if "merge" in _resolve(served_schema, _resolve(served_schema, option)["properties"]["action"])["enum"]
    )
    assert set(merge["required"]) == {"action", "canonical"}


# ---------------------------------------------------------------- Schemathesis against a live server

# Examples per operation and phase: enough to reach every documented answer, few enough for a
# loaded two-core CI box (the whole run, stateful phase included, takes 1-1.5 min on one).
MAX_EXAMPLES = 15


def _schemathesis_config(path, *, pair_id: int) -> None:
    path.write_text(
        f"""
# every run starts afresh: no failures replayed from an earlier run, nothing written in the tree
[cache]
enabled = false

[generation]
database = "none"

# the defaults, and 413: a body too large to read is refused before it is validated
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

[[operations]]
# the one real pair, so decisions reach the service: 201, then 409 once it is decided
include-path = "/api/v1/pairs/{{pair_id}}/decision"
parameters = {{ pair_id = {pair_id} }}

[[operations]]
# Requests a schema cannot tell from good ones, refused with a 400: a merge naming a video
# outside the pair, an import path outside the import roots (or relative, or missing), an upload
# over ASTRADUP_UPLOAD_MAX_MB or empty.
include-path = ["/api/v1/pairs/{{pair_id}}/decision", "/api/v1/import", "/api/v1/uploads"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "409"]
"""
    )


@pytest.mark.slow
def test_the_api_answers_as_its_schema_says(live_server, settings, tmp_path, monkeypatch):
    """Schemathesis' CLI (its pytest loader does not run under pytest 9) fuzzes every operation of
    the served schema on a real server, writes included, with every check."""
    import_root = tmp_path / "import"
    import_root.mkdir()
    (import_root / "note.txt").write_text("not a video")
    # fuzzed imports and uploads stay inside this test's folders
    settings.ASTRADUP = {**settings.ASTRADUP, "IMPORT_ROOTS": [str(import_root)], "UPLOAD_MAX_MB": 1}
    settings.MEDIA_ROOT = tmp_path / "media"
    # the fuzzer's ~600 requests in a minute, wrong tokens among them ("ignored_auth"), must reach
    # the views: the rate limits have tests of their own (test_security_web.py)
    settings.ASTRADUP_TOKEN_FAILURE_LIMIT = 1_000_000
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "1000000/minute"})
    library = _library()
    token = _token("moderator")
    config = tmp_path / "schemathesis.toml"
    _schemathesis_config(config, pair_id=library["pair"].pk)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{live_server.url}/api/schema/?format=json",
            "--header",
            f"Authorization: Token {token}",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--seed",
            "24",
            "--request-timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
    )
    cache.clear()  # the wrong tokens it counted: not a live server's test after this one to inherit
    log = tmp_path / "schemathesis.txt"
    log.write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"{log} in full; its end:\n{run.stdout[-20000:]}{run.stderr[-5000:]}"
