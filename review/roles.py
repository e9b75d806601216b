"""Roles are Django groups: moderator (review), admin (also settings), viewer (read-only)."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

MODERATOR = "moderator"
ADMIN = "admin"
VIEWER = "viewer"
ROLES = (MODERATOR, ADMIN, VIEWER)


def _groups(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_astradup_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._astradup_roles = cached
    return cached


def can_view(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (user.is_superuser or bool(_groups(user) & set(ROLES)))


def can_decide(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (user.is_superuser or bool(_groups(user) & {MODERATOR, ADMIN}))


def can_administer(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (user.is_superuser or ADMIN in _groups(user))
