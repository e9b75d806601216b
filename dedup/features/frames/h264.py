"""H.264 packets: x264's recorded settings, reference pictures, the keyframe index, and which
frames the decoder may skip.

Where the encoder's own settings show that no P-frame is predicted from a B-frame (x264 with one
reference frame or its strict B-pyramid: x264's fast presets, which screen recorders and
transcoders use), the reference B-frames are skipped too, except around each wanted second: the
same pictures at the same times for about a fifth less decoding (`SkipGate`)."""

from bisect import bisect_right
from typing import Any, NamedTuple

# x264 records its settings in an SEI message at the start of its first picture
X264_SETTINGS = b"x264 - core "
HEAD_WINDOW = 64 * 1024  # bytes at a packet's start searched for those settings or a slice header


def x264_settings(data: bytes) -> dict[str, str] | None:
    """The options x264 recorded at the start of a compressed picture ("ref=1 bframes=3 ..."), or
    None where there are none (another encoder, or a picture after the first)."""
    at = data.find(X264_SETTINGS)
    if at < 0:
        return None
    end = data.find(b"\x00", at)
    text = data[at : end if end >= 0 else len(data)].decode("ascii", "replace")
    _, found, options = text.partition(" - options: ")
    if not found:
        return None
    return dict(item.split("=", 1) for item in options.split() if "=" in item)


def p_frames_ignore_b_frames(settings: dict[str, str]) -> bool:
    """Whether x264 with these settings never predicts a P-frame from a B-frame, so that a decoder
    may skip every B-frame and still decode each I- and P-frame exactly.

    x264 lists a P-frame's references nearest first in display order and keeps `ref` of them; the
    nearest is always the previous I- or P-frame (the B-frames that are references are shown
    before it). Without a B-pyramid no B-frame is a reference; the strict (Blu-ray) pyramid drops
    the B-frame references before each P-frame. Interlaced coding is left out (field references)."""
    if settings.get("interlaced", "0") != "0" or settings.get("bframes", "0") == "0":
        return False
    pyramid = settings.get("b_pyramid", "0")
    # without a pyramid no B-frame is a reference: skipping the non-reference frames skips them all
    return pyramid != "0" and (settings.get("ref") == "1" or pyramid == "1")


def _nal_length_size(extradata: bytes | None) -> int:
    """Bytes of each NAL unit's length in an H.264 packet (from the avcC record); 0 for start codes."""
    if extradata and len(extradata) > 4 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return 0


def _is_reference(packet: Any, length_size: int) -> bool:
    """Whether the picture in an H.264 packet is a reference (nal_ref_idc of its first slice);
    True where no slice is found, which keeps the packet decoded."""
    data = memoryview(packet)
    if length_size:
        at = 0
        while at + length_size < len(data):
            header = data[at + length_size]
            if header & 0x1F in (1, 5):
                return header >> 5 != 0
            at += length_size + int.from_bytes(data[at : at + length_size], "big")
        return True
    head = bytes(data[:HEAD_WINDOW])
    at = head.find(b"\x00\x00\x01")
    while 0 <= at < len(head) - 3:
        header = head[at + 3]
        if header & 0x1F in (1, 5):
            return header >> 5 != 0
        at = head.find(b"\x00\x00\x01", at + 3)
    return True


class PacketIndex(NamedTuple):
    keyframes: list[float]  # seconds, in order
    # the reference frames in decoding order, as (pts, is a B-frame: not an I- or P-frame, see
    # `SkipGate`); only where the first keyframe allows `skip_b`
    references: list[tuple[int, bool]]
    skip_b: bool  # the encoder's settings allow skipping reference B-frames
    max_refs: int  # x264's `ref`
    packets: int = -1  # the stream's packets with data (-1: not counted)
    timed: int = -1  # ... of them with a timestamp (a raw H.264 or HEVC stream has none)


