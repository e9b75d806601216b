from django.contrib import admin
from django.utils.html import format_html, format_html_join

from .access import can_administer
from .models import (
    ConfigActivation,
    DuplicateGroup,
    IndexProjection,
    Job,
    Pair,
    ScoringConfig,
    Verdict,
    Video,
)
from .services.configs import config_activate


class ReadOnlyAdmin(admin.ModelAdmin):
    """The review records and the config history: an audit trail, written only by the actions
    that make them (decide, calibrate, activate), so nobody adds, edits or deletes them here.
    Shown to admins (the role, or a superuser) only: moderators hold view permissions on both
    apps, and with them would see claims and calibrations they never saw in admin before."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return can_administer(request.user) and super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return can_administer(request.user) and super().has_module_permission(request)


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
        "activated_by",
    ]
    list_filter = ["is_active"]
    readonly_fields = [
        "is_active",
        "based_on",
        "calibration",
        "created_at",
        "activated_at",
        "activation_history",
    ]
    actions = ["activate"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_activated_by()

    @admin.display(description="activated by", ordering="last_activated_by")
    def activated_by(self, obj) -> str:
        return obj.last_activated_by or "-"

    @admin.display(description="activations")
    def activation_history(self, obj) -> str:
        # read-only text, not an inline: an inline's formset would have to come back with every save
        rows = obj.activations.select_related("activated_by", "previous") if obj.pk else []
        return (
            format_html_join(
                format_html("<br>"),
                "{} by {} ({}), replacing {}",
                (
                    (
                        f"{a.activated_at:%Y-%m-%d %H:%M:%S}",
                        a.activated_by or "-",
                        a.get_via_display(),
                        a.previous or "-",
                    )
                    for a in rows
                ),
            )
            or "never"
        )

    @admin.action(description="Make active and re-score every pair (in the background)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one config.", level="error")
            return
        config = config_activate(config=queryset.get(), via="admin", user=request.user)
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
        config_activate(config=obj, via="admin", user=request.user)
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


@admin.register(ConfigActivation)
class ConfigActivationAdmin(ReadOnlyAdmin):
    """Which config was made active when, by whom (empty: a command), and from where."""

    list_display = ["activated_at", "config", "previous", "activated_by", "via"]
    list_filter = ["via", "activated_at"]
    search_fields = ["config__name", "activated_by__username"]
    list_select_related = ["config", "previous", "activated_by"]
    date_hierarchy = "activated_at"


@admin.register(Verdict)
class VerdictAdmin(ReadOnlyAdmin):
    list_display = ["id", "video_a", "video_b", "kind", "canonical", "decided_by", "decided_at"]
    list_filter = ["kind", "decided_at"]
    search_fields = ["video_a__rel_path", "video_b__rel_path", "decided_by__username"]
    list_select_related = ["video_a", "video_b", "canonical", "decided_by"]


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
