from django.contrib import admin

from .models import DuplicateGroup, IndexProjection, Pair, ScoringConfig, Video
from .services import config_activate


@admin.register(ScoringConfig)
class ScoringConfigAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "is_active",
        "visual_weight",
        "audio_weight",
        "metadata_weight",
        "exact_threshold",
        "near_threshold",
        "similar_threshold",
        "partial_threshold",
        "based_on",
        "created_at",
        "activated_at",
    ]
    list_filter = ["is_active"]
    readonly_fields = ["is_active", "based_on", "calibration", "created_at", "activated_at"]
    actions = ["activate"]

    @admin.action(description="Make active and re-score every pair (in the background)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one config.", level="error")
            return
        config = config_activate(config=queryset.get())
        self.message_user(request, f"Config #{config.pk} is active; pairs are being re-scored.")

    def save_model(self, request, obj, form, change):
        # editing the active config changes what every pair should say: re-score them
        super().save_model(request, obj, form, change)
        if obj.is_active and change:
            config_activate(config=obj)


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = ["rel_path", "status", "duration", "width", "height", "group", "error"]
    list_filter = ["status", "backbone"]
    search_fields = ["rel_path", "file_name", "sha256"]
    readonly_fields = ["embedding", "audio_fingerprint", "mfcc", "timings"]
    exclude = ["embedding", "audio_fingerprint", "mfcc"]


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    list_display = ["id", "video_a", "video_b", "score", "label", "visual", "audio", "metadata"]
    list_filter = ["label"]
    raw_id_fields = ["video_a", "video_b"]


@admin.register(DuplicateGroup)
class DuplicateGroupAdmin(admin.ModelAdmin):
    list_display = ["id", "canonical", "suggested_keep", "updated_at"]
    raw_id_fields = ["canonical", "suggested_keep"]


@admin.register(IndexProjection)
class IndexProjectionAdmin(admin.ModelAdmin):
    """Read-only: a projection is fitted and filled by `manage.py fit_index_projection`."""

    list_display = ["backbone", "dim", "frames", "ready", "created_at"]
    fields = ["backbone", "dim", "frames", "ready", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