def index_packets(container: Any, stream: Any) -> PacketIndex:
    """One pass over the packets: the keyframes, the reference frames, and whether the encoder's
    settings allow skipping reference B-frames (the first keyframe must carry x264's settings and
    no later one, from a stream joined to another, may forbid it). Leaves the container at the end."""
    keyframes, references, verdicts = [], [], []
    max_refs = 1
    packets = timed = 0
    shown_last = None  # the latest time shown so far, in decoding order
    tb = float(stream.time_base)
    length_size = _nal_length_size(stream.codec_context.extradata)
    h264 = stream.codec_context.name == "h264"
    for packet in container.demux(stream):
        packets += packet.size > 0
        if packet.pts is None:
            continue
        timed += 1
        anchor = shown_last is None or packet.pts > shown_last  # an I- or P-frame
        if anchor:
            shown_last = packet.pts
        if packet.is_keyframe:
            keyframes.append(packet.pts * tb)
            settings = x264_settings(memoryview(packet)[:HEAD_WINDOW].tobytes())
            verdicts.append(None if settings is None else p_frames_ignore_b_frames(settings))
            if settings is not None and settings.get("ref", "").isdigit():
                max_refs = max(max_refs, int(settings["ref"]))
        if h264 and verdicts and verdicts[0] and (anchor or _is_reference(packet, length_size)):
            references.append((packet.pts, not anchor))
    skip_b = h264 and bool(verdicts) and verdicts[0] is True and False not in verdicts
    return PacketIndex(sorted(keyframes), references, skip_b, max_refs, packets, timed)


class SkipGate:
    """Which frames the decoder may skip, packet by packet.

    Non-reference frames always. With `skip_b` (see `p_frames_ignore_b_frames`) the reference
    B-frames too, except those the sampler may take and the ones decoded shortly before them, so
    that the sampler, which takes the first picture shown from 0.05 s before each wanted time,
    gets the very pictures, at the very times, that skipping only the non-reference frames gives.

    The sampler may take the reference B-frames of the mini-GOP (the B-frames shown between two
    I- or P-frames) where a wanted time falls. Such a B-frame is predicted from the I- or P-frames
    around it only, but a skipped reference frame leaves a gap in the decoder's reference buffer
    that pushes those out, until enough references have been decoded since: so the reference
    B-frames among the `REFS_BEFORE` references (beyond x264's `ref`) decoded before a wanted one
    are decoded too. In decoding order an I- or P-frame is shown after every frame decoded before
    it, and the B-frames that follow it are shown before it."""

    REFS_BEFORE = 2

    def __init__(self, targets: list[float], index: PacketIndex, tb: float, skip: bool = True):
        self.base = "NONREF" if skip else "DEFAULT"  # without `skip`, nothing is skipped
        self.skip_b = index.skip_b and skip
        self.skipped = "BIDIR" if self.skip_b else self.base  # for `Decoded.skipped`
        refs = index.references
        self.b_refs = {pts for pts, is_b in refs if is_b}
        self.decoded: set[int] = set()  # the reference B-frames to decode
        anchors = [i for i, (_, is_b) in enumerate(refs) if not is_b]  # positions in `refs`
        shown = [refs[i][0] for i in anchors]  # their times, increasing
        back = index.max_refs + self.REFS_BEFORE
        for t in targets:
            j = bisect_right(shown, (t - 0.05) / tb)  # shown[j - 1] <= start < shown[j]
            if j >= len(anchors):
                continue
            # the mini-GOP's B-frames follow its closing I- or P-frame in decoding order
            i = anchors[j]
            end = anchors[j + 1] if j + 1 < len(anchors) else len(refs)
            if end > i + 1:
                self.decoded.update(pts for pts, is_b in refs[max(0, i - back) : end] if is_b)

    def mode(self, pts: int | None) -> str:
        if not self.skip_b or pts is None or pts not in self.b_refs or pts in self.decoded:
            return self.base
        return "BIDIR"

    def feed(self, codec: Any, packet: Any) -> list[Any]:
        mode = self.mode(packet.pts)
        if codec.skip_frame != mode:
            codec.skip_frame = mode
        return codec.decode(packet)
