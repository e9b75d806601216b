from django.http import HttpRequest

from dedup.access import can_administer


def roles(request: HttpRequest) -> dict:
    """What the navigation may offer the signed-in user."""
    return {"can_administer": can_administer(request.user) if hasattr(request, "user") else False}
