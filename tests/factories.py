"""Test data builders: how to make a plain user, Video or Pair row is written once here, so a test
spells out only what it is about (a role, a label, the facts a keep-choice weighs).

Plain functions rather than a factory library: the rows are simple and each test names its own
values; anything a builder does not default is a keyword passed straight to the model."""

from typing import Any

from django.contrib.auth.models import Group, User

from dedup.matching.breakdown import Breakdown, Json, Segments
from dedup.models import Frame, Pair, ScoringConfig, Video

LIBRARY = "/lib"  # where the rows say their files lie; nothing is read from it


def user(name: str, role: str | None = None, *, password: str = "pw", **fields: Any) -> User:
    """A user in the group of `role` (None: in no group, an outsider). The group is fetched or made:
    a transactional test flushes the groups the migrations created."""
    person = User.objects.create_user(name, password=password, **fields)
    if role is not None:
        person.groups.add(Group.objects.get_or_create(name=role)[0])
    return person


def video(name: str, **facts: Any) -> Video:
    """A video row at /lib/<name> (no file behind it unless `path` says where); `facts` are any
    Video fields (status, width, duration, ...), `path` and `rel_path` included."""
    return Video.objects.create(**{"path": f"{LIBRARY}/{name}", "rel_path": name, "file_name": name, **facts})


def videos(count: int, **facts: Any) -> list[Video]:
    """`count` videos v0.mp4, v1.mp4, ... with the same facts."""
    return [video(f"v{i}.mp4", **facts) for i in range(count)]


def frames(video: Video, count: int, *, step: float = 1.0) -> list[Frame]:
    """`count` placeholder frame rows one `step` apart (zero hashes, a tiny embedding): enough for
    the pages that list a video's keyframes, never for matching."""
    bands = {f"phash_b{b}": 0 for b in range(4)}
    return Frame.objects.bulk_create(
        Frame(video=video, idx=k, t=step * k, phash=0, embedding=[0.0] * 8, **bands) for k in range(count)
    )


def pair(
    a: Video,
    b: Video,
    label: str = "near_duplicate",
    score: float = 0.9,
    *,
    breakdown: Breakdown | Json | None = None,
    segments: Segments | Json | None = None,
    config: ScoringConfig | None = None,
    **fields: Any,
) -> Pair:
    """A scored pair, its videos put in the order the table requires (video_a < video_b). Breakdown
    and segments are stored as given: a typed one as the scorer writes it, a dict as an older row
    (or a hand-picked subset) holds it."""
    a, b = (a, b) if a.pk < b.pk else (b, a)
    return Pair.objects.create(
        video_a=a,
        video_b=b,
        label=label,
        score=score,
        breakdown=_json(breakdown),
        segments=_json(segments),
        config=config,
        **fields,
    )


def aligned(start: float, end: float, *, speed: float = 1.0, offset: float = 0.0) -> Segments:
    """Segments of a pair matched from `start` to `end` on both sides, covering both videos."""
    return Segments(
        a=[[start, end]], b=[[start, end]], coverage_a=1.0, coverage_b=1.0, offset=offset, speed=speed
    )


def _json(value: Breakdown | Segments | Json | None) -> Json:
    if value is None:
        return {}
    if isinstance(value, Breakdown | Segments):
        return value.as_json()
    return value
