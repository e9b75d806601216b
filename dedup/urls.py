from django.urls import path

from . import views

app_name = "dedup"
urlpatterns = [
    path("", views.library, name="library"),
    path("health", views.health, name="health"),
    path("upload", views.library_upload, name="upload"),
    path("library/status", views.library_status, name="library_status"),
]
