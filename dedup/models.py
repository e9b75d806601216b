import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from pgvector.django import HalfVectorField

from .matching.signals import ScoringParams


class ScoringConfigQuerySet(models.QuerySet):
    def with_activated_by(self) -> "ScoringConfigQuerySet":
        """Each config with `last_activated_by`: the username of whoever made it active last
        (None: never activated, or by a command)."""
        last = ConfigActivation.objects.filter(config=models.OuterRef("pk")).order_by("-activated_at", "-pk")
        return self.annotate(last_activated_by=models.Subquery(last.values("activated_by__username")[:1]))


class ScoringConfig(models.Model):
    """Fusion weights and class thresholds. Exactly one is active; every pair records which scored it."""

    name = models.CharField(max_length=100, default="default")
    is_active = models.BooleanField(default=False)
    visual_weight = models.FloatField(default=0.65)
    audio_weight = models.FloatField(default=0.25)
    metadata_weight = models.FloatField(default=0.10)
    exact_threshold = models.FloatField(default=0.95)
    near_threshold = models.FloatField(default=0.85)
    similar_threshold = models.FloatField(default=0.70)
    partial_threshold = models.FloatField(
        default=0.73, help_text="Minimum segment score for a clip contained in another video to be 'partial'."
    )
    frame_match_threshold = models.FloatField(
        default=0.60, help_text="Frame-level similarity above which two frames count as the same shot."
    )
    notes = models.TextField(blank=True)
    based_on = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The config this one was derived from (calibration starts from the active one).",
    )
    calibration = models.JSONField(
        default=dict,
        blank=True,
        help_text="How a calibrated config was chosen: labels, cross-validated precision and recall.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    objects = ScoringConfigQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_config"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}{' (active)' if self.is_active else ''}"

    def clean(self) -> None:
        weights = (self.visual_weight, self.audio_weight, self.metadata_weight)
        if any(w < 0 for w in weights):
            raise ValidationError("Weights must be zero or positive.")
        if sum(weights) <= 0:
            raise ValidationError("At least one weight must be positive.")
        if not (0 < self.similar_threshold <= self.near_threshold <= self.exact_threshold <= 1):
            raise ValidationError("Thresholds must be ordered: 0 < similar ≤ near duplicate ≤ exact ≤ 1.")
        if not (0 < self.partial_threshold <= 1 and 0 < self.frame_match_threshold <= 1):
            raise ValidationError("Partial and frame-match thresholds must lie in (0, 1].")

    @classmethod
    def active(cls) -> "ScoringConfig":
        config = cls.objects.filter(is_active=True).first()
        if config is None:
            now = timezone.now()
            config, created = cls.objects.get_or_create(
                is_active=True, defaults={"name": "default", "activated_at": now}
            )
            if created:
                ConfigActivation.objects.create(
                    config=config, activated_at=now, via=ConfigActivation.Via.DEFAULT
                )
        return config

    def params_equal(self, other: "ScoringConfig") -> bool:
        return all(getattr(self, f) == getattr(other, f) for f in self.PARAM_FIELDS)

    def params(self) -> ScoringParams:
        """The weights and thresholds as the scorer takes them."""
        return ScoringParams(**{f: getattr(self, f) for f in self.PARAM_FIELDS})

    PARAM_FIELDS = (
        "visual_weight",
        "audio_weight",
        "metadata_weight",
        "exact_threshold",
        "near_threshold",
        "similar_threshold",
        "partial_threshold",
        "frame_match_threshold",
    )


