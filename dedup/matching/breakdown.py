"""The one definition of a pair's stored `breakdown` and `segments` JSON (Pair.breakdown,
Pair.segments): the scorer writes them through `as_json`, everything that reads them goes through
`from_json`. Pure: no Django.

`as_json` writes exactly the keys each kind of result always wrote (a key absent is not a key
holding null: the explanation tells "no frames matched" from "not compared" by it), and
`from_json` takes any version's JSON: rows scored before a key existed read it as absent."""

from dataclasses import dataclass, field
from typing import Any

from .fusion import FusionInputs

# the JSON keys that queries read inside the database (KT("breakdown__segment_score"))
SEGMENT_SCORE = "segment_score"
SPEED = "speed"
FUSION = "fusion"

Json = dict[str, Any]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class SubPicture:
    """The sub-picture through which a pair matched (dedup.matching.subpicture): which side shows
    the other inside part of its frame, as which view, of which layout kind, in which box."""

    side: str  # "a" or "b": the video whose sub-picture matched the other's whole frames
    view: int  # its number in that video's layout (Video.layout)
    kind: str  # "pip", "stack" or "split"
    box: list[float]  # top, bottom, left, right as fractions of the frame

    def as_json(self) -> Json:
        return {"side": self.side, "view": self.view, "kind": self.kind, "box": self.box}

    @classmethod
    def from_json(cls, d: Json) -> "SubPicture":
        return cls(
            side=str(d["side"]), view=int(d["view"]), kind=str(d["kind"]), box=[float(v) for v in d["box"]]
        )

    @property
    def area(self) -> float:
        top, bottom, left, right = self.box
        return max(0.0, bottom - top) * max(0.0, right - left)

    @property
    def place(self) -> str:
        """Where the box sits: "top right", "bottom", "left", "centre"."""
        top, bottom, left, right = self.box
        cy, cx = (top + bottom) / 2, (left + right) / 2
        rows = "top" if cy < 0.4 else "bottom" if cy > 0.6 else ""
        cols = "left" if cx < 0.4 else "right" if cx > 0.6 else ""
        return " ".join(w for w in (rows, cols) if w) or "centre"


