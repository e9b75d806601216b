"""Sub-picture matching end to end (issue 26, deliverable 2): copies laid into a picture-in-picture
or a stack are extracted with their views, found and scored as duplicates through the real
database; an unrelated laid-out video is not."""

import numpy as np
import pytest
from django.core.management import call_command
from django.db.models import Q

from dedup.matching.breakdown import Breakdown, SubPicture
from dedup.matching.score import score_pair
from dedup.matching.signals import VideoSignals
from dedup.matching.subpicture import View, score_pair_views, view_signals
from dedup.models import FrameView, Pair, Video
from dedup.services import load_signals
from review.explain import pair_summary

from .media import ffmpeg

W, H, SECONDS = 320, 180, 12


def _source(kind: str, seed: int) -> str:
    return {
        "mandelbrot": f"mandelbrot=size={W}x{H}:rate=25",
        "life": f"life=size={W}x{H}:rate=25:seed={seed}:mold=10:ratio=0.3",
        "testsrc": f"testsrc2=size={W}x{H}:rate=25",
        "cells": f"cellauto=size={W}x{H}:rate=25:rule=110:seed={seed}",
    }[kind]


def _melody(seed: int) -> str:
    pitch = f"(220+110*mod(floor(t*3)*{2 * seed + 3}+{seed}\\,9))"
    return f"aevalsrc=0.4*sin(2*PI*t*{pitch})+0.2*sin(4*PI*t*{pitch}):s=22050"


