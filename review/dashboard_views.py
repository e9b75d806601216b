"""The team lead's dashboard page (numbers from review.dashboard, pictures from review.charts)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dedup.access import viewer_required

from . import charts
from .dashboard import QUEUE_AGES, dashboard_summarize


@login_required
@require_GET
@viewer_required
def dashboard(request: HttpRequest) -> HttpResponse:
    board = dashboard_summarize()
    videos = board.videos
    ages = [name for name, _ in QUEUE_AGES]
    context = {
        "board": board,
        "ages": ages,
        "queue_total": sum(sum(row.values()) for row in board.queue.values()),
        "status_chart": charts.bar_chart(
            [
                ("queued", videos.queued),
                ("processing", videos.processing),
                ("ready", videos.ready),
                ("failed", videos.failed),
            ]
        ),
        "queue_chart": charts.stacked_rows(
            [(label, [counts[a] for a in ages]) for label, counts in board.queue.items()], ages
        ),
        "day_chart": charts.bar_chart(
            [(day.strftime("%m-%d"), n) for day, n in board.per_day], label_every=max(1, board.days // 7)
        ),
        "moderator_chart": charts.bar_chart(
            [(m["username"], m["decided"]) for m in board.per_moderator[:10]]
        ),
    }
    return render(request, "review/dashboard.html", context)
