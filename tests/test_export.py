import csv
import json

import pytest
from django.core.management import call_command

from dedup.models import DuplicateGroup, ScoringConfig, Video

from . import factories as make

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored():
    config = ScoringConfig.active()
    videos = [make.video(f"v{i}.mp4", rel_path=f"sub/v{i}.mp4", status="ready") for i in range(4)]
    a, b, c, d = videos
    make.pair(
        a,
        b,
        "exact",
        0.97,
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
    make.pair(a, c, "near_duplicate", 0.88, config=config)
    make.pair(b, c, "different", 0.40, config=config)
    make.pair(c, d, "different", 0.30, config=config)
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


FORMULAS = ['=HYPERLINK("http:__evil","x").mp4', "+1.mp4", "-2.mp4", "@SUM(A1).mp4", "\tx.mp4", "\rx.mp4"]


@pytest.fixture
def formula_names():
    """Pairs between videos named like spreadsheet formulas, with a negative offset (a number)."""
    config = ScoringConfig.active()
    safe = make.video("safe.mp4")
    for i, name in enumerate(FORMULAS):
        video = make.video(name, path=f"/lib/{i}", status="ready")
        make.pair(
            safe,
            video,
            "similar",
            0.5 + i / 100,
            config=config,
            segments={"a": [[0, 5]], "b": [[1, 6]], "offset": -1.5},
        )


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_quoted(formula_names, tmp_path):
    out = tmp_path / "m.csv"
    call_command("export_matches", "--format", "csv", "--output", str(out))
    rows = list(csv.DictReader(out.open(newline="")))
    assert sorted(r["b"] for r in rows) == sorted("'" + name for name in FORMULAS)
    assert {r["a"] for r in rows} == {"safe.mp4"}
    # numbers stay numbers, negative ones included
    assert {r["offset"] for r in rows} == {"-1.5"}


def test_json_keeps_names_exactly_as_they_are(formula_names, capsys):
    call_command("export_matches", "--format", "json")
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["b"] for r in rows) == sorted(FORMULAS)
    assert {r["offset"] for r in rows} == {-1.5}
