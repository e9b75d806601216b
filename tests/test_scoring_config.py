import pytest
from django.core.exceptions import ValidationError

from dedup.models import ScoringConfig

pytestmark = pytest.mark.django_db


def test_the_default_config_is_the_design():
    config = ScoringConfig.active()
    assert (config.visual_weight, config.audio_weight, config.metadata_weight) == (0.65, 0.25, 0.10)
    assert (config.exact_threshold, config.near_threshold, config.similar_threshold) == (0.95, 0.85, 0.70)
    assert ScoringConfig.active().pk == config.pk


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"audio_weight": -0.1}, "zero or positive"),
        ({"visual_weight": 0, "audio_weight": 0, "metadata_weight": 0}, "positive"),
        ({"near_threshold": 0.97}, "ordered"),
        ({"similar_threshold": 0.9}, "ordered"),
    ],
)
def test_invalid_weights_and_thresholds_are_refused(changes, message):
    config = ScoringConfig(**changes)
    with pytest.raises(ValidationError, match=message):
        config.full_clean()


def test_only_one_config_is_active():
    from django.db import IntegrityError, transaction

    ScoringConfig.active()
    with pytest.raises(IntegrityError), transaction.atomic():
        ScoringConfig.objects.create(is_active=True, name="second")


@pytest.mark.django_db(transaction=True)
def test_the_admin_action_activates_a_config_and_queues_the_rescore(admin_client):
    from django_q.models import OrmQ

    old = ScoringConfig.active()
    new = ScoringConfig.objects.create(name="strict", near_threshold=0.9)
    response = admin_client.post(
        "/admin/dedup/scoringconfig/", {"action": "activate", "_selected_action": [new.pk]}, follow=True
    )
    assert response.status_code == 200 and b"is active" in response.content
    new.refresh_from_db()
    old.refresh_from_db()
    assert new.is_active and not old.is_active and new.activated_at is not None
    assert [q.args() for q in OrmQ.objects.all() if q.func() == "dedup.tasks.rescore_pairs"] == [(new.pk,)]
