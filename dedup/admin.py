from django.contrib import admin

from .models import DuplicateGroup, IndexProjection, Job, Pair, ScoringConfig, Video
from .services.configs import config_activate


@admin.register(ScoringConfig)
class ScoringConfigAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "is_active",
        *ScoringConfig.PARAM_FIELDS,
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
        stored = ScoringConfig.objects.get(pk=obj.pk) if change else None
        if stored is None or not stored.is_active or obj.params_equal(stored):
            # a new config, an inactive one, or only the name/notes of the active one: no re-score
            super().save_model(request, obj, form, change)
            return
        # the active config's values are what every pair was scored with, and what calibration
        # restores: new weights or thresholds become a new version, the old row stays as it was
        obj.pk = None
        obj._state.adding = True
        obj.is_active, obj.activated_at, obj.based_on, obj.calibration = False, None, stored, {}
        super().save_model(request, obj, form, False)
        config_activate(config=obj)
        self.message_user(
            request,
            f"Saved as config #{obj.pk}, now active (pairs are being re-scored); #{stored.pk} is kept "
            "and can be restored from the calibration page.",
        )

    def has_delete_permission(self, request, obj=None):
        # the active config scores every pair: it can be replaced, not deleted
        if obj is not None and obj.is_active:
            return False
        return super().has_delete_permission(request, obj)


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


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Jobs are written by their work only: seen here, never edited (the jobs page shows them too)."""

    list_display = [
        "id",
        "kind",
        "status",
        "done",
        "total",
        "message",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["message", "error"]
    readonly_fields = [f.name for f in Job._meta.get_fields() if f.concrete and f.name != "videos"]
    exclude = ["videos"]  # thousands of videos: their count is `total`

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
