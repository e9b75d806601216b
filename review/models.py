from django.conf import settings
from django.db import models

from dedup.models import Pair, Video


class Decision(models.Model):
    """The audit row of every moderator action; the labels that calibration learns from."""

    class Action(models.TextChoices):
        CONFIRM = "confirm", "confirm duplicate"
        NOT_DUPLICATE = "not_duplicate", "not a duplicate"
        MERGE = "merge", "merge"
        SKIP = "skip", "skip"
        UNDO = "undo", "undo"

    pair = models.ForeignKey(Pair, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    video_a = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="+")
    video_b = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    canonical = models.ForeignKey(Video, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # what the machine said when the human decided: calibration compares the two
    pair_score = models.FloatField(null=True, blank=True)
    pair_label = models.CharField(max_length=20, blank=True)
    breakdown = models.JSONField(default=dict, blank=True)
    config = models.ForeignKey("dedup.ScoringConfig", null=True, blank=True, on_delete=models.SET_NULL)
    undone_at = models.DateTimeField(null=True, blank=True)
    undoes = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolution = models.ForeignKey(
        "Resolution",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="decisions",
        help_text="The group resolution this decision was part of (undone together).",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.action} {self.video_a_id}~{self.video_b_id} by {self.user_id}"


class Resolution(models.Model):
    """One group action (keep one copy, the rest are its duplicates), or one bulk resolve of every
    exact group: the audit row of the whole, its decisions pointing at it, undone as one."""

    class Scope(models.TextChoices):
        GROUP = "group", "one group"
        EXACT = "exact", "all exact groups"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="resolutions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    groups = models.PositiveIntegerField(help_text="Groups resolved.")
    duplicates = models.PositiveIntegerField(help_text="Videos marked duplicates of a kept copy.")
    freed_bytes = models.BigIntegerField(help_text="Size of those duplicates: what deleting them frees.")
    kept = models.ManyToManyField(
        Video, related_name="+", help_text="The copies made canonical of their group by this resolution."
    )
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"resolution #{self.pk}: {self.groups} {self.get_scope_display()} by {self.user_id}"


class Claim(models.Model):
    """A pair shown to one moderator; others do not get it until the claim expires."""

    pair = models.OneToOneField(Pair, on_delete=models.CASCADE, related_name="claim")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"pair {self.pair_id} claimed by {self.user_id} until {self.expires_at:%H:%M:%S}"


class Calibration(models.Model):
    """One calibration run over the moderators' labels: the proposal and the evidence for it."""

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_precision = models.FloatField()
    n_duplicate = models.PositiveIntegerField()
    n_not_duplicate = models.PositiveIntegerField()
    base_config = models.ForeignKey(
        "dedup.ScoringConfig", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    ready = models.BooleanField(help_text="Enough labels of each kind to propose a config.")
    report = models.JSONField(default=dict)
    applied_config = models.ForeignKey(
        "dedup.ScoringConfig", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"calibration #{self.pk} ({self.n_duplicate} duplicate / {self.n_not_duplicate} not)"

    @property
    def labels_needed(self) -> str:
        needed = self.report.get("needed", {})
        return (
            f"{needed.get('duplicate', 0)} more duplicates and "
            f"{needed.get('not_duplicate', 0)} more non-duplicates are needed"
        )
