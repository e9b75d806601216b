"""The review records in Django admin, read-only and for admins only (dedup.admin.ReadOnlyAdmin):
written by the review pages and commands, they are evidence, so nothing here edits them."""

from django.contrib import admin

from dedup.admin import ReadOnlyAdmin

from .models import Calibration, Claim, Decision, Resolution

VIDEO_SEARCH = ["video_a__rel_path", "video_b__rel_path"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "action",
        "video_a",
        "video_b",
        "user",
        "pair_label",
        "pair_score",
        "undone_at",
    ]
    list_filter = ["action", "pair_label", "created_at", ("undone_at", admin.EmptyFieldListFilter)]
    search_fields = [*VIDEO_SEARCH, "user__username"]
    list_select_related = ["video_a", "video_b", "user"]
    date_hierarchy = "created_at"


@admin.register(Resolution)
class ResolutionAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "scope", "groups", "duplicates", "freed_bytes", "user", "undone_at"]
    list_filter = ["scope", "created_at", ("undone_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username"]
    list_select_related = ["user"]


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ["pair", "user", "expires_at"]
    list_filter = ["expires_at"]
    search_fields = ["pair__video_a__rel_path", "pair__video_b__rel_path", "user__username"]
    list_select_related = ["pair", "user"]


@admin.register(Calibration)
class CalibrationAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "created_by",
        "target_precision",
        "n_duplicate",
        "n_not_duplicate",
        "ready",
        "base_config",
        "applied_config",
    ]
    list_filter = ["ready", "created_at"]
    search_fields = ["created_by__username"]
    list_select_related = ["created_by", "base_config", "applied_config"]
