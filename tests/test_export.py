import csv
import json

import pytest
from django.core.management import call_command

from dedup.models import DuplicateGroup, Pair, ScoringConfig, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored():
    config = ScoringConfig.active()
    videos = [
        Video.objects.create(
            path=f"/lib/v{i}.mp4", rel_path=f"sub/v{i}.mp4", file_name=f"v{i}.mp4", status="ready"
        )
        for i in range(4)
    ]
    a, b, c, d = videos
    Pair.objects.create(
        video_a=a,
        video_b=b,
        score=0.97,
        label="exact",
        visual=0.98,
        audio=0.9,
        metadata=1.0,
        segments={
            "a": [[0, 10]],
            "b": [[0, 10]],
            "coverage_a": 1.0,
            "coverage_b": 1.0,
            "offset": 0.0,
            "speed": 1.0,
        },
        breakdown={"matched_frames": 10},
        config=config,
    )
    Pair.objects.create(video_a=a, video_b=c, score=0.88, label="near_duplicate", config=config)
    Pair.objects.create(video_a=b, video_b=c, score=0.40, label="different", config=config)
    Pair.objects.create(video_a=c, video_b=d, score=0.30, label="different", config=config)
    group = DuplicateGroup.objects.create()
    Video.objects.filter(pk__in=[a.pk, b.pk, c.pk]).update(group=group)
    return videos


def test_csv_starts_with_the_bench_contract_and_explains_each_pair(scored, tmp_path):
    out = tmp_path / "m.csv"
    call_command("export_matches", "--format", "csv", "--output", str(out))
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0])[:4] == ["a", "b", "score", "label"]
    first = rows[0]
    assert (first["a"], first["b"], first["label"], first["a_end"]) == (
        "sub/v0.mp4",
        "sub/v1.mp4",
        "exact",
        "10",
    )
    by_pair = {(r["a"], r["b"]): r for r in rows}
    # b and c are in one group: reported as duplicates through the group, scored as its weakest link
    assert by_pair[("sub/v1.mp4", "sub/v2.mp4")]["label"] == "duplicate"
    assert by_pair[("sub/v1.mp4", "sub/v2.mp4")]["via"] == "group"
    assert float(by_pair[("sub/v1.mp4", "sub/v2.mp4")]["score"]) == 0.88
    assert by_pair[("sub/v2.mp4", "sub/v3.mp4")]["label"] == "different"
    assert len(rows) == 4


def test_json_has_the_same_rows(scored, capsys):
    call_command("export_matches", "--format", "json")
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and rows[0]["label"] == "exact" and rows[0]["coverage_a"] == 1.0
