from django.urls import path

from . import views

app_name = "review"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("next", views.next_pair_view, name="next"),
    path("pairs/<int:pair_id>", views.pair_detail, name="pair"),
    path("pairs/<int:pair_id>/decide", views.pair_decide_view, name="decide"),
    path("undo", views.undo, name="undo"),
    path("groups/<int:group_id>", views.group_detail, name="group"),
    path("videos/<int:video_id>/media", views.video_media, name="media"),
    path("videos/<int:video_id>/frames/<int:idx>.jpg", views.video_frame, name="frame"),
]
