from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from dedup import api
from review.api import DecisionApi

api_v1 = [
    path("import", api.ImportApi.as_view(), name="import"),
    path("uploads", api.UploadApi.as_view(), name="upload"),
    path("videos", api.VideoListApi.as_view(), name="videos"),
    path("videos/<int:video_id>", api.VideoDetailApi.as_view(), name="video"),
    path("pairs", api.PairListApi.as_view(), name="pairs"),
    path("pairs/<int:pair_id>", api.PairDetailApi.as_view(), name="pair"),
    path("pairs/<int:pair_id>/decision", DecisionApi.as_view(), name="decision"),
    path("groups", api.GroupListApi.as_view(), name="groups"),
    path("groups/<int:group_id>", api.GroupDetailApi.as_view(), name="group"),
    path("export", api.ExportApi.as_view(), name="export"),
    path("jobs/<int:job_id>", api.JobDetailApi.as_view(), name="job"),
    # last: an id that is not a number, or a path that names nothing, is a JSON 404 too
    re_path(r"^(?P<rest>.*)$", api.not_found),
]

urlpatterns = [
    # browsers ask for /favicon.ico on pages that link no icon (Django admin): not a 404 each time
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # the split view serves its start-up script as a file: the Content-Security-Policy allows no inline script
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("review/", include("review.urls")),
    path("", include("dedup.urls")),
]
