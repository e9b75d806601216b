from django.urls import path

from . import views

app_name = "dedup"
urlpatterns = [
    path("", views.library, name="library"),
    path("health", views.health, name="health"),
    path("health/live", views.health_live, name="health_live"),
    path("health/ready", views.health_ready, name="health_ready"),
    path("metrics", views.metrics, name="metrics"),
    path("upload", views.library_upload, name="upload"),
    path("library/status", views.library_status, name="library_status"),
    path("jobs", views.jobs_page, name="jobs"),
    path("jobs/status", views.jobs_status, name="jobs_status"),
]
