from django.urls import path

from . import dashboard_views, group_views, views

app_name = "review"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("next", views.next_pair_view, name="next"),
    path("pairs/<int:pair_id>", views.pair_detail, name="pair"),
    path("pairs/<int:pair_id>/decide", views.pair_decide_view, name="decide"),
    path("undo", views.undo, name="undo"),
    path("calibration", views.calibration_page, name="calibration"),
    path("calibration/run", views.calibration_run_view, name="calibration_run"),
    path("calibration/<int:calibration_id>/apply", views.calibration_apply_view, name="calibration_apply"),
    path("configs/<int:config_id>/restore", views.config_restore_view, name="config_restore"),
    path("dashboard", dashboard_views.dashboard, name="dashboard"),
    path("groups/<int:group_id>", views.group_detail, name="group"),
    path("groups/", group_views.groups_page, name="groups"),
    path("groups/<int:group_id>/resolve", group_views.group_resolve_view, name="group_resolve"),
    path("groups/resolve-exact", group_views.groups_exact_resolve_view, name="groups_exact_resolve"),
    path("resolutions/<int:resolution_id>/undo", group_views.resolution_undo_view, name="resolution_undo"),
    path("videos/<int:video_id>/media", views.video_media, name="media"),
    path("videos/<int:video_id>/frames/<int:idx>.jpg", views.video_frame, name="frame"),
]