class ConfigActivation(models.Model):
    """Which config became the active one, when, by whom and from where: the history the
    calibration page and Django admin show. A config that was ever active is protected from
    deletion, so that the pairs and decisions scored under it keep a readable record."""

    class Via(models.TextChoices):
        ADMIN = "admin", "Django admin"
        CALIBRATION = "calibration", "calibration applied"
        RESTORE = "restore", "restored on the calibration page"
        COMMAND = "command", "management command"
        DEFAULT = "default", "first default config"
        EARLIER = "earlier", "before activations were recorded"

    config = models.ForeignKey(ScoringConfig, on_delete=models.PROTECT, related_name="activations")
    previous = models.ForeignKey(
        ScoringConfig,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The config that was active until then.",
    )
    activated_at = models.DateTimeField(default=timezone.now, db_index=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty for a management command or the automatic first config.",
    )
    via = models.CharField(max_length=20, choices=Via.choices)

    class Meta:
        ordering = ["-activated_at", "-pk"]

    def __str__(self) -> str:
        return f"config #{self.config_id} activated {self.activated_at:%Y-%m-%d %H:%M} by {self.activated_by or '-'}"


class DuplicateGroup(models.Model):
    canonical = models.ForeignKey("Video", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    suggested_keep = models.ForeignKey(
        "Video", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"group #{self.pk}"


class Video(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    path = models.TextField(unique=True, help_text="Absolute path on the shared media volume.")
    root = models.TextField(blank=True, help_text="The folder this file was ingested from.")
    rel_path = models.TextField(db_index=True, help_text="Path relative to the ingested folder.")
    file_name = models.CharField(max_length=512, db_index=True)
    size = models.BigIntegerField(null=True, blank=True)
    mtime = models.FloatField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    identical_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="identical_copies",
        help_text="Set when this file is byte-identical (same SHA-256) to an earlier one.",
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(
        max_length=300, blank=True, help_text="The extraction process that claimed it last: host:pid."
    )
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last sign of life of the extraction process holding the claim (ASTRADUP_HEARTBEAT_SECONDS).",
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    matched_at = models.DateTimeField(null=True, blank=True)

    container = models.CharField(max_length=100, blank=True)
    duration = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    sar = models.FloatField(
        null=True,
        blank=True,
        help_text="Pixel aspect ratio: players show the picture width × sar wide (anamorphic video ≠ 1); "
        "empty until read (videos extracted before it was: `manage.py reextract`).",
    )
    fps = models.FloatField(null=True, blank=True)
    video_codec = models.CharField(max_length=50, blank=True)
    audio_codec = models.CharField(max_length=50, blank=True)
    bitrate = models.BigIntegerField(null=True, blank=True)
    has_audio = models.BooleanField(null=True)

    feature_version = models.PositiveIntegerField(null=True, blank=True)
    backbone = models.CharField(max_length=50, blank=True)
    crop = models.JSONField(null=True, blank=True, help_text="Black bars removed: top, bottom, left, right.")
    embedding = HalfVectorField(null=True, blank=True, help_text="Mean of the informative frame embeddings.")
    audio_fingerprint = models.BinaryField(null=True, blank=True)
    mfcc = models.BinaryField(null=True, blank=True)
    audio_silent = models.BooleanField(default=False)
    timings = models.JSONField(default=dict, blank=True, help_text="CPU-seconds per extraction stage.")
    layout = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text="Sub-pictures found (picture-in-picture, stacks, split screens): one entry per "
        "view, its box as fractions of the frame (top, bottom, left, right); see FrameView.",
    )

    group = models.ForeignKey(
        DuplicateGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="videos"
    )

    class Meta:
        ordering = ["rel_path"]

    def __str__(self) -> str:
        return self.rel_path

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)

    @property
    def shown_size(self) -> str:
        """The stored size, and the size players show where the pixels are not square."""
        if not self.width:
            return "?"
        stored = f"{self.width}×{self.height}"
        if self.sar in (None, 1.0):  # not read yet, or square (see features.probe.pixel_aspect)
            return stored
        return f"{stored} shown as {round(self.width * self.sar)}×{self.height}"

    def keep_facts(self) -> dict:
        """What choosing the copy to keep looks at (see dedup.matching.groups.keep_best)."""
        return {
            "id": self.pk,
            "pixels": self.pixels,
            "duration": self.duration or 0.0,
            "codec": self.video_codec,
            "sha256": self.sha256,
            "mtime": self.mtime or 0.0,
        }

    def mark_failed(self, reason: str) -> None:
        self.status = self.Status.FAILED
        self.error = reason[:2000]
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "error", "finished_at", "updated_at"])


