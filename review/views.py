import mimetypes
import os
import re
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST, require_safe

from dedup.access import can_administer, can_decide, role_required, viewer_required
from dedup.features.probe import FileRefused, reopenable_path
from dedup.models import DuplicateGroup, Frame, Job, Pair, ScoringConfig, Verdict, Video
from dedup.services import video_open

from . import charts, services
from .explain import decision_sentence, pair_explanation, pair_summary
from .groups import groups_overview
from .models import Calibration, Decision
from .sync import sync_line

RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
CHUNK = 256 * 1024

admin_required = role_required(can_administer, "Calibration needs the admin role.")
deciders_only = role_required(can_decide, "Only moderators and admins decide pairs.")


def _filters(request: HttpRequest) -> dict:
    def number(name: str) -> float | None:
        try:
            return float(request.GET[name])
        except (KeyError, ValueError):
            return None

    return {
        "label": request.GET.get("label", ""),
        "min_score": number("min"),
        "max_score": number("max"),
        "order": request.GET.get("order", "uncertainty"),
    }


@login_required
@require_GET
@viewer_required
def queue(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    pairs = services.queue_pairs(user=request.user, **filters)[:200]
    return render(
        request,
        "review/queue.html",
        {
            "pairs": pairs,
            # counted as the list is made (without the skipped and the claimed), so they agree
            "counts": services.queue_counts(user=request.user),
            "hidden": services.queue_hidden(user=request.user),
            "filters": filters,
            "can_decide": can_decide(request.user),
            "labels": services.QUEUE_LABELS,
        },
    )


@login_required
@require_GET
@viewer_required
def next_pair_view(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    pair = (
        services.next_pair(user=request.user, **filters)
        if can_decide(request.user)
        else (services.queue_pairs(user=request.user, **filters).first())
    )
    if pair is None:
        messages.info(request, "The queue is empty: every flagged pair has a decision.")
        return redirect("review:queue")
    return redirect("review:pair", pair_id=pair.pk)


def _pair_context(request: HttpRequest, pair: Pair) -> dict:
    a, b = pair.video_a, pair.video_b
    segments = pair.segments or {}
    keep = _suggested_keep(pair)
    rows = []
    # higher is better for every row: the copy to keep is the sharper, longer, richer one
    for name, attr in [
        ("Resolution", "pixels"),
        ("Bitrate", "bitrate"),
        ("Duration", "duration"),
        ("File size", "size"),
        ("Frame rate", "fps"),
    ]:
        va, vb = getattr(a, attr) or 0, getattr(b, attr) or 0
        rows.append(
            {
                "name": name,
                "a": _fmt(attr, a),
                "b": _fmt(attr, b),
                "best": "a" if va > vb else "b" if vb > va else "",
            }
        )
    rows.append(
        {
            "name": "Codec",
            "a": f"{a.video_codec} / {a.audio_codec or 'no audio'}",
            "b": f"{b.video_codec} / {b.audio_codec or 'no audio'}",
            "best": "",
        }
    )
    verdict = Verdict.objects.filter(video_a=a, video_b=b).select_related("decided_by").first()
    longest = max(a.duration or 0, b.duration or 0, 1e-6)
    timeline = {
        side: [
            {"left": 100 * s / longest, "width": 100 * max(e - s, 0.2) / longest}
            for s, e in segments.get(side, [])
        ]
        for side in ("a", "b")
    }
    strip_a, strip_b = _strips(pair)
    claim = services.pair_claim_holder(pair=pair)
    return {
        "upcoming": _upcoming(request, pair, decided=verdict is not None),
        "strip_a": strip_a,
        "strip_b": strip_b,
        # the JPEGs' shape before they load, so the strips do not push the page about
        "thumb_w_a": _thumb_width(a),
        "thumb_w_b": _thumb_width(b),
        "thumb_h": THUMB_HEIGHT,
        "claim": claim if claim is not None and claim.user_id != request.user.pk else None,
        "explanation": pair_explanation(breakdown=pair.breakdown, segments=segments, audio=pair.audio),
        "summary": pair_summary(breakdown=pair.breakdown, segments=segments, audio=pair.audio),
        # ←/→ step by one of A's samples: all of them, not the strip's thinned-out ones
        "sync": sync_line(
            segments=segments, times_a=list(a.frames.order_by("idx").values_list("t", flat=True))
        ),
        "pair": pair,
        "a": a,
        "b": b,
        "segments": segments,
        "breakdown": pair.breakdown or {},
        "rows": rows,
        "keep": keep,
        "verdict": verdict,
        "timeline": timeline,
        "width_a": 100 * (a.duration or 0) / longest,
        "width_b": 100 * (b.duration or 0) / longest,
        "start_a": (segments.get("a") or [[0, 0]])[0][0],
        "start_b": (segments.get("b") or [[0, 0]])[0][0],
        "can_decide": can_decide(request.user),
        "actions": Decision.Action,
        "last": Decision.objects.filter(user=request.user, undone_at__isnull=True)
        .exclude(action="undo")
        .first()
        if request.user.is_authenticated
        else None,
    }


def _upcoming(request: HttpRequest, pair: Pair, *, decided: bool) -> dict | None:
    """The pair a decision here will most likely bring next (the first other one of this user's
    queue; another moderator may claim it first, then the prefetch was only wasted), with its
    keyframe strips: the page prefetches them while the moderator looks at this one, so that the
    thumbnails, decoded from the video on their first request, are ready when it swaps in."""
    if decided or not can_decide(request.user):
        return None
    upcoming = services.queue_pairs(user=request.user).exclude(pk=pair.pk).first()
    if upcoming is None:
        return None
    strip_a, strip_b = _strips(upcoming)
    return {"pair": upcoming, "strip_a": strip_a, "strip_b": strip_b}


STRIP_FRAMES = 40
THUMB_HEIGHT = 54  # px, as .strip .thumb img in astradup.css


def _thumb_width(video: Video) -> int:
    """The shown width of a keyframe thumbnail THUMB_HEIGHT px high (widened as players widen it)."""
    if not (video.width and video.height):
        return round(THUMB_HEIGHT * 16 / 9)
    return max(1, round(THUMB_HEIGHT * video.width * (video.sar or 1.0) / video.height))


def _strips(pair: Pair) -> tuple[list[dict], list[dict]]:
    """Keyframe strips for both videos; each frame inside the matched segment links to the frame it
    aligns with on the other side (t_b = speed * t_a + offset)."""
    segments = pair.segments or {}
    speed, offset = segments.get("speed") or 1.0, segments.get("offset") or 0.0
    seg_a = (segments.get("a") or [[None, None]])[0]
    seg_b = (segments.get("b") or [[None, None]])[0]
    frames = {
        side: list(Frame.objects.filter(video=video).order_by("idx").values_list("idx", "t", "informative"))
        for side, video in (("a", pair.video_a), ("b", pair.video_b))
    }

    def nearest(side: str, t: float) -> int | None:
        rows = frames[side]
        return min(rows, key=lambda r: abs(r[1] - t))[0] if rows else None

    def strip(side: str, other: str, seg, to_other) -> list[dict]:
        rows = frames[side]
        step = max(1, -(-len(rows) // STRIP_FRAMES))
        out = []
        for idx, t, informative in rows[::step]:
            inside = seg[0] is not None and seg[0] - 0.01 <= t <= seg[1] + 0.01
            out.append(
                {
                    "idx": idx,
                    "t": t,
                    "informative": informative,
                    "match": nearest(other, to_other(t)) if inside else None,
                }
            )
        return out

    return (
        strip("a", "b", seg_a, lambda t: speed * t + offset),
        strip("b", "a", seg_b, lambda t: (t - offset) / speed),
    )


def _fmt(attr: str, v: Video) -> str:
    if attr == "pixels":
        return v.shown_size
    if attr == "bitrate":
        return f"{(v.bitrate or 0) / 1000:.0f} kb/s"
    if attr == "duration":
        return f"{v.duration or 0:.1f} s"
    if attr == "size":
        return f"{(v.size or 0) / 1e6:.1f} MB"
    return f"{v.fps or 0:.2f} fps"


def _suggested_keep(pair: Pair) -> Video:
    from dedup.matching.groups import Link, keep_best

    a, b = pair.video_a, pair.video_b
    # a pair screen always suggests one: for a partial pair, the containing video (groups do not)
    label = Pair.Label.NEAR if pair.label == Pair.Label.PARTIAL else pair.label
    link = Link(a.pk, b.pk, label, (pair.segments or {}).get("speed") or 1.0)
    return a if keep_best([a.keep_facts(), b.keep_facts()], [link]) == a.pk else b


@login_required
@require_GET
@viewer_required
def pair_detail(request: HttpRequest, pair_id: int) -> HttpResponse:
    pair = get_object_or_404(Pair.objects.select_related("video_a", "video_b", "config"), pk=pair_id)
    if can_decide(request.user):
        services.pair_claim(pair=pair, user=request.user)
    template = "review/pair.html#pair-swap" if request.htmx else "review/pair.html"
    return render(request, template, _pair_context(request, pair))


@login_required
@require_POST
@deciders_only
def pair_decide_view(request: HttpRequest, pair_id: int) -> HttpResponse:
    action = request.POST.get("action", "")
    canonical = request.POST.get("canonical")
    try:
        decision = services.pair_decide(
            pair_id=pair_id,
            user=request.user,
            action=action,
            canonical_id=int(canonical) if canonical and canonical.isdigit() else None,
        )
    except services.PairGone as exc:
        messages.error(request, str(exc))
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("review:queue")
            return response
        return redirect("review:queue")
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
        if request.htmx:
            # 409 bodies are swapped in (htmx-config responseHandling in base.html): the refusal
            # shows on screen, with the pair as it stands now
            pair = get_object_or_404(Pair.objects.select_related("video_a", "video_b"), pk=pair_id)
            return render(request, "review/pair.html#pair-swap", _pair_context(request, pair), status=409)
        return redirect("review:pair", pair_id=pair_id)
    messages.success(
        request, decision_sentence(action=decision.action, pair_id=pair_id, kept=_kept(decision))
    )
    return _go_next(request)


def _kept(decision: Decision) -> str:
    if decision.canonical_id is None:
        return ""
    side = "A" if decision.canonical_id == decision.video_a_id else "B"
    return f"{side} ({decision.canonical.rel_path})"


def _go_next(request: HttpRequest) -> HttpResponse:
    pair = services.next_pair(user=request.user)
    if pair is None:
        messages.info(request, "The queue is empty: every flagged pair has a decision.")
        url = reverse("review:queue")
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
    if request.htmx:
        response = render(request, "review/pair.html#pair-swap", _pair_context(request, pair))
        response["HX-Push-Url"] = reverse("review:pair", args=[pair.pk])
        return response
    return redirect("review:pair", pair_id=pair.pk)


@login_required
@require_POST
@deciders_only
def undo(request: HttpRequest) -> HttpResponse:
    undone = services.decision_undo(user=request.user)
    if undone is None:
        messages.info(request, "Nothing to undo.")
        return redirect("review:queue")
    if undone.resolution_id:  # a group action is undone whole, and shown where it was done
        messages.success(request, "Undone: the whole group resolution.")
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("review:groups")
            return response
        return redirect("review:groups")
    messages.success(request, f"Undone: {undone.undoes.get_action_display()}.")
    if undone.pair_id:
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("review:pair", args=[undone.pair_id])
            return response
        return redirect("review:pair", pair_id=undone.pair_id)
    return redirect("review:queue")


@login_required
@require_GET
@viewer_required
def group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    group = get_object_or_404(
        DuplicateGroup.objects.select_related("canonical", "suggested_keep"), pk=group_id
    )
    members = list(group.videos.order_by("pk"))
    ids = [v.pk for v in members]
    decisions = Decision.objects.filter(video_a__in=ids, video_b__in=ids).select_related(
        "user", "video_a", "video_b"
    )
    (overview,) = groups_overview(group_ids=[group.pk])
    return render(
        request,
        "review/group.html",
        {
            "group": group,
            "members": members,
            "decisions": decisions[:100],
            "overview": overview,
            "can_decide": can_decide(request.user),
        },
    )


@login_required
@require_GET
@viewer_required
def video_frame(request: HttpRequest, video_id: int, idx: int) -> HttpResponse:
    """A small JPEG of one sampled frame, decoded once and cached under the data dir."""
    frame = get_object_or_404(Frame.objects.select_related("video"), video_id=video_id, idx=idx)
    # keyed by content, not by id: ids repeat across databases (a rebuilt library, the test database)
    key = frame.video.sha256 or f"id{video_id}"
    # "w": thumbnails since anamorphic pictures are widened (those cached before were not)
    cache = Path(settings.DATA_DIR) / "thumbs" / key[:2] / f"{key}-{idx}-v{frame.video.feature_version}w.jpg"
    if not cache.exists():
        import cv2

        from dedup.features import ExtractionError
        from dedup.features.frames import frame_at

        try:
            # decoded from the descriptor checked to hold a file inside the video's roots: a
            # symlink swapped in after ingest is refused, not followed
            with video_open(video=frame.video) as fh:
                rgb = frame_at(Path(reopenable_path(fh)), frame.t)
        except (ExtractionError, FileRefused, OSError) as exc:
            raise Http404(f"frame unavailable: {exc}") from exc
        cache.parent.mkdir(parents=True, exist_ok=True)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise Http404("frame could not be encoded")
        tmp = cache.with_suffix(".tmp")
        tmp.write_bytes(jpeg.tobytes())
        tmp.replace(cache)
    # a file of ours under the data dir: nginx may send it by name
    response = _accel_redirect(os.path.realpath(cache), "image/jpeg") or FileResponse(
        open(cache, "rb"), content_type="image/jpeg"
    )
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _accel_redirect(real_path: str, content_type: str) -> HttpResponse | None:
    """With ASTRADUP_ACCEL_REDIRECT (the prefix of nginx's internal location; docs/operations.md)
    an empty response whose X-Accel-Redirect names the file: nginx sends it, answering Range and
    HEAD itself, and Python holds no connection for the length of a video. None without it: the
    caller streams the file (the range view below). `real_path` must be the checked file's path
    with no symbolic link left in it; nginx's location refuses to follow any (disable_symlinks),
    so a link swapped in after the check is not followed out of the roots either."""
    prefix = settings.ASTRADUP_ACCEL_REDIRECT
    if not prefix:
        return None
    response = HttpResponse(content_type=content_type)
    # percent-encoded: nginx decodes it, and a "?" or "%" in a file name must not cut or change it
    response["X-Accel-Redirect"] = prefix.rstrip("/") + quote(real_path)
    return response


@login_required
@require_safe
@viewer_required
def video_media(request: HttpRequest, video_id: int) -> HttpResponse:
    """The video file, with HTTP Range support so players can seek (HEAD too: players and
    monitoring ask for the size)."""
    video = get_object_or_404(Video, pk=video_id)
    try:
        # what is served is the file checked to lie inside the video's roots, by its descriptor
        fh = video_open(video=video)
    except FileRefused as exc:
        raise Http404(f"file not available: {exc}") from exc
    content_type = mimetypes.guess_type(Path(video.path).name)[0] or "video/mp4"
    if settings.ASTRADUP_ACCEL_REDIRECT:
        # the file the descriptor holds, by the path the kernel resolved when it was opened
        with fh:
            try:
                real = os.readlink(f"/proc/self/fd/{fh.fileno()}")
            except OSError:  # no /proc: the name, resolved now (nginx still follows no link)
                real = os.path.realpath(video.path)
        response = _accel_redirect(real, content_type)
        assert response is not None
        response["Cache-Control"] = "private, max-age=3600"  # nginx adds its own ETag
        return response
    stat = os.fstat(fh.fileno())
    size = stat.st_size
    # cacheable with a validator: the start of the next pair's files, fetched ahead by the pair
    # screen (static/decide.js), is then played from the browser's cache, which keeps byte ranges
    # only of responses it can validate
    etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    match = RANGE_RE.fullmatch(request.headers.get("Range", "").strip())
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range != etag:
        match = None  # the file changed since the part the browser holds: all of it, afresh
    if not match or (not match.group(1) and not match.group(2)):
        response = FileResponse(fh, content_type=content_type, filename=Path(video.path).name)
        response["Accept-Ranges"] = "bytes"
        return _media_cached(response, etag)
    start_s, end_s = match.groups()
    if start_s:
        start, end = int(start_s), min(int(end_s) if end_s else size - 1, size - 1)
    else:  # suffix range: the last N bytes
        start, end = max(0, size - int(end_s)), size - 1
    if start >= size or start > end:
        fh.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    response = StreamingHttpResponse(_FileRange(fh, start, end), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return _media_cached(response, etag)


def _media_cached(response: HttpResponse, etag: str) -> HttpResponse:
    response["ETag"] = etag
    response["Cache-Control"] = "private, max-age=3600"
    return response


class _FileRange:
    """Bytes start..end of an open file; Django calls close() when the response is done, whether
    or not the body was read."""

    def __init__(self, fh, start: int, end: int):
        self.fh, self.start, self.end = fh, start, end

    def __iter__(self):
        self.fh.seek(self.start)
        remaining = self.end - self.start + 1
        while remaining > 0:
            block = self.fh.read(min(CHUNK, remaining))
            if not block:
                break
            remaining -= len(block)
            yield block

    def close(self) -> None:
        self.fh.close()


# ---------------------------------------------------------------- calibration (admins)


@login_required
@require_GET
@admin_required
def calibration_page(request: HttpRequest) -> HttpResponse:
    """The labels, the latest calibration job while it runs, the latest report, the config versions.
    Polled by htmx while a calibration job runs: the running job's part only, until it shows the
    report (or why the job failed) and polls no more."""
    latest = Calibration.objects.select_related("base_config", "applied_config", "created_by").first()
    job = Job.objects.filter(kind=Job.Kind.CALIBRATION).first()
    if job and not job.is_live and latest and latest.created_at >= job.created_at:
        job = None  # its report is the one shown: nothing more to say about the job
    report = latest.report if latest else {}
    context: dict = {
        "job": job,
        "latest": latest,
        "report": report,
        "configs": ScoringConfig.objects.select_related("based_on").with_activated_by().order_by("-pk")[:50],
        "active": ScoringConfig.active(),
        "labels": services.label_counts(),
        "min_labels": settings.ASTRADUP["CALIBRATION_MIN_LABELS"],
        "target": settings.ASTRADUP["CALIBRATION_TARGET_PRECISION"],
        "chart": charts.frame(),
    }
    if latest and latest.ready:
        current, proposed = report["current"], report["proposed"]
        cv = report["cross_validated"]
        context["rows"] = [
            {"name": label, "current": current[field], "proposed": proposed[field]}
            for field, label in CONFIG_ROWS
        ]
        context["metric_rows"] = [
            {"name": name, "current": cv["current"][key], "proposed": cv["proposed"][key]}
            for key, name in (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))
        ] + [{"name": "average precision", "current": cv["current_ap"], "proposed": cv["proposed_ap"]}]
        logistic = report["logistic"]
        context["midpoint"] = -logistic["b"] / logistic["a"] if logistic["a"] else None
        context["curves"] = {k: charts.pr_polyline(v) for k, v in report["curve"].items()}
        context["histogram"] = charts.histogram_bars(
            report["histogram"]["proposed"],
            {"near": proposed["near_threshold"], "exact": proposed["exact_threshold"]},
        )
    template = "review/calibration.html#calibration-latest" if request.htmx else "review/calibration.html"
    return render(request, template, context)


CONFIG_ROWS = (
    ("visual_weight", "visual weight"),
    ("audio_weight", "audio weight"),
    ("metadata_weight", "metadata weight"),
    ("exact_threshold", "exact (auto-confirm) threshold"),
    ("near_threshold", "near-duplicate threshold"),
    ("partial_threshold", "partial-copy threshold"),
    ("similar_threshold", "similar threshold (queue floor)"),
)


@login_required
@require_POST
@admin_required
def calibration_run_view(request: HttpRequest) -> HttpResponse:
    """Start a calibration job and answer at once: the page shows the job until its report."""
    try:
        target = float(request.POST.get("target") or settings.ASTRADUP["CALIBRATION_TARGET_PRECISION"])
        job = services.calibration_start(user=request.user, target=target)
    except (ValueError, services.CalibrationRefused) as exc:
        messages.error(request, f"Calibration not run: {exc}")
    else:
        messages.info(request, f"Calibration started in the background (job #{job.pk}).")
    return redirect("review:calibration")


@login_required
@require_POST
@admin_required
def calibration_apply_view(request: HttpRequest, calibration_id: int) -> HttpResponse:
    run = get_object_or_404(Calibration, pk=calibration_id)
    try:
        config = services.calibration_apply(calibration=run, user=request.user)
    except services.CalibrationRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Config #{config.pk} is active; pairs are being re-scored in the background."
        )
    return redirect("review:calibration")


@login_required
@require_POST
@admin_required
def config_restore_view(request: HttpRequest, config_id: int) -> HttpResponse:
    config = get_object_or_404(ScoringConfig, pk=config_id)
    try:
        services.config_restore(config=config, user=request.user)
    except services.CalibrationRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Config #{config.pk} is active again; pairs are being re-scored in the background."
        )
    return redirect("review:calibration")
