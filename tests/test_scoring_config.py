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


# ---- Django admin: the admin role, and versions instead of edits of the active config


def _staff_admin():
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("ada", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))  # the group the migrations made
    return user


def _form(config: ScoringConfig, **changes) -> dict:
    fields = ("name", "notes", *ScoringConfig.PARAM_FIELDS)
    return {**{f: getattr(config, f) for f in fields}, **changes, "_save": "Save"}


def test_the_admin_role_on_a_freshly_migrated_database_can_change_the_scoring_config(client):
    config = ScoringConfig.active()
    client.force_login(_staff_admin())
    listing = client.get("/admin/dedup/scoringconfig/")
    assert listing.status_code == 200 and f"/admin/dedup/scoringconfig/{config.pk}/change/" in listing.text
    assert client.get(f"/admin/dedup/scoringconfig/{config.pk}/change/").status_code == 200
    response = client.post(
        f"/admin/dedup/scoringconfig/{config.pk}/change/", _form(config, near_threshold=0.87)
    )
    assert response.status_code == 302, response.content
    assert ScoringConfig.active().near_threshold == 0.87
    # and the rest of what an admin looks after: videos, pairs, groups, users
    for url in (
        "/admin/dedup/video/",
        "/admin/dedup/pair/",
        "/admin/dedup/duplicategroup/",
        "/admin/auth/user/",
    ):
        assert client.get(url).status_code == 200, url


def test_the_admin_role_sees_users_but_cannot_change_them_into_superusers(client):
    from django.contrib.auth.models import Group

    admin = _staff_admin()
    client.force_login(admin)
    perms = set(Group.objects.get(name="admin").permissions.values_list("codename", flat=True))
    assert "view_user" in perms and not {"change_user", "add_user", "change_group"} & perms
    response = client.post(
        f"/admin/auth/user/{admin.pk}/change/",
        {"username": admin.username, "is_staff": "on", "is_superuser": "on", "is_active": "on"},
    )
    assert response.status_code == 403
    admin.refresh_from_db()
    assert not admin.is_superuser


def test_moderators_and_viewers_get_read_only_permissions():
    from django.contrib.auth.models import Group

    for role in ("moderator", "viewer"):
        perms = set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        assert "view_scoringconfig" in perms and "view_decision" in perms
        assert not {p for p in perms if not p.startswith("view_")}


def test_the_role_grants_can_run_again_without_harm():
    from django.contrib.auth.models import Group

    from dedup.access import roles_grant

    before = Group.objects.get(name="admin").permissions.count()
    roles_grant()
    assert Group.objects.get(name="admin").permissions.count() == before > 0


@pytest.mark.django_db(transaction=True)
def test_saving_the_active_config_in_admin_makes_a_new_version_and_keeps_the_old(client):
    from django_q.models import OrmQ

    old = ScoringConfig.active()
    client.force_login(_staff_admin())
    response = client.post(
        f"/admin/dedup/scoringconfig/{old.pk}/change/", _form(old, near_threshold=0.88), follow=True
    )
    assert response.status_code == 200 and b"now active" in response.content
    new = ScoringConfig.active()
    old.refresh_from_db()
    assert new.pk != old.pk and new.based_on == old and new.near_threshold == 0.88
    assert old.near_threshold == 0.85 and not old.is_active  # restorable from the calibration page
    assert [q.args() for q in OrmQ.objects.all() if q.func() == "dedup.tasks.rescore_pairs"] == [(new.pk,)]


def test_renaming_the_active_config_edits_it_in_place(client):
    config = ScoringConfig.active()
    client.force_login(_staff_admin())
    client.post(f"/admin/dedup/scoringconfig/{config.pk}/change/", _form(config, name="house rules"))
    assert list(ScoringConfig.objects.values_list("pk", "name")) == [(config.pk, "house rules")]


def test_the_active_config_cannot_be_deleted_in_admin(client):
    active = ScoringConfig.active()
    old = ScoringConfig.objects.create(name="old")
    client.force_login(_staff_admin())
    change = client.get(f"/admin/dedup/scoringconfig/{active.pk}/change/")
    assert f"/admin/dedup/scoringconfig/{active.pk}/delete/" not in change.text
    assert client.get(f"/admin/dedup/scoringconfig/{active.pk}/delete/").status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [active.pk, old.pk], "post": "yes"}
    # refused: the active config's activation history protects it (a 403 before that history)
    refused = client.post("/admin/dedup/scoringconfig/", bulk)
    assert refused.status_code == 200 and "<title>Cannot delete" in refused.text
    assert ScoringConfig.objects.count() == 2
    bulk["_selected_action"] = [old.pk]  # an inactive version can go
    client.post("/admin/dedup/scoringconfig/", bulk)
    assert list(ScoringConfig.objects.values_list("pk", flat=True)) == [active.pk]