class Frame(models.Model):
    """One sampled frame (1 fps; up to 4 fps for short videos). Embeddings of all backbones share a
    column; HNSW indexes are partial expression indexes per backbone over the `indexed` frames
    (one per second, see migration 0005), each at its own dimension."""

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="frames")
    idx = models.PositiveIntegerField()
    t = models.FloatField(help_text="Seconds from the start.")
    informative = models.BooleanField(default=True)
    indexed = models.BooleanField(
        default=True, help_text="In the candidate index (one frame per second of video)."
    )
    phash = models.BigIntegerField()
    phash_b0 = models.SmallIntegerField(db_index=True)
    phash_b1 = models.SmallIntegerField(db_index=True)
    phash_b2 = models.SmallIntegerField(db_index=True)
    phash_b3 = models.SmallIntegerField(db_index=True)
    thumb = models.BinaryField(
        null=True,
        blank=True,
        help_text="16x16 grey thumbnail (uint8), to confirm copies the embedding doubts.",
    )
    model = models.CharField(max_length=50)
    embedding = HalfVectorField()
    index_embedding = HalfVectorField(
        null=True,
        blank=True,
        help_text="The embedding projected for the candidate index (see IndexProjection).",
    )

    class Meta:
        ordering = ["video_id", "idx"]
        constraints = [models.UniqueConstraint(fields=["video", "idx"], name="frame_video_idx")]

    def __str__(self) -> str:
        return f"video {self.video_id} @ {self.t:.2f} s"


class FrameView(models.Model):
    """One sampled frame's sub-picture (a box of Video.layout) embedded on its own: a copy shrunk
    into a picture-in-picture, or one side of a stack, is found through its box where its whole
    frame is not (dedup.features.views). Rows only for laid-out videos, at the frames of the
    stretches laid out; kept apart from Frame so that every reader of whole frames reads them
    as before. Its HNSW index (migration 0014) holds the full embeddings; `index_embedding` is
    the projection, for searching the frame table's projected index with a view."""

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="views")
    view = models.PositiveSmallIntegerField(help_text="1.. as in Video.layout")
    idx = models.PositiveIntegerField(help_text="The frame (Frame.idx) the box was cut from.")
    t = models.FloatField()
    informative = models.BooleanField(default=True)
    indexed = models.BooleanField(default=True)
    phash = models.BigIntegerField()
    thumb = models.BinaryField(null=True, blank=True)
    model = models.CharField(max_length=50)
    embedding = HalfVectorField()
    index_embedding = HalfVectorField(null=True, blank=True)

    class Meta:
        ordering = ["video_id", "view", "idx"]
        constraints = [
            models.UniqueConstraint(fields=["video", "view", "idx"], name="frameview_video_view_idx")
        ]

    def __str__(self) -> str:
        return f"video {self.video_id} view {self.view} @ {self.t:.2f} s"


class IndexProjection(models.Model):
    """One backbone's projection of frame embeddings for the candidate index (manage.py
    fit_index_projection). While it is not `ready` (a fit is filling it), candidate search reads
    every frame's full embedding; once it is, frames carrying a projection leave the full index."""

    backbone = models.CharField(max_length=50, unique=True)
    dim = models.PositiveIntegerField()
    basis = models.BinaryField(help_text="float32 (embedding dim x dim), row-major.")
    frames = models.PositiveIntegerField(help_text="Frames the basis was fitted on.")
    ready = models.BooleanField(
        default=False, help_text="Every frame of this backbone carries its projection."
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.backbone} -> {self.dim}"

    def matrix(self) -> np.ndarray:
        return np.frombuffer(bytes(self.basis), dtype="<f4").reshape(-1, self.dim)


