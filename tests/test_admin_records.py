"""The review records and the config history in Django admin: read-only, for admins only; and
every config activation recorded with who made it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dedup.models import ConfigActivation, ScoringConfig, Verdict
from review.models import Calibration, Claim, Decision, Resolution

from . import factories as make

pytestmark = pytest.mark.django_db


def _records() -> dict[str, int]:
    """One row of each record admin shows, by its admin URL prefix."""
    a, b = make.videos(2, status="ready")
    pair = make.pair(a, b)
    moderator = make.user("mod-writer", "moderator")
    config = ScoringConfig.active()
    return {
        "dedup/configactivation": ConfigActivation.objects.get(config=config).pk,
        "dedup/verdict": Verdict.objects.create(video_a=a, video_b=b, kind="duplicate", canonical=a).pk,
        "review/decision": Decision.objects.create(
            pair=pair, video_a=a, video_b=b, action="confirm", user=moderator, pair_label="near_duplicate"
        ).pk,
        "review/resolution": Resolution.objects.create(
            scope="group", user=moderator, groups=1, duplicates=1, freed_bytes=10
        ).pk,
        "review/claim": Claim.objects.create(
            pair=pair, user=moderator, expires_at=timezone.now() + timedelta(minutes=5)
        ).pk,
        "review/calibration": Calibration.objects.create(
            target_precision=0.99, n_duplicate=1, n_not_duplicate=2, base_config=config, ready=False
        ).pk,
    }


def _staff(name: str, role: str):
    return make.user(name, role, is_staff=True)


def test_an_admin_reads_every_record_and_cannot_add_change_or_delete_one(client):
    records = _records()
    client.force_login(_staff("ada", "admin"))
    index = client.get("/admin/").content.decode()
    for prefix, pk in records.items():
        assert f"/admin/{prefix}/" in index, prefix
        listing = client.get(f"/admin/{prefix}/")
        assert listing.status_code == 200, prefix
        assert f"/admin/{prefix}/{pk}/change/" in listing.text, prefix
        assert f"/admin/{prefix}/add/" not in listing.text, prefix
        page = client.get(f"/admin/{prefix}/{pk}/change/")
        assert page.status_code == 200, prefix
        assert 'name="_save"' not in page.text, prefix  # view-only: no save button
        assert client.get(f"/admin/{prefix}/add/").status_code == 403, prefix
        assert client.get(f"/admin/{prefix}/{pk}/delete/").status_code == 403, prefix
        assert client.post(f"/admin/{prefix}/{pk}/delete/", {"post": "yes"}).status_code == 403, prefix
        assert client.post(f"/admin/{prefix}/{pk}/change/", {"_save": "Save"}).status_code == 403, prefix
        bulk = {"action": "delete_selected", "_selected_action": [pk], "post": "yes"}
        client.post(f"/admin/{prefix}/", bulk)
    assert (
        ConfigActivation.objects.count(),
        Verdict.objects.count(),
        Decision.objects.count(),
        Resolution.objects.count(),
        Claim.objects.count(),
        Calibration.objects.count(),
    ) == (1, 1, 1, 1, 1, 1)


def test_the_lists_filter_and_search(client):
    _records()
    client.force_login(_staff("ada", "admin"))
    assert "v0.mp4" in client.get("/admin/review/decision/", {"q": "v0.mp4"}).text
    assert "0 decisions" in client.get("/admin/review/decision/", {"q": "nothing-like-it"}).text
    assert client.get("/admin/review/decision/", {"action__exact": "confirm"}).status_code == 200
    assert client.get("/admin/dedup/verdict/", {"kind__exact": "duplicate"}).status_code == 200
    assert client.get("/admin/dedup/configactivation/", {"via__exact": "default"}).status_code == 200
    assert client.get("/admin/review/claim/", {"q": "mod-writer"}).status_code == 200


@pytest.mark.parametrize("role", ["moderator", "viewer"])
def test_moderators_and_viewers_see_no_new_record_in_admin(client, role):
    records = _records()
    client.force_login(_staff("mo", role))
    index = client.get("/admin/")
    assert index.status_code == 200
    for prefix, pk in records.items():
        assert f"/admin/{prefix}/" not in index.text, prefix
        assert client.get(f"/admin/{prefix}/").status_code == 403, prefix
        assert client.get(f"/admin/{prefix}/{pk}/change/").status_code == 403, prefix
    # what they saw before stays: the library, read-only
    assert client.get("/admin/dedup/scoringconfig/").status_code == 200


def test_a_superuser_reads_them_too(client):
    records = _records()
    client.force_login(make.user("root", is_staff=True, is_superuser=True))
    for prefix, pk in records.items():
        assert client.get(f"/admin/{prefix}/{pk}/change/").status_code == 200, prefix
        assert client.get(f"/admin/{prefix}/add/").status_code == 403, prefix


# ---------------------------------------------------------------- who activated a config


def test_the_first_default_config_records_its_activation_by_nobody():
    config = ScoringConfig.active()
    ScoringConfig.active()
    (activation,) = ConfigActivation.objects.all()
    assert (activation.config, activation.activated_by, activation.via) == (config, None, "default")
    assert activation.activated_at == config.activated_at


def test_the_admin_action_records_who_activated_the_config(client):
    old = ScoringConfig.active()
    new = ScoringConfig.objects.create(name="strict", near_threshold=0.9)
    ada = _staff("ada", "admin")
    client.force_login(ada)
    client.post("/admin/dedup/scoringconfig/", {"action": "activate", "_selected_action": [new.pk]})
    last = ConfigActivation.objects.first()
    assert (last.config, last.previous, last.activated_by, last.via) == (new, old, ada, "admin")
    new.refresh_from_db()
    assert last.activated_at == new.activated_at
    # the list and the config's page say who
    listing = client.get("/admin/dedup/scoringconfig/").text
    assert '<td class="field-activated_by">ada</td>' in listing
    page = client.get(f"/admin/dedup/scoringconfig/{new.pk}/change/").text
    assert "by ada (Django admin), replacing #" in page


def test_saving_new_values_in_admin_records_the_new_version_by_its_author(client):
    old = ScoringConfig.active()
    ada = _staff("ada", "admin")
    client.force_login(ada)
    fields = {f: getattr(old, f) for f in ("name", "notes", *ScoringConfig.PARAM_FIELDS)}
    client.post(
        f"/admin/dedup/scoringconfig/{old.pk}/change/", {**fields, "near_threshold": 0.88, "_save": "Save"}
    )
    new = ScoringConfig.active()
    assert new != old
    last = ConfigActivation.objects.first()
    assert (last.config, last.previous, last.activated_by, last.via) == (new, old, ada, "admin")


def test_a_config_once_active_cannot_be_deleted_with_its_history(client):
    old = ScoringConfig.active()
    new = ScoringConfig.objects.create(name="strict", near_threshold=0.9)
    client.force_login(_staff("ada", "admin"))
    client.post("/admin/dedup/scoringconfig/", {"action": "activate", "_selected_action": [new.pk]})
    page = client.post(f"/admin/dedup/scoringconfig/{old.pk}/delete/", {"post": "yes"})
    assert page.status_code == 200 and "<title>Cannot delete scoring config" in page.text
    assert ScoringConfig.objects.filter(pk=old.pk).exists()
