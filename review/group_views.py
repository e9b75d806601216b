"""The groups page and the group actions: keep one copy, resolve every exact group, undo."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_GET, require_POST

from dedup.access import can_decide, role_required, viewer_required

from .groups import (
    exact_groups_pending,
    group_resolve,
    groups_exact_resolve,
    groups_overview,
    resolution_last,
)
from .groups import resolution_undo as resolution_undo_service
from .models import Resolution
from .services import DecisionRefused

GROUPS_PER_PAGE = 50
SHOWN = {"all": "every group", "open": "waiting for a decision", "exact": "exact groups"}


deciders_only = role_required(can_decide, "Only moderators and admins resolve groups.")


@login_required
@require_GET
@viewer_required
def groups_page(request: HttpRequest) -> HttpResponse:
    shown = request.GET.get("show", "open")
    shown = shown if shown in SHOWN else "open"
    overviews = groups_overview()
    pending = exact_groups_pending(overviews)
    listed = [
        o
        for o in overviews
        if shown == "all" or (shown == "open" and o.resolvable) or (shown == "exact" and o.exact)
    ]
    page = Paginator(listed, GROUPS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "review/groups.html",
        {
            "page": page,
            "shown": shown,
            "choices": SHOWN,
            "total": len(overviews),
            "exact_pending": len(pending),
            "exact_freed": sum(o.freed_bytes for o in pending),
            "can_decide": can_decide(request.user),
            "last_resolution": resolution_last(user=request.user),
        },
    )


def _back(request: HttpRequest, group_id: int | None = None):
    if group_id is not None and request.POST.get("back") == "group":
        return redirect("review:group", group_id=group_id)
    return redirect("review:groups")


@login_required
@require_POST
@deciders_only
def group_resolve_view(request: HttpRequest, group_id: int) -> HttpResponse:
    keep = request.POST.get("keep", "")
    try:
        resolution = group_resolve(
            group_id=group_id,
            user=request.user,
            keep_id=int(keep) if keep.isdigit() else None,
            partial_ok=request.POST.get("partial_ok") == "1",
        )
    except DecisionRefused as exc:
        messages.error(request, str(exc))
        return _back(request, group_id)
    messages.success(
        request,
        f"Group #{group_id} resolved: {resolution.duplicates} marked duplicates "
        f"(frees {filesizeformat(resolution.freed_bytes)}). Undo takes it back.",
    )
    return _back(request, group_id)


@login_required
@require_POST
@deciders_only
def groups_exact_resolve_view(request: HttpRequest) -> HttpResponse:
    try:
        resolution = groups_exact_resolve(user=request.user)
    except DecisionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Resolved {resolution.groups} exact groups: {resolution.duplicates} marked duplicates "
            f"(frees {filesizeformat(resolution.freed_bytes)}). Undo takes them all back.",
        )
    return redirect("review:groups")


@login_required
@require_POST
@deciders_only
def resolution_undo_view(request: HttpRequest, resolution_id: int) -> HttpResponse:
    resolution = get_object_or_404(Resolution, pk=resolution_id)
    try:
        resolution_undo_service(resolution=resolution, user=request.user)
    except DecisionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Undone: {resolution.groups} group(s) back to waiting for a decision.")
    return redirect("review:groups")
