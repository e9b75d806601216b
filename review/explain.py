"""Why two videos matched, in words, from a pair's stored breakdown and segments (pure: no Django).

Each part is said only when the matcher stored it: a byte-identical pair has no aligned frames,
a partial copy no whole-file MFCC, an unaligned pair no segment, and a blank number reads as a bug."""

from dataclasses import dataclass

from dedup.matching.breakdown import Breakdown, Json, Segments, SubPicture

IDENTICAL = "Byte-identical files (same SHA-256)"


@dataclass(frozen=True)
class Explanation:
    headline: str  # one line, or "" when the rows say it
    visual: str
    audio: str
    segments: str


def _num(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if isinstance(value, int | float) else ""


def _visual(breakdown: Breakdown) -> str:
    parts = []
    if breakdown.matched_quality is not None:
        parts.append(f"aligned-frame similarity {_num(breakdown.matched_quality)}")
    if breakdown.matched_frames:
        parts.append(f"{breakdown.matched_frames} frames matched")
    elif breakdown.matched_frames is not None:
        parts.append("no frames lined up")
    if breakdown.phash_close_frames is not None and breakdown.matched_frames:
        parts.append(f"{breakdown.phash_close_frames} with near-identical pHash")
    if breakdown.best_frame_similarity is not None:
        parts.append(f"best single-frame similarity {_num(breakdown.best_frame_similarity)}")
    if breakdown.residual is not None:
        parts.append(f"motion agreement {_num(breakdown.residual)}")
    if breakdown.low_res_motion is not None:
        parts.append(f"low-resolution motion {_num(breakdown.low_res_motion)}")
    text = ", ".join(parts)
    how = {"audio": "lined up by the soundtrack", "motion": "lined up by low-resolution motion"}
    if breakdown.aligned_by in how:
        text = f"{text} · {how[breakdown.aligned_by]}" if text else how[breakdown.aligned_by]
    if breakdown.sub_pictures:
        where = _sub_picture_words(breakdown)
        text = f"{text} · {where}" if text else where
    return text


SUB_PICTURE_KINDS = {
    "pip": "a picture-in-picture",
    "stack": "one part of a stack",
    "split": "one side of a split screen",
}


def _sub_picture_words(breakdown: Breakdown) -> str:
    """ "B shows A as a picture-in-picture (box 40 % of the frame, top right)", or where both
    show it in part of their frames "A and B show the same footage: A as …, B as …"."""

    def shown(sub: SubPicture) -> str:
        kind = SUB_PICTURE_KINDS.get(sub.kind, "a part of its frame")
        return f"{kind} (box {_pct(sub.area)} of the frame, {sub.place})"

    subs = breakdown.sub_pictures
    if len(subs) == 1:
        shower, other = ("A", "B") if subs[0].side == "a" else ("B", "A")
        return f"{shower} shows {other} as {shown(subs[0])}"
    return "A and B show the same footage: " + ", ".join(f"{s.side.upper()} as {shown(s)}" for s in subs)


def _audio(breakdown: Breakdown, audio: float | None) -> str:
    if breakdown.audio_missing:
        return "no comparable audio on one side (weights renormalised)"
    parts = []
    if breakdown.fingerprint is not None:
        chromaprint = f"Chromaprint {_num(breakdown.fingerprint)}"
        if breakdown.fingerprint_offset is not None:
            chromaprint += f" at {_num(breakdown.fingerprint_offset, 2)} s offset"
        parts.append(chromaprint)
    if breakdown.mfcc is not None:
        parts.append(f"MFCC {_num(breakdown.mfcc)}")
    if not parts and audio is None:
        return "no audio compared"
    return ", ".join(parts)


def _span(seg: list[float]) -> str:
    return f"{_num(seg[0], 2)}–{_num(seg[1], 2)} s"


def _segments(segments: Segments, breakdown: Breakdown) -> str:
    if not (segments.span_a and segments.span_b):
        return "no matched segment"
    text = (
        f"A {_span(segments.span_a)} ({_num(segments.coverage_a, 2)} of A) ↔ "
        f"B {_span(segments.span_b)} ({_num(segments.coverage_b, 2)} of B)"
    )
    if segments.offset is not None:
        text += f", offset {_num(segments.offset, 2)} s"
    if segments.speed is not None:
        text += f", speed {_num(segments.speed)}×"
    if breakdown.boilerplate:
        text += " · looks like a shared intro/outro"
    return text


def pair_explanation(*, breakdown: Json | None, segments: Json | None, audio: float | None) -> Explanation:
    """The rows of the decision screen, from a pair's stored `breakdown` and `segments` JSON."""
    return _explanation(Breakdown.from_json(breakdown), Segments.from_json(segments), audio)


def _explanation(breakdown: Breakdown, segments: Segments, audio: float | None) -> Explanation:
    if breakdown.byte_identical:
        return Explanation(
            headline=IDENTICAL,
            visual="the same bytes: every frame is identical",
            audio="the same soundtrack" if audio is not None else "no audio in either file",
            segments="the whole of both files",
        )
    return Explanation(
        headline="",
        visual=_visual(breakdown),
        audio=_audio(breakdown, audio),
        segments=_segments(segments, breakdown),
    )


FULL = 0.9  # coverage from which a side counts as all there (sampling and fades cost a few percent)


def _pct(value) -> str:
    return f"{round(100 * value)} %" if isinstance(value, int | float) else "?"


def _speed_words(speed) -> str:
    # the stored speed is dt_b / dt_a (t_b = speed · t_a + offset): 0.8 means B gets through A's
    # pictures in 0.8 of the time, i.e. B plays A at 1.25× speed
    if not isinstance(speed, int | float) or speed <= 0 or abs(speed - 1.0) < 0.02:
        return ""
    return f" at {_num(1.0 / speed, 2)}× speed"


def _soundtrack_words(breakdown: Breakdown, audio: float | None) -> str:
    if breakdown.audio_missing:
        return "no comparable audio on one side"
    if audio is None:
        return "no audio compared"
    if breakdown.soundtrack == "replaced":
        return "soundtrack replaced (not counted against the match)"
    if breakdown.soundtrack == "speed_changed":
        return "soundtrack not comparable at another speed"
    if audio >= 0.7:
        return "soundtrack matches"
    if audio >= 0.4:
        return "soundtrack partly matches"
    return "soundtrack differs"


def pair_summary(*, breakdown: Json | None, segments: Json | None, audio: float | None) -> str:
    """Why the pair was flagged, in one line of words ("B is A at 1.25× speed, covers 94 % of A,
    soundtrack matches"); the numbers behind it are the Explanation rows."""
    return _summary(Breakdown.from_json(breakdown), Segments.from_json(segments), audio)


def _summary(breakdown: Breakdown, segments: Segments, audio: float | None) -> str:
    if breakdown.byte_identical:
        return IDENTICAL
    sound = _soundtrack_words(breakdown, audio)
    if not (segments.span_a and segments.span_b):
        return f"No stretch of the pictures lines up, single frames look alike; {sound}"
    cov_a, cov_b = segments.coverage_a or 0.0, segments.coverage_b or 0.0
    speed = _speed_words(segments.speed)
    if cov_a >= FULL and cov_b >= FULL:
        what = f"B is A{speed}, covers {_pct(cov_a)} of A"
    elif cov_b >= FULL:
        what = f"B is a part of A{speed}: {_pct(cov_a)} of A"
    elif cov_a >= FULL:
        what = f"B contains A{speed}: all of A in {_pct(cov_b)} of B"
    else:
        what = f"A and B share a stretch{speed}: {_pct(cov_a)} of A, {_pct(cov_b)} of B"
    how = {"audio": ", lined up by the soundtrack", "motion": ", lined up by low-resolution motion"}
    what += how.get(breakdown.aligned_by or "", "")
    if breakdown.sub_pictures:
        what += f"; {_sub_picture_words(breakdown)}"
    if breakdown.boilerplate:
        what += ", looks like a shared intro/outro only"
    return f"{what}, {sound}"


DECIDED = {
    "confirm": "confirmed as a duplicate",
    "not_duplicate": "marked not a duplicate",
    "merge": "merged",
    "skip": "skipped for an hour",
}


def decision_sentence(*, action: str, pair_id: int | None, kept: str = "") -> str:
    """The line that confirms a decision on the next screen, and how to take it back."""
    done = DECIDED.get(action, action)
    if action == "merge" and kept:
        done += f", keeping {kept}"
    return f"Pair {pair_id} {done}. Press u to undo."
