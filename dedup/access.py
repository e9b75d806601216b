"""Who may do what: roles, and the guards views and API endpoints of both apps use.

Roles are Django groups: moderator (review), admin (also settings), viewer (read-only). Both apps
use them, and review depends on dedup, never the reverse, so they live here."""

from collections.abc import Callable
from functools import wraps

from django.apps import apps as global_apps
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS
from rest_framework.permissions import SAFE_METHODS, BasePermission

MODERATOR = "moderator"
ADMIN = "admin"
VIEWER = "viewer"
ROLES = (MODERATOR, ADMIN, VIEWER)

# What each role may do in Django admin, as (app label, codename prefix); "" = every permission of
# the app. Only staff users open /admin/, so for moderators and viewers this is what they would see
# if made staff: the library and the decisions, read-only.
ROLE_PERMISSIONS = {
    # users and groups read-only: whoever may change a user may tick "superuser" on their own
    ADMIN: [("dedup", ""), ("review", ""), ("auth", "view_"), ("django_q", "view_")],
    MODERATOR: [("dedup", "view_"), ("review", "view_")],
    VIEWER: [("dedup", "view_"), ("review", "view_")],
}


def roles_grant(*, apps=global_apps, using: str = DEFAULT_DB_ALIAS) -> None:
    """Create the role groups and give them their permissions; safe to run any number of times.

    Permission rows exist only once Django's `create_permissions` has run for an app, which happens
    after all migrations (post_migrate): a data migration granting them on a fresh database found
    none. So they are created here first, for the apps the roles cover."""
    from django.contrib.auth.management import create_permissions

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    labels = {label for grants in ROLE_PERMISSIONS.values() for label, _ in grants}
    for label in sorted(labels):
        try:
            create_permissions(global_apps.get_app_config(label), verbosity=0, using=using, apps=apps)
        except LookupError:  # an app not installed here
            continue
    for role in ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=role)
        for label, prefix in ROLE_PERMISSIONS[role]:
            perms = Permission.objects.using(using).filter(
                content_type__app_label=label, codename__startswith=prefix
            )
            group.permissions.add(*perms)
    # an earlier release granted the admin role every auth permission: take back all but viewing
    Group.objects.using(using).get(name=ADMIN).permissions.remove(
        *Permission.objects.using(using)
        .filter(content_type__app_label="auth")
        .exclude(codename__startswith="view_")
    )


def _groups(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_astradup_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._astradup_roles = cached
    return cached


def _is_superuser(user: AbstractBaseUser | AnonymousUser) -> bool:
    # request.user is typed as the base user; the project's User (a PermissionsMixin) has the flag
    return isinstance(user, PermissionsMixin) and user.is_superuser


def can_view(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (_is_superuser(user) or bool(_groups(user) & set(ROLES)))


def can_decide(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (_is_superuser(user) or bool(_groups(user) & {MODERATOR, ADMIN}))


def can_administer(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (_is_superuser(user) or ADMIN in _groups(user))


# ---------------------------------------------------------------- guards

VIEWER_NEEDED = "You need the viewer, moderator or admin role."


def role_required(allowed: Callable[[AbstractBaseUser | AnonymousUser], bool], message: str = VIEWER_NEEDED):
    """A view decorator: 403 with `message` unless `allowed(request.user)`. Stacked under
    `@login_required` (an anonymous user is sent to log in, not refused)."""

    def decorator(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not allowed(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return guarded

    return decorator


viewer_required = role_required(can_view)


class CanView(BasePermission):
    message = VIEWER_NEEDED

    def has_permission(self, request, view):
        return can_view(request.user)


class CanChange(BasePermission):
    """Viewers read; moderators and admins also write."""

    message = "Only moderators and admins change the library."

    def has_permission(self, request, view):
        return can_view(request.user) and (request.method in SAFE_METHODS or can_decide(request.user))


class CanDecide(BasePermission):
    message = "Only moderators and admins decide pairs."

    def has_permission(self, request, view):
        return can_decide(request.user)
