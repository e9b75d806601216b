from django.contrib import admin

from .models import DuplicateGroup, Pair, ScoringConfig, Video


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
        "created_at",
    ]
    list_filter = ["is_active"]


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
