from django.http import HttpRequest

from .access import can_view
from .services.jobs import jobs_running


def jobs(request: HttpRequest) -> dict:
    """The layout's jobs link: shown to users who may see the jobs page. The count is a callable,
    so the query runs only where a template shows it (`{% with n=jobs_running %}`)."""
    user = getattr(request, "user", None)
    shown = user is not None and can_view(user)
    return {"jobs_shown": shown, "jobs_running": jobs_running if shown else 0}
