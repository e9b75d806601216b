"""The decision screen's words and numbers (issue 27): why in one line, the line that confirms a
decision, and the aligned line the players follow; the page that carries them."""

import pytest

from dedup.models import Frame, ScoringConfig
from review.explain import IDENTICAL, decision_sentence, pair_summary
from review.sync import sync_line

from . import factories as make


def _seg(cov_a=1.0, cov_b=1.0, speed=1.0, offset=0.0):
    return {
        "a": [[0.0, 10.0]],
        "b": [[0.0, 8.0]],
        "coverage_a": cov_a,
        "coverage_b": cov_b,
        "offset": offset,
        "speed": speed,
    }


def test_the_one_liner_says_a_byte_identical_pair_is_identical():
    assert pair_summary(breakdown={"byte_identical": True}, segments={}, audio=1.0) == IDENTICAL


@pytest.mark.parametrize(
    ("speed", "words"),
    [(0.8, "B is A at 1.25× speed"), (1.25, "B is A at 0.8× speed"), (1.0, "B is A,"), (1.01, "B is A,")],
)
def test_the_one_liner_says_the_speed_b_plays_a_at(speed, words):
    # the stored speed is dt_b / dt_a: 0.8 means B gets through A in 0.8 of the time
    line = pair_summary(breakdown={}, segments=_seg(cov_a=0.94, speed=speed), audio=0.9)
    assert line.startswith(words)
    assert line.endswith("covers 94 % of A, soundtrack matches")


@pytest.mark.parametrize(
    ("cov_a", "cov_b", "words"),
    [
        (0.4, 1.0, "B is a part of A: 40 % of A"),
        (1.0, 0.3, "B contains A: all of A in 30 % of B"),
        (0.25, 0.5, "A and B share a stretch: 25 % of A, 50 % of B"),
    ],
)
def test_the_one_liner_says_which_part_matched(cov_a, cov_b, words):
    assert (
        pair_summary(breakdown={}, segments=_seg(cov_a, cov_b), audio=None) == f"{words}, no audio compared"
    )


@pytest.mark.parametrize(
    ("breakdown", "audio", "words"),
    [
        ({"audio_missing": True}, None, "no comparable audio on one side"),
        ({}, 0.5, "soundtrack partly matches"),
        ({}, 0.1, "soundtrack differs"),
    ],
)
def test_the_one_liner_says_what_the_soundtrack_did(breakdown, audio, words):
    assert pair_summary(breakdown=breakdown, segments=_seg(), audio=audio).endswith(words)


def test_the_one_liner_says_how_the_line_was_found_and_warns_of_a_shared_intro():
    line = pair_summary(breakdown={"aligned_by": "audio", "boilerplate": True}, segments=_seg(), audio=0.9)
    assert line == (
        "B is A, covers 100 % of A, lined up by the soundtrack, looks like a shared intro/outro only, "
        "soundtrack matches"
    )


def test_the_one_liner_says_when_no_stretch_lines_up():
    line = pair_summary(
        breakdown={"matched_frames": 0}, segments={"a": [], "b": [], "coverage_a": 0.0}, audio=None
    )
    assert line == "No stretch of the pictures lines up, single frames look alike; no audio compared"


@pytest.mark.parametrize(
    ("action", "kept", "line"),
    [
        ("confirm", "", "Pair 7 confirmed as a duplicate. Press u to undo."),
        ("not_duplicate", "", "Pair 7 marked not a duplicate. Press u to undo."),
        ("merge", "B (b.mp4)", "Pair 7 merged, keeping B (b.mp4). Press u to undo."),
        ("skip", "", "Pair 7 skipped for an hour. Press u to undo."),
    ],
)
def test_each_decision_is_confirmed_in_a_line_that_says_u_undoes_it(action, kept, line):
    assert decision_sentence(action=action, pair_id=7, kept=kept) == line


def test_the_aligned_line_comes_from_the_stored_segments_and_a_samples():
    line = sync_line(segments=_seg(speed=0.8, offset=1.5), times_a=[0.0, 0.5, 1.0, 1.5, 3.0])
    assert (line.speed, line.offset, line.step, line.start_a) == (0.8, 1.5, 0.5, 0.0)
    # only B's side stored: the start is mapped back onto A
    only_b = sync_line(segments={"b": [[4.0, 8.0]], "speed": 2.0, "offset": 2.0}, times_a=[])
    assert (only_b.start_a, only_b.step) == (1.0, 1.0)
    # nothing stored (an unaligned pair): side by side at the same rate
    assert sync_line(segments=None, times_a=[0.0, 2.0]) == sync_line(
        segments={"speed": 0}, times_a=[0.0, 2.0]
    )
    assert sync_line(segments=None, times_a=[0.0, 2.0]).speed == 1.0


@pytest.fixture
def two_pairs(db):
    config = ScoringConfig.active()
    videos = make.videos(
        3,
        root="/lib",
        status="ready",
        width=640,
        height=360,
        duration=10.0,
        size=1000,
        fps=25.0,
        video_codec="h264",
    )
    Frame.objects.bulk_create(
        Frame(video=videos[0], idx=i, t=0.5 * i, phash=0, phash_b0=0, phash_b1=0, phash_b2=0, phash_b3=0,
              embedding=[0.0] * 8)
        for i in range(4)
    )  # fmt: skip
    pairs = [
        make.pair(
            videos[0],
            other,
            "near_duplicate",
            score,
            visual=0.9,
            audio=0.9,
            metadata=0.9,
            segments=_seg(speed=0.8, offset=0.25),
            config=config,
        )
        for other, score in zip(videos[1:], (0.86, 0.85), strict=True)
    ]
    return pairs, make.user("mod", "moderator")


def test_the_pair_page_carries_the_line_the_players_follow_and_the_one_liner(client, two_pairs):
    (pair, _), user = two_pairs
    client.force_login(user)
    page = client.get(f"/review/pairs/{pair.pk}").content.decode()
    assert 'data-speed="0.8000" data-offset="0.250" data-step="0.500" data-start-a="0.000"' in page
    assert '<p class="why">B is A at 1.25× speed, covers 100 % of A, soundtrack matches</p>' in page
    assert 'data-side="b" data-t="0.000"' not in page  # B has no frames here; A's carry their time
    assert '<details class="numbers">' in page and 'id="shortcuts-help"' in page


@pytest.mark.parametrize("htmx", [False, True])
def test_the_next_pair_says_what_was_decided_and_that_u_undoes_it(client, two_pairs, htmx):
    (first, second), user = two_pairs
    client.force_login(user)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post(
        f"/review/pairs/{first.pk}/decide",
        {"action": "merge", "canonical": str(first.video_b_id)},
        follow=not htmx,
        **headers,
    )
    page = response.content.decode()
    assert f"Pair {first.pk} merged, keeping B (v1.mp4). Press u to undo." in page
    assert f'data-pair="{second.pk}"' in page
