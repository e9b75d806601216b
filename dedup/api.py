"""REST API v1 for integrators: bulk import, uploads, videos, pairs, groups, export."""

import io
import os
from pathlib import Path

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .access import CanChange, CanView
from .exports import write_matches
from .features.probe import refusal_of
from .models import DuplicateGroup, Job, Pair, Video
from .services.ingest import IngestResult, UploadRefused, import_roots, video_ingest, video_upload
from .services.jobs import job_videos_follow

# ---------------------------------------------------------------- errors


class ErrorOut(serializers.Serializer):
    detail = serializers.CharField()


_ERRORS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="Validation failed: a list of messages per field name "
        '(e.g. `{"min_score": ["Ensure this value is less than or equal to 1."]}`), '
        "or `detail` for a body that could not be parsed.",
    ),
    401: OpenApiResponse(ErrorOut, description="No or an unknown token, and no session."),
    403: OpenApiResponse(ErrorOut, description="The user's role does not allow this."),
    404: OpenApiResponse(ErrorOut, description="No such object, or a page past the last one."),
    409: OpenApiResponse(ErrorOut, description="Refused in the pair's current state; `detail` says why."),
    413: OpenApiResponse(
        ErrorOut, description="The body (files aside) is larger than `DATA_UPLOAD_MAX_MEMORY_SIZE`."
    ),
    415: OpenApiResponse(ErrorOut, description="The request body is not in a documented media type."),
    429: OpenApiResponse(ErrorOut, description="Too many requests: retry after `Retry-After` seconds."),
}


def errors(*codes: int) -> dict:
    """The documented error answers of an operation (401, 403 and 429 can answer any of them)."""
    return {code: _ERRORS[code] for code in sorted({401, 403, 429, *codes})}


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."


class ApiView(APIView):
    """An APIView whose every answer is JSON: Django refuses an oversized or malformed body with
    an HTML error page when DRF first reads it, which an API client cannot parse."""

    def handle_exception(self, exc):
        if isinstance(exc, RequestDataTooBig):
            exc = BodyTooLarge()
        elif isinstance(exc, SuspiciousOperation):
            exc = exceptions.ParseError(str(exc) or "The request body could not be read.")
        return super().handle_exception(exc)


