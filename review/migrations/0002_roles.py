"""Roles as Django groups: moderator (review), admin (also thresholds and users), viewer (read-only).

On a fresh database the permission rows do not exist yet here (Django creates them after all
migrations), so the grants are made after migrate by dedup.access.roles_grant (post_migrate)."""

from django.db import migrations


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name in ("moderator", "admin", "viewer"):
        Group.objects.get_or_create(name=name)
    admin = Group.objects.get(name="admin")
    perms = Permission.objects.filter(content_type__app_label__in=["dedup", "review", "auth"])
    admin.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0001_initial"),
        ("dedup", "0003_scoring_defaults"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
