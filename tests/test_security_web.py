"""Safe defaults on the web side: DEBUG off and a kept secret key, login lockout, the wrong-token
limiter and API throttles, the Content-Security-Policy, Secure cookies over HTTPS, and /health."""

import json
import os
import re
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from . import factories as make

ROOT = Path(__file__).resolve().parent.parent
# settings are read without a database: a URL nothing listens on (only `migrate` would connect)
NO_DATABASE = "postgres://nobody@127.0.0.1:1/none"


def _env(tmp_path: Path, **changes: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "ASTRADUP_")) or k == "ASTRADUP_LOG_LEVEL"
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return {**env, "ASTRADUP_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": NO_DATABASE, **changes}


def _manage(env: dict, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_SETTINGS = (
    "import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k) for k in "
    "['DEBUG', 'SECRET_KEY', 'DEV_SECRET_KEY', 'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', "
    "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS']}))"
)


def _settings(env: dict) -> dict:
    result = _manage(env, "shell", "-c", _SETTINGS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- defect 7: DEBUG, the secret key, HTTPS settings, serve


def test_with_no_configuration_debug_is_off_and_a_secret_key_is_made_once_and_kept(tmp_path):
    env = _env(tmp_path)
    first = _settings(env)
    assert first["DEBUG"] is False
    assert first["SECRET_KEY"] != first["DEV_SECRET_KEY"] and len(first["SECRET_KEY"]) >= 50
    key_file = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _settings(env)["SECRET_KEY"] == first["SECRET_KEY"]  # the next start (and the workers) agree
    # plain http on 127.0.0.1 keeps working: no redirect to https, no HSTS, no Secure-only cookies
    assert first["SECURE_SSL_REDIRECT"] is False and first["SECURE_HSTS_SECONDS"] == 0
    assert first["SESSION_COOKIE_SECURE"] is False


def test_the_development_key_is_used_only_when_debug_is_turned_on(tmp_path):
    values = _settings(_env(tmp_path, DJANGO_DEBUG="1"))
    assert values["DEBUG"] is True and values["SECRET_KEY"] == values["DEV_SECRET_KEY"]
    assert not (tmp_path / "data" / "secret_key").exists()


def test_django_https_turns_on_redirects_hsts_and_secure_cookies(tmp_path):
    values = _settings(_env(tmp_path, DJANGO_HTTPS="1"))
    assert values["SECURE_SSL_REDIRECT"] and values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]


def test_debug_with_the_development_key_for_other_hosts_stops_at_the_checks(tmp_path):
    result = _manage(_env(tmp_path, DJANGO_DEBUG="1", DJANGO_ALLOWED_HOSTS="*"), "check")
    assert result.returncode != 0 and "dedup.E010" in result.stderr
    # the same on loopback only is development, and passes
    assert _manage(_env(tmp_path, DJANGO_DEBUG="1"), "check").returncode == 0


@pytest.mark.parametrize("address", ["0.0.0.0:8000", "192.0.2.1:8000", "[::]:8000"])
def test_serve_refuses_a_public_address_with_debug_on(tmp_path, address):
    result = _manage(_env(tmp_path, DJANGO_DEBUG="1"), "serve", address)
    assert result.returncode != 0 and "Refusing to serve" in result.stderr, result.stderr


@pytest.mark.slow
def test_serve_with_debug_off_serves_static_files_pages_and_health(tmp_path):
    from .test_serve import _serve, _stop

    server, env, workers = _serve(tmp_path)
    try:
        port = server.args[-1].rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/static/astradup.css", timeout=10) as r:
            assert r.status == 200 and b".timeline" in r.read()
        with urllib.request.urlopen(f"{base}/accounts/login/", timeout=10) as r:
            assert r.status == 200 and b"Log in" in r.read()
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        with urllib.request.urlopen(f"{base}/health", timeout=10) as r:
            assert r.status == 200 and json.loads(r.read()) == {"status": "ok"}
        # DEBUG is off: a missing page says so, without Django's technical page (URLconf, settings)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/no-such-page", timeout=10)
        assert missing.value.code == 404 and b"URLconf" not in missing.value.read()
    finally:
        server.terminate()
        server.wait(timeout=60)
        _stop(server, workers, tmp_path)


# --- defect 13: the cache table comes with the migrations


@pytest.mark.slow
def test_a_freshly_migrated_database_has_a_working_cache_and_health_without_createcachetable(tmp_path):
    env = _env(
        tmp_path, DJANGO_ALLOWED_HOSTS="testserver", ASTRADUP_METRICS_TOKEN="m3trics", ASTRADUP_Q_WORKERS="1"
    )
    del env["DATABASE_URL"]  # a fresh embedded database
    try:
        assert _manage(env, "migrate", "-v0", timeout=300).returncode == 0
        script = (
            "from django.core.cache import cache; from django.test import Client; "
            "cache.set('probe', 42); assert cache.get('probe') == 42; "
            "r = Client().get('/health', HTTP_AUTHORIZATION='Bearer m3trics'); "
            "print(r.status_code, r.content.decode())"
        )
        result = _manage(env, "shell", "-c", script)
        assert result.returncode == 0, result.stderr
        status, body = result.stdout.strip().splitlines()[-1].split(" ", 1)
        assert status == "200" and "workers" in json.loads(body)
    finally:
        from .test_serve import _stop_database

        _stop_database(tmp_path)


# --- defect 9: lockout, tokens, throttles, CSP, cookies


def _user(name: str, role: str | None = None) -> User:
    return make.user(name, role, password="right-password-1")


@pytest.mark.django_db
def test_the_login_form_locks_an_address_out_after_repeated_wrong_passwords(client, settings):
    _user("maria", "moderator")
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [
        client.post("/accounts/login/", {"username": "maria", "password": f"wrong-{i}"}).status_code
        for i in range(30)
    ]
    assert statuses[: limit - 1] == [200] * (limit - 1)  # the form again, with its error
    assert set(statuses[limit:]) == {429}
    locked = client.post("/accounts/login/", {"username": "maria", "password": "right-password-1"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0  # even the right password
    assert b"Too many failed logins" in locked.content
    # another address is not locked out
    other = client.post(
        "/accounts/login/", {"username": "maria", "password": "right-password-1"}, REMOTE_ADDR="192.0.2.7"
    )
    assert other.status_code == 302


@pytest.mark.django_db
def test_the_test_clients_login_still_works_with_the_lockout_backend(client):
    _user("maria", "moderator")
    assert client.login(username="maria", password="right-password-1")
    assert not client.login(username="maria", password="wrong")


@pytest.mark.django_db
def test_wrong_api_tokens_get_429_with_retry_after_per_address(client, settings):
    token = Token.objects.create(user=_user("robot", "viewer")).key
    limit = settings.ASTRADUP_TOKEN_FAILURE_LIMIT
    statuses = [
        client.get("/api/v1/videos", HTTP_AUTHORIZATION=f"Token wrong{i:036d}").status_code
        for i in range(limit + 5)
    ]
    assert statuses[:limit] == [401] * limit and set(statuses[limit:]) == {429}
    locked = client.get("/api/v1/videos", HTTP_AUTHORIZATION=f"Token {token}")
    assert (
        locked.status_code == 429
        and 0 < int(locked["Retry-After"]) <= settings.ASTRADUP_TOKEN_LOCKOUT_SECONDS
    )
    elsewhere = client.get("/api/v1/videos", HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="192.0.2.7")
    assert elsewhere.status_code == 200


@pytest.mark.django_db
def test_authenticated_api_use_is_throttled(client, monkeypatch):
    from rest_framework.throttling import UserRateThrottle

    # the configured rate is generous (1200/minute); a small one shows the throttle is in place
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    token = Token.objects.create(user=_user("robot", "viewer")).key
    statuses = [
        client.get("/api/v1/videos", HTTP_AUTHORIZATION=f"Token {token}").status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in policy


COMMENT = re.compile(r"{#.*?#}|{% comment %}.*?{% endcomment %}", re.S)
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle=", re.I), "style attribute"),
    (re.compile(r"\shx-on", re.I), "hx-on attribute"),
    (re.compile(r"\son[a-z]+=", re.I), "event handler attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_templates_have_no_inline_script_or_style_the_policy_would_block():
    found = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for pattern, what in INLINE
        if pattern.search(COMMENT.sub("", path.read_text()))
    ]
    assert not found


@pytest.mark.django_db
def test_session_and_csrf_cookies_are_secure_over_https(client, settings):
    _user("maria", "moderator")
    login = {"username": "maria", "password": "right-password-1"}
    plain = client.post("/accounts/login/", login)
    assert plain.status_code == 302 and not plain.cookies["sessionid"]["secure"]  # make run: plain http
    client.logout()
    direct = client.post("/accounts/login/", login, secure=True)
    assert direct.cookies["sessionid"]["secure"]
    client.logout()
    # behind a TLS proxy declared with DJANGO_BEHIND_PROXY
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = client.post("/accounts/login/", login, HTTP_X_FORWARDED_PROTO="https")
    assert proxied.cookies["sessionid"]["secure"]
    page = client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert page.status_code == 200


@pytest.mark.django_db
def test_behind_a_proxy_failures_count_against_the_forwarded_client(client, settings):
    settings.ASTRADUP_BEHIND_PROXY = True
    _user("maria", "moderator")
    for i in range(settings.AXES_FAILURE_LIMIT + 1):
        client.post(
            "/accounts/login/",
            {"username": "maria", "password": f"wrong-{i}"},
            HTTP_X_FORWARDED_FOR="10.9.9.9, 198.51.100.1",  # the first is the client's claim
        )
    # the proxy's own address (REMOTE_ADDR) and another client behind it are not locked out
    other = client.post(
        "/accounts/login/",
        {"username": "maria", "password": "right-password-1"},
        HTTP_X_FORWARDED_FOR="10.9.9.9, 198.51.100.2",
    )
    assert other.status_code == 302


# --- defect 12 (part): /health


@pytest.mark.django_db
def test_health_tells_anonymous_callers_only_that_it_is_alive(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_health_details_are_for_users_with_a_role_or_the_metrics_token(client, settings):
    settings.ASTRADUP_METRICS_TOKEN = "m3trics-token"
    assert (
        client.get("/health", HTTP_AUTHORIZATION="Bearer m3trics-token").json()["pgvector"].startswith("0.8")
    )
    assert client.get("/health", HTTP_AUTHORIZATION="Bearer wrong").json() == {"status": "ok"}
    client.force_login(_user("stranger"))
    assert client.get("/health").json() == {"status": "ok"}
    client.force_login(_user("vera", "viewer"))
    body = client.get("/health").json()
    assert body["status"] == "ok" and "queued_tasks" in body and "videos" in body and "workers" in body


@pytest.mark.django_db
def test_without_a_metrics_token_configured_no_bearer_value_opens_the_details(client, settings):
    settings.ASTRADUP_METRICS_TOKEN = ""
    assert client.get("/health", HTTP_AUTHORIZATION="Bearer ").json() == {"status": "ok"}


# --- the policy in a real browser: no page of the app trips it


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
def test_no_page_violates_the_content_security_policy_in_a_browser(live_server, clip, monkeypatch):
    from django.db import connections
    from playwright.sync_api import sync_playwright

    from dedup.models import ScoringConfig

    admin = _user("ada", "admin")
    User.objects.filter(pk=admin.pk).update(is_staff=True, is_superuser=True)
    videos = [
        make.video(
            f"v{i}.mp4",
            path=str(clip) if i == 0 else f"/lib/v{i}.mp4",
            status="ready",
            width=160,
            height=120,
            duration=6.0,
            size=1000,
            fps=25.0,
        )
        for i in range(2)
    ]
    segments = {
        "a": [[1.0, 5.0]],
        "b": [[0.0, 4.0]],
        "coverage_a": 0.7,
        "coverage_b": 0.7,
        "offset": 1.0,
        "speed": 1.0,
    }
    pair = make.pair(
        videos[0],
        videos[1],
        "near_duplicate",
        0.86,
        visual=0.9,
        metadata=0.9,
        segments=segments,
        config=ScoringConfig.active(),
    )

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: (
                    violations.append(f"{page.url}: {m.text}")
                    if "Content Security Policy" in m.text
                    else None
                ),
            )
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=username]", "ada")
            page.fill("input[name=password]", "right-password-1")
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server.url}/")
            for path, ready in [
                ("/", "main"),
                ("/review/", "main"),
                (f"/review/pairs/{pair.pk}", "#pair-card .why"),
                ("/review/calibration", "main"),
                ("/admin/", "#content"),
                ("/admin/dedup/video/", "#result_list"),
                ("/api/docs/", ".swagger-ui .info"),
            ]:
                page.goto(f"{live_server.url}{path}")
                page.wait_for_selector(ready, timeout=30000)
            page.goto(f"{live_server.url}/review/pairs/{pair.pk}")
            page.click("details.numbers summary")  # the timeline is with the numbers, folded
            page.wait_for_selector("svg.track rect.seg")
            width = page.evaluate(
                "document.querySelector('svg.track rect.seg').getBoundingClientRect().width"
            )
            assert width > 10  # the matched segment is drawn, not collapsed
        finally:
            browser.close()
            connections.close_all()
    assert not violations, violations