def not_found(request, rest: str = "") -> JsonResponse:
    """Any other URL under the API (`/api/v1/videos/abc`): a JSON 404 like the views', not the
    site's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)


# ---------------------------------------------------------------- serializers


class VideoOut(serializers.ModelSerializer):
    class Meta:
        model = Video
        fields = [
            "id",
            "rel_path",
            "file_name",
            "path",
            "status",
            "error",
            "sha256",
            "identical_to",
            "size",
            "duration",
            "width",
            "height",
            "sar",
            "fps",
            "video_codec",
            "audio_codec",
            "bitrate",
            "has_audio",
            "group",
            "created_at",
            "finished_at",
        ]


class PairOut(serializers.ModelSerializer):
    a = serializers.CharField(source="video_a.rel_path")
    b = serializers.CharField(source="video_b.rel_path")

    class Meta:
        model = Pair
        fields = [
            "id",
            "video_a",
            "video_b",
            "a",
            "b",
            "score",
            "label",
            "visual",
            "audio",
            "metadata",
            "config",
        ]


class PairDetailOut(PairOut):
    class Meta(PairOut.Meta):
        fields = PairOut.Meta.fields + ["breakdown", "segments", "created_at", "updated_at"]


class GroupOut(serializers.ModelSerializer):
    members = serializers.PrimaryKeyRelatedField(source="videos", many=True, read_only=True)

    class Meta:
        model = DuplicateGroup
        fields = ["id", "canonical", "suggested_keep", "members", "updated_at"]


# the longest file or folder name most file systems take (Linux NAME_MAX)
NAME_MAX = 255


class ImportIn(serializers.Serializer):
    paths = serializers.ListField(
        child=serializers.CharField(max_length=4096), min_length=1, max_length=10000
    )

    def validate_paths(self, paths: list[str]) -> list[Path]:
        roots = import_roots()
        checked = []
        for raw in paths:
            try:
                raw.encode("utf-8")
            except UnicodeEncodeError:
                raise serializers.ValidationError("a path is not valid UTF-8 text") from None
            if ".." in Path(raw).parts:
                raise serializers.ValidationError(f"'{raw}': '..' is not allowed")
            path = Path(raw)
            if not path.is_absolute():
                raise serializers.ValidationError(f"'{raw}': give an absolute server-side path")
            if any(len(os.fsencode(part)) > NAME_MAX for part in path.parts):
                raise serializers.ValidationError(
                    f"'{raw}': a file or folder name is longer than {NAME_MAX} bytes"
                )
            resolved = Path(os.path.realpath(path))  # Path.resolve raises RuntimeError on a loop
            if not any(resolved == root or root in resolved.parents for root in roots):
                raise serializers.ValidationError(
                    f"'{raw}' is outside the import roots ({', '.join(map(str, roots))})"
                )
            try:
                resolved.stat()
            except FileNotFoundError:
                raise serializers.ValidationError(f"'{raw}' does not exist") from None
            except OSError as exc:
                raise serializers.ValidationError(f"'{raw}': {refusal_of(path, exc)}") from None
            checked.append(resolved)
        return checked


class ImportOut(serializers.Serializer):
    created = serializers.ListField(child=serializers.IntegerField())
    existing = serializers.IntegerField()
    identical = serializers.IntegerField()
    skipped = serializers.ListField(
        child=serializers.CharField(),
        help_text="Files left alone, each as 'path: why' (a symlink leading out of the import "
        "roots, a FIFO, a name that is not UTF-8...).",
    )


class ImportJobOut(ImportOut):
    job = serializers.IntegerField(help_text="The job that follows the extraction of the created videos.")
    job_url = serializers.URLField(help_text="`GET` it for the job's progress (`/api/v1/jobs/<id>`).")


class JobOut(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "done",
            "total",
            "message",
            "error",
            "result",
            "created_at",
            "started_at",
            "finished_at",
        ]


def _import_body(result: IngestResult) -> dict:
    return {
        "created": result.created,
        "existing": result.existing,
        "identical": result.identical,
        "skipped": result.skipped,
    }


# a file part, not a URL: drf-spectacular maps FileField to `format: uri` unless requests get
# components of their own (COMPONENT_SPLIT_REQUEST)
@extend_schema_field(OpenApiTypes.BINARY)
class UploadFileField(serializers.FileField):
    pass


class UploadIn(serializers.Serializer):
    file = UploadFileField()


class ExportRowOut(serializers.Serializer):
    """One row of `?as=json` (the CSV has the same columns, in this order)."""

    a = serializers.CharField()
    b = serializers.CharField()
    score = serializers.FloatField()
    label = serializers.CharField()
    via = serializers.ChoiceField(choices=["pair", "group", "verdict"])
    visual = serializers.FloatField(allow_null=True)
    audio = serializers.FloatField(allow_null=True)
    metadata = serializers.FloatField(allow_null=True)
    a_start = serializers.FloatField(allow_null=True)
    a_end = serializers.FloatField(allow_null=True)
    b_start = serializers.FloatField(allow_null=True)
    b_end = serializers.FloatField(allow_null=True)
    coverage_a = serializers.FloatField(allow_null=True)
    coverage_b = serializers.FloatField(allow_null=True)
    offset = serializers.FloatField(allow_null=True)
    speed = serializers.FloatField(allow_null=True)
    matched_frames = serializers.IntegerField(allow_null=True)
    config = serializers.IntegerField(allow_null=True)


def _page(request, queryset, serializer, view):
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


# ---------------------------------------------------------------- views


class ImportApi(ApiView):
    permission_classes = [CanChange]
    parser_classes = [JSONParser]

    @extend_schema(request=ImportIn, responses={201: ImportJobOut, **errors(400, 413, 415)})
    def post(self, request):
        data = ImportIn(data=request.data)
        data.is_valid(raise_exception=True)
        paths = data.validated_data["paths"]
        with transaction.atomic():
            result = video_ingest(paths=paths, within=import_roots())
            job = job_videos_follow(
                kind=Job.Kind.IMPORT,
                video_ids=result.created,
                user=request.user,
                params={"path_count": len(paths)},
            )
        body = {
            **_import_body(result),
            "job": job.pk,
            "job_url": request.build_absolute_uri(reverse("api:job", args=[job.pk])),
        }
        return Response(ImportJobOut(body).data, status=status.HTTP_201_CREATED)


class UploadApi(ApiView):
    permission_classes = [CanChange]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": UploadIn}, responses={201: ImportOut, **errors(400, 413, 415)}
    )
    def post(self, request):
        data = UploadIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = video_upload(upload=data.validated_data["file"])
        except UploadRefused as exc:
            return Response({"file": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ImportOut(_import_body(result)).data, status=status.HTTP_201_CREATED)


class JobDetailApi(ApiView):
    permission_classes = [CanView]

    @extend_schema(responses={200: JobOut, **errors(404)})
    def get(self, request, job_id: int):
        return Response(JobOut(get_object_or_404(Job, pk=job_id)).data)


class VideoListApi(ApiView):
    permission_classes = [CanView]
    # declared so the schema shows the page object ({count, next, previous, results}) it answers
    pagination_class = PageNumberPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str),
            OpenApiParameter("q", str, description="file name contains"),
        ],
        responses={200: VideoOut(many=True), **errors(404)},
    )
    def get(self, request):
        videos = Video.objects.order_by("pk")
        if request.query_params.get("status") in Video.Status.values:
            videos = videos.filter(status=request.query_params["status"])
        if request.query_params.get("q"):
            videos = videos.filter(file_name__icontains=request.query_params["q"])
        return _page(request, videos, VideoOut, self)


class VideoDetailApi(ApiView):
    permission_classes = [CanView]

    @extend_schema(responses={200: VideoOut, **errors(404)})
    def get(self, request, video_id: int):
        return Response(VideoOut(get_object_or_404(Video, pk=video_id)).data)


class PairFilters(serializers.Serializer):
    label = serializers.ChoiceField(choices=Pair.Label.choices, required=False)
    min_score = serializers.FloatField(required=False, min_value=0, max_value=1)
    max_score = serializers.FloatField(required=False, min_value=0, max_value=1)
    video = serializers.IntegerField(required=False)


class PairListApi(ApiView):
    permission_classes = [CanView]
    pagination_class = PageNumberPagination

    @extend_schema(parameters=[PairFilters], responses={200: PairOut(many=True), **errors(400, 404)})
    def get(self, request):
        # a plain dict, not the QueryDict: DRF skips blank values of a QueryDict, so `?label=`
        # would be accepted although the schema says a label is one of the choices
        filters = PairFilters(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        pairs = Pair.objects.select_related("video_a", "video_b").order_by("-score", "pk")
        if "label" in f:
            pairs = pairs.filter(label=f["label"])
        if "min_score" in f:
            pairs = pairs.filter(score__gte=f["min_score"])
        if "max_score" in f:
            pairs = pairs.filter(score__lte=f["max_score"])
        if "video" in f:
            pairs = pairs.filter(video_a=f["video"]) | pairs.filter(video_b=f["video"])
        return _page(request, pairs, PairOut, self)


class PairDetailApi(ApiView):
    permission_classes = [CanView]

    @extend_schema(responses={200: PairDetailOut, **errors(404)})
    def get(self, request, pair_id: int):
        pair = get_object_or_404(Pair.objects.select_related("video_a", "video_b"), pk=pair_id)
        return Response(PairDetailOut(pair).data)


class GroupListApi(ApiView):
    permission_classes = [CanView]
    pagination_class = PageNumberPagination

    @extend_schema(responses={200: GroupOut(many=True), **errors(404)})
    def get(self, request):
        return _page(
            request, DuplicateGroup.objects.prefetch_related("videos").order_by("pk"), GroupOut, self
        )


class GroupDetailApi(ApiView):
    permission_classes = [CanView]

    @extend_schema(responses={200: GroupOut, **errors(404)})
    def get(self, request, group_id: int):
        return Response(GroupOut(get_object_or_404(DuplicateGroup, pk=group_id)).data)


EXPORT_200 = (
    "`?as=csv` (the default): text/csv, a header row then one row per pair; a text cell that "
    "starts with = + - @ tab or CR is prefixed with ' so spreadsheets do not run it as a formula. "
    "`?as=json`: the same rows as objects, values as stored."
)


class ExportApi(ApiView):
    permission_classes = [CanView]

    # not ?format=: DRF reserves it for choosing a renderer
    @extend_schema(
        parameters=[OpenApiParameter("as", str, enum=["csv", "json"], default="csv")],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=EXPORT_200),
            (200, "application/json"): OpenApiResponse(ExportRowOut(many=True), description=EXPORT_200),
            **errors(400),
        },
    )
    def get(self, request):
        fmt = request.query_params.get("as", "csv")
        if fmt not in ("csv", "json"):
            return Response({"as": ["choose csv or json"]}, status=status.HTTP_400_BAD_REQUEST)
        buffer = io.StringIO()
        write_matches(buffer, fmt=fmt)
        content_type = "text/csv" if fmt == "csv" else "application/json"
        response = HttpResponse(buffer.getvalue(), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="matches.{fmt}"'
        return response
