import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from .media import make_clip

os.environ.setdefault("ASTRADUP_LOG_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip(media_dir) -> Path:
    """A 6 s 160x120 clip with a tone: the workhorse of extraction tests."""
    return make_clip(media_dir / "clip.mp4", source="mandelbrot", duration=6, tone=440)


@pytest.fixture(scope="session")
def other_clip(media_dir) -> Path:
    return make_clip(media_dir / "other.mp4", source="life", duration=6, tone=None)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def moderator(db) -> User:
    user = User.objects.create_user("mod", password="pw")
    user.groups.add(Group.objects.get_or_create(name="moderator")[0])
    return user
