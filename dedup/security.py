"""Who may try how often, and what a response tells whom: login lockout (django-axes), the limiter
for wrong API tokens, Secure cookies over HTTPS and the metrics token of /health.

docs/security.md says where each of these sits in the threat model."""

import hmac
import math
import time
from collections.abc import Callable

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled


def client_ip(request: HttpRequest) -> str | None:
    """The address failures are counted against. Behind the one TLS proxy that DJANGO_BEHIND_PROXY
    declares, the last X-Forwarded-For entry is the one that proxy appended (the ones before it
    come from the client and are not to be believed); otherwise the peer's address."""
    if settings.ASTRADUP_BEHIND_PROXY:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR") or None  # None: a request made up in code (force_login)


# --- the login form (django-axes)


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login page again with 429 and Retry-After, so people and scripts
    both learn when to come back."""
    minutes = max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


class LoginLockoutBackend(AxesStandaloneBackend):
    """Axes' check in front of ModelBackend. `authenticate()` without a request never comes from
    the web (the login and admin forms pass theirs): it is the test client's `login()` or a
    script, which axes would refuse outright; there is nothing to count it against."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


# --- API tokens


class ThrottledTokenAuthentication(TokenAuthentication):
    """TokenAuthentication with a limit on wrong tokens per client address: DRF authenticates
    before its throttles run, so without this a token could be guessed at full speed. After
    ASTRADUP_TOKEN_FAILURE_LIMIT wrong tokens within ASTRADUP_TOKEN_LOCKOUT_SECONDS, every request
    from that address carrying a token answers 429 with Retry-After until the window ends (a right
    token too: otherwise the 429 would tell a guesser nothing the 401 did not)."""

    def authenticate(self, request):
        if not request.META.get("HTTP_AUTHORIZATION", "").lower().startswith(self.keyword.lower() + " "):
            return None  # no token: the next authentication class (the session) decides
        key = f"astradup:token-failures:{client_ip(request)}"
        failures, started = cache.get(key) or (0, time.time())
        window = settings.ASTRADUP_TOKEN_LOCKOUT_SECONDS
        if failures >= settings.ASTRADUP_TOKEN_FAILURE_LIMIT:
            raise Throttled(wait=max(1, math.ceil(started + window - time.time())))
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            # the window runs from the first failure, so a steady guesser is not kept out for ever
            # by its own attempts, nor let in early
            remaining = max(1, math.ceil(started + window - time.time()))
            cache.set(key, (failures + 1, started), timeout=remaining)
            raise


# --- cookies


class SecureCookiesOverHttpsMiddleware:
    """Marks the cookies (session, CSRF, messages) Secure on every request that came over HTTPS (directly,
    or through a proxy declared with DJANGO_BEHIND_PROXY), so a TLS deployment gets Secure cookies
    without a setting while `make run` on http://127.0.0.1 still logs in. DJANGO_HTTPS=1 makes
    them Secure always (SESSION_COOKIE_SECURE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.is_secure():
            for morsel in response.cookies.values():  # session, CSRF, and the messages cookie
                morsel["secure"] = True
        return response


# --- /health


def sees_health_details(request: HttpRequest) -> bool:
    """Counts, versions and workers of /health: for users with a role, or a caller presenting
    ASTRADUP_METRICS_TOKEN as a Bearer token (monitoring). Anonymous callers get liveness only."""
    from .access import can_view

    if request.user.is_authenticated and can_view(request.user):
        return True
    token = settings.ASTRADUP_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, presented = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip(), token)