class AudioHash(models.Model):
    """Distinct Chromaprint sub-fingerprints of a video: an inverted index for audio candidates."""

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="audio_hashes")
    value = models.IntegerField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["video", "value"], name="audiohash_video_value")]

    def __str__(self) -> str:
        return f"video {self.video_id}: {self.value}"


class Pair(models.Model):
    class Label(models.TextChoices):
        EXACT = "exact", "exact duplicate"
        NEAR = "near_duplicate", "near duplicate"
        PARTIAL = "partial", "partial copy"
        SIMILAR = "similar", "similar"
        DIFFERENT = "different", "different"

    video_a = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="pairs_as_a")
    video_b = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="pairs_as_b")
    score = models.FloatField(db_index=True)
    label = models.CharField(max_length=20, choices=Label.choices, db_index=True)
    visual = models.FloatField(null=True)
    audio = models.FloatField(null=True)
    metadata = models.FloatField(null=True)
    breakdown = models.JSONField(default=dict)
    segments = models.JSONField(default=dict)
    config = models.ForeignKey(ScoringConfig, null=True, on_delete=models.SET_NULL, related_name="pairs")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    DUPLICATE_LABELS = (Label.EXACT, Label.NEAR, Label.PARTIAL)

    class Meta:
        ordering = ["-score"]
        constraints = [
            models.UniqueConstraint(fields=["video_a", "video_b"], name="pair_unique"),
            models.CheckConstraint(condition=models.Q(video_a__lt=models.F("video_b")), name="pair_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.video_a_id}~{self.video_b_id} {self.label} {self.score:.3f}"

    @property
    def is_duplicate(self) -> bool:
        return self.label in self.DUPLICATE_LABELS


class Verdict(models.Model):
    """A moderator's settled answer for two videos. Keyed by the videos, not by the Pair row, so it
    survives re-extraction and re-scoring: a pair judged "not a duplicate" never returns to the queue.
    Written by review (its decisions); read here too, by groups and exports, so it lives beside Pair
    (review depends on dedup, never the reverse). The table was review_verdict before migration 0013."""

    class Kind(models.TextChoices):
        DUPLICATE = "duplicate", "duplicate"
        NOT_DUPLICATE = "not_duplicate", "not a duplicate"

    video_a = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="+")
    video_b = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    canonical = models.ForeignKey(Video, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["video_a", "video_b"], name="verdict_unique"),
            models.CheckConstraint(
                condition=models.Q(video_a__lt=models.F("video_b")), name="verdict_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.video_a_id}~{self.video_b_id}: {self.kind}"


class Job(models.Model):
    """Long work done in the background (a calibration, a re-score, a re-extraction, an import),
    with its progress, so the pages show it instead of waiting on it in a request (issue 28).

    A job either runs as one task (`dedup.services.jobs.job_run`: claimed, progress, done or failed)
    or follows the extraction of a set of videos (`videos`: done when each is failed, or ready and
    matched), since extraction is one task per video."""

    class Kind(models.TextChoices):
        CALIBRATION = "calibration", "calibration"
        RESCORE = "rescore", "re-score after a config change"
        REEXTRACT = "reextract", "re-extraction"
        IMPORT = "import", "import"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    LIVE = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0, help_text="Steps or videos; 0 until known.")
    message = models.CharField(max_length=500, blank=True, help_text="Where it is, or what it came to.")
    error = models.TextField(blank=True, help_text="Why it failed.")
    params = models.JSONField(default=dict, blank=True, help_text="What it was asked to do.")
    result = models.JSONField(default=dict, blank=True, help_text="What it made (e.g. the calibration id).")
    videos = models.ManyToManyField(Video, blank=True, related_name="jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"job #{self.pk} {self.kind} {self.status}"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE

    @property
    def percent(self) -> int | None:
        return round(100 * self.done / self.total) if self.total else None