@dataclass(frozen=True)
class Breakdown:
    """Why a pair scored as it did: the evidence of each modality and the fusion inputs."""

    metadata_parts: dict[str, float] = field(default_factory=dict)  # metadata_score's terms
    # the inputs fusion and labelling need (see FusionInputs); None on rows older than re-scoring
    fusion: FusionInputs | None = None
    byte_identical: bool = False
    # audio_score's parts: `audio_missing` where either side has no usable sound
    audio_missing: bool = False
    fingerprint: float | None = None  # with its offset and overlap, where both have fingerprints
    fingerprint_offset: float | None = None
    fingerprint_overlap_s: float | None = None
    mfcc: float | None = None  # where the match spans both whole files
    best_frame_similarity: float | None = None  # an unaligned pair: its best single frame
    matched_frames: int | None = None  # None: not compared (byte-identical files)
    # the evidence along an aligned line, written together (`matched_quality` marks the group);
    # residual, sharpness and low_res_motion may be None inside it (too few frames to judge)
    residual: float | None = None
    static: float | None = None
    sharpness: float | None = None
    low_res_motion: float | None = None
    embedding_quality: float | None = None
    matched_quality: float | None = None
    phash_close_frames: int | None = None
    boilerplate: bool = False
    segment_score: float | None = None
    aligned_by: str | None = None  # "audio" or "motion" where a rescue found the line
    # what the soundtrack did: agrees, replaced (same pictures, other sound), speed_changed
    # (its pitch moved with the pictures' speed), differs, or missing; None on older rows
    soundtrack: str | None = None
    # where either side shows the footage they share in part of its frame (one per side at most)
    sub_pictures: tuple[SubPicture, ...] = ()
    candidate_reasons: list[str] | None = None  # how the pair was found (set by the candidate search)

    @property
    def is_aligned(self) -> bool:
        return self.matched_quality is not None

    def audio_json(self) -> Json:
        out: Json = {}
        if self.audio_missing:
            out["audio_missing"] = True
        if self.fingerprint is not None:
            out["fingerprint"] = self.fingerprint
            out["fingerprint_offset"] = self.fingerprint_offset
            out["fingerprint_overlap_s"] = self.fingerprint_overlap_s
        if self.mfcc is not None:
            out["mfcc"] = self.mfcc
        return out

    def as_json(self) -> Json:
        out: Json = {}
        if self.byte_identical:
            out["byte_identical"] = True
        out["metadata_parts"] = self.metadata_parts
        if not self.byte_identical:
            out.update(self.audio_json())
        if self.is_aligned:
            out.update(
                residual=self.residual,
                static=self.static,
                sharpness=self.sharpness,
                low_res_motion=self.low_res_motion,
                embedding_quality=self.embedding_quality,
                matched_quality=self.matched_quality,
            )
        if self.best_frame_similarity is not None:
            out["best_frame_similarity"] = self.best_frame_similarity
        if self.matched_frames is not None:
            out["matched_frames"] = self.matched_frames
        if self.is_aligned:
            out.update(
                phash_close_frames=self.phash_close_frames,
                boilerplate=self.boilerplate,
                segment_score=self.segment_score,
            )
        if self.fusion is not None:
            out[FUSION] = self.fusion.as_dict()
        if self.aligned_by is not None:
            out["aligned_by"] = self.aligned_by
        if self.soundtrack is not None:
            out["soundtrack"] = self.soundtrack
        if self.sub_pictures:
            out["sub_pictures"] = [sub.as_json() for sub in self.sub_pictures]
        if self.candidate_reasons is not None:
            out["candidate_reasons"] = self.candidate_reasons
        return out

    @classmethod
    def from_json(cls, data: Json | None) -> "Breakdown":
        d = data or {}
        fusion = d.get(FUSION)
        matched = d.get("matched_frames")
        reasons = d.get("candidate_reasons")
        return cls(
            metadata_parts=dict(d.get("metadata_parts") or {}),
            fusion=FusionInputs.from_dict(fusion) if fusion else None,
            byte_identical=bool(d.get("byte_identical")),
            audio_missing=bool(d.get("audio_missing")),
            fingerprint=_float(d.get("fingerprint")),
            fingerprint_offset=_float(d.get("fingerprint_offset")),
            fingerprint_overlap_s=_float(d.get("fingerprint_overlap_s")),
            mfcc=_float(d.get("mfcc")),
            best_frame_similarity=_float(d.get("best_frame_similarity")),
            matched_frames=None if matched is None else int(matched),
            residual=_float(d.get("residual")),
            static=_float(d.get("static")),
            sharpness=_float(d.get("sharpness")),
            low_res_motion=_float(d.get("low_res_motion")),
            embedding_quality=_float(d.get("embedding_quality")),
            matched_quality=_float(d.get("matched_quality")),
            phash_close_frames=d.get("phash_close_frames"),
            boilerplate=bool(d.get("boilerplate")),
            segment_score=_float(d.get(SEGMENT_SCORE)),
            aligned_by=d.get("aligned_by"),
            soundtrack=d.get("soundtrack"),
            sub_pictures=tuple(SubPicture.from_json(sub) for sub in d.get("sub_pictures") or ()),
            candidate_reasons=None if reasons is None else list(reasons),
        )


@dataclass(frozen=True)
class Segments:
    """Where the two videos match: one [start, end] span in seconds on each side (none for an
    unaligned pair), the share of each video's informative frames inside it, and the line."""

    a: list[list[float]] = field(default_factory=list)
    b: list[list[float]] = field(default_factory=list)
    coverage_a: float | None = 0.0  # None: a row without it (read, never written)
    coverage_b: float | None = 0.0
    offset: float | None = None  # seconds: a time t of A is shown at speed * t + offset in B
    speed: float | None = None

    @property
    def span_a(self) -> list[float] | None:
        return self.a[0] if self.a else None

    @property
    def span_b(self) -> list[float] | None:
        return self.b[0] if self.b else None

    def as_json(self) -> Json:
        out: Json = {"a": self.a, "b": self.b, "coverage_a": self.coverage_a, "coverage_b": self.coverage_b}
        if self.offset is not None:
            out["offset"] = self.offset
        if self.speed is not None:
            out[SPEED] = self.speed
        return out

    @classmethod
    def from_json(cls, data: Json | None) -> "Segments":
        d = data or {}
        return cls(
            a=[list(span) for span in d.get("a") or []],
            b=[list(span) for span in d.get("b") or []],
            coverage_a=_float(d.get("coverage_a")),
            coverage_b=_float(d.get("coverage_b")),
            offset=_float(d.get("offset")),
            speed=_float(d.get(SPEED)),
        )
