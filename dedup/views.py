from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import Pair, Video


@login_required
@require_GET
def library(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    videos = Video.objects.select_related("group")
    if query:
        videos = videos.filter(Q(file_name__icontains=query) | Q(rel_path__icontains=query))
    if status in Video.Status.values:
        videos = videos.filter(status=status)
    page = Paginator(videos.order_by("rel_path"), 100).get_page(request.GET.get("page"))
    counts = dict(Video.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    live = any(v.status in (Video.Status.PENDING, Video.Status.PROCESSING) for v in page)
    context = {
        "page": page,
        "query": query,
        "status": status,
        "counts": {s: counts.get(s, 0) for s in Video.Status.values},
        "pair_counts": dict(
            Pair.objects.values_list("label").annotate(n=Count("pk")).values_list("label", "n")
        ),
        "live": live,
    }
    template = "dedup/library.html#video-table" if request.htmx else "dedup/library.html"
    return render(request, template, context)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    from django_q.models import OrmQ
    from django_q.status import Stat

    body: dict = {"database": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        body["pgvector"] = row[0] if row else None
        body["queued_tasks"] = OrmQ.objects.count()
        body["videos"] = dict(
            Video.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
        )
    except Exception as exc:  # report, don't crash: this is what monitoring polls
        return JsonResponse({"database": f"error: {exc}"}, status=503)
    clusters = Stat.get_all()
    body["workers"] = {"clusters": len(clusters), "status": sorted({c.status for c in clusters})}
    return JsonResponse(body)
