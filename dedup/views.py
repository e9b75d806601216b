from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .access import can_decide, role_required, viewer_required
from .models import Frame, Job, Pair, Video
from .progress import NO_WORKER, ingest_progress, worker_clusters
from .security import sees_health_details
from .services.ingest import UploadRefused, video_upload


class UploadForm(forms.Form):
    file = forms.FileField(label="Add a video")


# the library's orders (?sort=, "-" for descending): a whitelist, never a field name from the URL
LIBRARY_SORTS = {
    "name": "rel_path",
    "size": "size",
    "duration": "duration",
    "date": "created_at",
}


def _library_order(sort: str) -> tuple[str, list]:
    """The sort asked for (or the default, by name) and its ORDER BY; unknown values are ignored."""
    key = sort.removeprefix("-")
    if key not in LIBRARY_SORTS:
        sort, key = "name", "name"
    field = F(LIBRARY_SORTS[key])
    # videos not measured yet (no size or duration) go last either way
    first = field.desc(nulls_last=True) if sort.startswith("-") else field.asc(nulls_last=True)
    return sort, [first, "rel_path", "pk"]


def counts_by(rows: QuerySet, field: str) -> dict:
    """{value of `field`: rows with it}, in one GROUP BY (values with no rows are absent)."""
    return dict(rows.order_by().values_list(field).annotate(n=Count("pk")).values_list(field, "n"))


def _status_context() -> dict:
    progress = ingest_progress()
    return {
        "progress": progress,
        # poll quickly while there is work, slowly otherwise (an ingest may start from the command line)
        "status_poll_s": 3 if progress.busy else 15,
    }


@login_required
@require_GET
@viewer_required
def library(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    first_frame = (
        Frame.objects.filter(video=OuterRef("pk"), informative=True).order_by("idx").values("idx")[:1]
    )
    videos = Video.objects.select_related("group").annotate(thumb_idx=Subquery(first_frame))
    if query:
        videos = videos.filter(Q(file_name__icontains=query) | Q(rel_path__icontains=query))
    if status in Video.Status.values:
        videos = videos.filter(status=status)
    sort, order = _library_order(request.GET.get("sort", ""))
    page = Paginator(videos.order_by(*order), 100).get_page(request.GET.get("page"))
    live = any(v.status in (Video.Status.PENDING, Video.Status.PROCESSING) for v in page)
    context = {
        # the table's own polling leaves the status bar to its poll
        **({} if request.htmx else _status_context()),
        "page": page,
        "query": query,
        "status": status,
        "sort": sort,
        "sort_columns": [
            {
                "title": title,
                # a header sorts ascending first, then the other way round
                "next": f"-{key}" if sort == key else key,
                "aria": {key: "ascending", f"-{key}": "descending"}.get(sort, ""),
            }
            for key, title in (
                ("name", "File"),
                ("size", "Size"),
                ("duration", "Duration"),
                ("date", "Added"),
            )
        ],
        "pair_counts": counts_by(Pair.objects.all(), "label"),
        "live": live,
        "upload_form": UploadForm() if can_decide(request.user) else None,
        "upload_max_mb": settings.ASTRADUP["UPLOAD_MAX_MB"],
    }
    template = "dedup/library.html#video-table" if request.htmx else "dedup/library.html"
    return render(request, template, context)


@login_required
@require_GET
@viewer_required
def library_status(request: HttpRequest) -> HttpResponse:
    """The library's status bar, polled by htmx: videos per status, the rate, and a warning when
    videos wait and no worker is there to take them."""
    return render(request, "dedup/library.html#ingest-status", _status_context())


JOBS_SHOWN = 50


@login_required
@require_GET
@viewer_required
def jobs_page(request: HttpRequest) -> HttpResponse:
    """Background jobs, newest first, with their progress; polled by htmx while one is live."""
    jobs = list(Job.objects.select_related("created_by")[:JOBS_SHOWN])
    context = {
        "jobs": jobs,
        "live": any(job.is_live for job in jobs),
        # a queued job waits for a cluster: say so when none is there to take it
        "no_worker": any(job.status == Job.Status.QUEUED for job in jobs) and not worker_clusters(),
        "no_worker_text": NO_WORKER,
    }
    return render(request, "dedup/jobs.html#job-list" if request.htmx else "dedup/jobs.html", context)


@login_required
@require_GET
@viewer_required
def jobs_status(request: HttpRequest) -> HttpResponse:
    """The layout's "N jobs running" link, polled by htmx while N > 0."""
    return render(request, "dedup/_jobs_status.html")


@login_required
@require_POST
@role_required(can_decide, "Only moderators and admins add videos.")
def library_upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a file to upload.")
        return redirect("dedup:library")
    try:
        result = video_upload(upload=form.cleaned_data["file"])
    except UploadRefused as exc:
        messages.error(request, str(exc))
        return redirect("dedup:library")
    if result.created and not worker_clusters():
        # "being processed" would be untrue: nothing takes it until a cluster starts
        messages.warning(request, f"{form.cleaned_data['file'].name} added. {NO_WORKER}.")
    elif result.created:
        messages.success(request, f"{form.cleaned_data['file'].name} added; it is being processed.")
    else:
        messages.info(request, "That file is already in the library.")
    return redirect("dedup:library")


@require_GET
def health_live(request: HttpRequest) -> JsonResponse:
    """Liveness: this process answers. Nothing else is asked (a database outage must not make an
    orchestrator restart every web server)."""
    return JsonResponse({"status": "ok"})


@require_GET
def health_ready(request: HttpRequest) -> JsonResponse:
    """Readiness: database, pgvector and broker answer (dedup.observability.readiness); 503
    otherwise. What each said, and the workers seen, only for those who may see /health's details."""
    from .observability import readiness

    ok, body = readiness()
    shown = body if sees_health_details(request) else {}
    return JsonResponse({"status": "ok" if ok else "error", **shown}, status=200 if ok else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for ASTRADUP_METRICS_TOKEN or ASTRADUP_METRICS_ALLOWED_IPS only."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from .observability import may_scrape, registry

    if not may_scrape(request):
        return HttpResponse(
            "metrics need ASTRADUP_METRICS_TOKEN or an allowed address\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness for anyone (`{"status": "ok"}`, or 503); counts, versions and workers only for
    users with a role or a caller with the metrics token (dedup.security.sees_health_details)."""
    from django_q.brokers import get_broker
    from django_q.status import Stat

    details = sees_health_details(request)
    body: dict = {"status": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        if details:
            body["database"] = "ok"
            body["pgvector"] = row[0] if row else None
            body["queued_tasks"] = get_broker().queue_size()  # the ORM's or Redis' queue
            body["videos"] = counts_by(Video.objects.all(), "status")
    except Exception as exc:  # report, don't crash: this is what monitoring polls
        # the error names hosts and users: only for those who may see the details
        return JsonResponse(
            {"status": "error", **({"database": f"error: {exc}"} if details else {})}, status=503
        )
    if details:
        clusters = Stat.get_all()
        body["workers"] = {"clusters": len(clusters), "status": sorted({c.status for c in clusters})}
    return JsonResponse(body)