def _composite(path, shown: str, under: str, graph: str, melody: int):
    """[a] (the footage shown) and [b] (other footage) laid out by `graph` into [v], with a melody."""
    ffmpeg(
        "-f", "lavfi", "-i", f"{_source(shown, 1)},trim=duration={SECONDS}",
        "-f", "lavfi", "-i", f"{_source(under, 5)},trim=duration={SECONDS}",
        "-f", "lavfi", "-i", f"{_melody(melody)},atrim=duration={SECONDS}",
        "-filter_complex", f"[0:v]setsar=1[a];[1:v]setsar=1[b];{graph}",
        "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast",
        "-crf", "23", "-c:a", "aac", "-t", str(SECONDS), str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("subpicture")
    (root / "copies").mkdir()
    (root / "originals").mkdir()
    return {
        "original": _composite(
            root / "originals" / "original.mp4", "mandelbrot", "life", "[a]copy[v];[b]nullsink", 1
        ),
        # the original at half size in the bottom-right corner over other footage, its sound kept
        "pip": _composite(
            root / "copies" / "pip.mp4", "mandelbrot", "life", "[a]scale=160:90[s];[b][s]overlay=152:82[v]", 1
        ),
        # the original in the top 70 %, other footage under it
        "stack": _composite(
            root / "copies" / "stack.mp4",
            "mandelbrot",
            "life",
            "[a]scale=320:126[t];[b]scale=320:54[u];[t][u]vstack[v]",
            1,
        ),
        # unrelated footage laid out the same way, its own sound
        "unrelated": _composite(
            root / "copies" / "unrelated.mp4",
            "testsrc",
            "cells",
            "[a]scale=160:90[s];[b][s]overlay=152:82[v]",
            3,
        ),
    }


def _pair(x: Video, y: Video) -> Pair | None:
    return Pair.objects.filter(Q(video_a=x, video_b=y) | Q(video_a=y, video_b=x)).first()


@pytest.mark.django_db(transaction=True)
def test_laid_out_copies_are_found_through_their_sub_pictures(media):
    # the copies first: the original, arriving later, meets them through the views' index
    call_command("ingest", str(media["pip"].parent), "--sync", "--workers", "1")
    call_command("ingest", str(media["original"].parent), "--sync", "--workers", "1")
    videos = {v.file_name.removesuffix(".mp4"): v for v in Video.objects.all()}
    assert all(v.status == Video.Status.READY for v in videos.values()), [v.error for v in videos.values()]
    assert videos["original"].layout == []
    assert not FrameView.objects.filter(video=videos["original"]).exists()  # only laid-out videos pay
    assert [v["kind"] for v in videos["pip"].layout][:1] == ["pip"]
    assert "stack" in [v["kind"] for v in videos["stack"].layout]
    assert FrameView.objects.filter(video=videos["pip"]).exists()

    for name in ("pip", "stack"):
        pair = _pair(videos["original"], videos[name])
        assert pair is not None and pair.is_duplicate, (name, pair and pair.breakdown)
        subs = Breakdown.from_json(pair.breakdown).sub_pictures
        assert len(subs) == 1, (name, pair.breakdown)
        assert subs[0].side == ("a" if pair.video_a == videos[name] else "b")
        assert "sub-picture" in pair.breakdown["candidate_reasons"]
        # the whole frames alone do not make the pair
        whole = score_pair(load_signals(pair.video_a), load_signals(pair.video_b))
        assert whole.label not in Pair.DUPLICATE_LABELS, (name, whole.score)
        print(name, pair.label, pair.score, "whole frames:", whole.label, whole.score, videos[name].timings)
        assert (
            "as a picture-in-picture"
            in pair_summary(breakdown=pair.breakdown, segments=pair.segments, audio=pair.audio)
            or name == "stack"
        )

    unrelated = _pair(videos["original"], videos["unrelated"])
    assert unrelated is None or not unrelated.is_duplicate, unrelated.breakdown
    print("unrelated", unrelated and (unrelated.label, unrelated.score), videos["original"].timings)


def _signals(emb: np.ndarray, vid: int) -> VideoSignals:
    n = len(emb)
    return VideoSignals(
        id=vid,
        times=np.arange(n, dtype=np.float32),
        embeddings=emb,
        phashes=np.arange(n, dtype=np.int64) * 7919 + vid,
        informative=np.ones(n, bool),
        duration=float(n),
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_without_views_a_pair_scores_exactly_as_before():
    rng = np.random.default_rng(0)
    a = _signals(_unit(rng.normal(size=(20, 64)).astype(np.float32)), 1)
    b = _signals(_unit(a.embeddings + 0.3 * rng.normal(size=(20, 64)).astype(np.float32)), 2)
    assert score_pair_views(a, b) == score_pair(a, b)


def test_a_view_that_convinces_more_wins_and_says_where():
    rng = np.random.default_rng(1)
    original = _unit(rng.normal(size=(20, 64)).astype(np.float32))
    composite = _unit(rng.normal(size=(20, 64)).astype(np.float32))  # the whole frames look elsewhere
    a, b = _signals(original, 1), _signals(composite, 2)
    crops = _unit(original[5:] + 0.05 * rng.normal(size=(15, 64)).astype(np.float32))
    rows = np.arange(5, 20)
    view = View(1, "pip", (0.5, 0.95, 0.5, 0.95), view_signals(b, rows, crops, b.phashes[5:], None), rows)
    whole = score_pair(a, b)
    result = score_pair_views(a, b, [], [view])
    assert result.score > whole.score
    assert result.breakdown.sub_pictures == (
        SubPicture(side="b", view=1, kind="pip", box=[0.5, 0.95, 0.5, 0.95]),
    )
    assert Breakdown.from_json(result.breakdown.as_json()) == result.breakdown
    # a view whose crops come near none of the other's frames is not scored at all
    elsewhere = View(2, "pip", (0, 0.4, 0, 0.4), view_signals(b, rows, -crops, b.phashes[5:], None), rows)
    assert score_pair_views(a, b, [], [elsewhere]) == whole
    assert "B shows A as a picture-in-picture (box 20 % of the frame, bottom right)" in pair_summary(
        breakdown=result.breakdown.as_json(), segments=result.segments.as_json(), audio=None
    )


def test_two_laid_out_copies_of_one_original_meet_view_to_view():
    rng = np.random.default_rng(2)
    original = _unit(rng.normal(size=(20, 64)).astype(np.float32))

    def laid_out(vid: int, number: int, kind: str, box) -> tuple[VideoSignals, View]:
        whole = _signals(_unit(rng.normal(size=(20, 64)).astype(np.float32)), vid)
        rows = np.arange(20)
        crops = _unit(original + 0.05 * rng.normal(size=(20, 64)).astype(np.float32))
        return whole, View(number, kind, box, view_signals(whole, rows, crops, whole.phashes, None), rows)

    a, pip = laid_out(1, 1, "pip", (0.0, 0.5, 0.5, 1.0))
    b, stack = laid_out(2, 2, "stack", (0.0, 0.7, 0.0, 1.0))
    result = score_pair_views(a, b, [pip], [stack])
    assert [(s.side, s.view, s.kind) for s in result.breakdown.sub_pictures] == [
        ("a", 1, "pip"),
        ("b", 2, "stack"),
    ]
    assert result.score > score_pair(a, b).score
    assert (
        "A and B show the same footage: A as a picture-in-picture (box 25 % of the frame, top right), "
        in (
            pair_summary(breakdown=result.breakdown.as_json(), segments=result.segments.as_json(), audio=None)
        )
    )
