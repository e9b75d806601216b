"""Does skipping x264's reference B-frames change what the sampler takes? (docs/benchmarks.md)

For each video: the sampler as it runs (`frames.h264.SkipGate`) against the same sampler with only the
non-reference frames skipped: the mode chosen, whether the sampled times are the same, how far the
pictures differ (max grey level, frames that differ) and the CPU seconds of each. Exits 1 where
anything differs.

    .venv/bin/python scripts/b_frame_skip_check.py var/perf-clips/*.mp4
    .venv/bin/python scripts/b_frame_skip_check.py var/perf-clips/*.mp4 --refs-before 0   # too few
    .venv/bin/python scripts/b_frame_skip_check.py --make-variants /tmp/x264-variants
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dedup.features import frames  # noqa: E402
from dedup.features.frames import h264  # noqa: E402
from dedup.features.probe import probe_video  # noqa: E402

# x264 settings the rule must take (ref=1, strict pyramid) or refuse (ref > 1), 20 s each
VARIANTS = {
    "veryfast": ["-preset", "veryfast"],
    "superfast": ["-preset", "superfast"],
    "medium_ref1": ["-preset", "medium", "-x264-params", "ref=1"],
    "veryslow_ref1": ["-preset", "veryslow", "-x264-params", "ref=1"],
    "veryfast_8b_weightp2": ["-preset", "veryfast", "-x264-params", "weightp=2:bframes=8:b-adapt=2"],
    "veryfast_open_gop": ["-preset", "veryfast", "-x264-params", "open-gop=1:keyint=60"],
    "medium_strict": ["-preset", "medium", "-x264-params", "b-pyramid=strict"],
    "medium": ["-preset", "medium"],
    "fast": ["-preset", "fast"],
    "medium_no_pyramid": ["-preset", "medium", "-x264-params", "b-pyramid=none"],
}


def make_variants(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, args in VARIANTS.items():
        path = out / f"{name}.mp4"
        if not path.exists():
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                 "life=s=320x180:rate=30:mold=10:ratio=0.3,scale=640:360,hue=H=t", "-t", "20",
                 "-c:v", "libx264", *args, "-pix_fmt", "yuv420p", str(path)],
                check=True,
            )  # fmt: skip
        paths.append(path)
    return paths


def sample(path: Path, duration: float, *, skip_b: bool) -> tuple[frames.SampledFrames, float]:
    # the rule is swapped where the packet index reads it: an experiment, not a product setting
    rule = h264.p_frames_ignore_b_frames
    if not skip_b:
        h264.p_frames_ignore_b_frames = lambda settings: False
    try:
        start = time.process_time()
        sampled = frames.sample_frames(path, duration)
        return sampled, time.process_time() - start
    finally:
        h264.p_frames_ignore_b_frames = rule


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--refs-before", type=int, default=h264.SkipGate.REFS_BEFORE)
    parser.add_argument(
        "--make-variants", type=Path, help="Encode the x264 variants here and check them too."
    )
    args = parser.parse_args()
    h264.SkipGate.REFS_BEFORE = args.refs_before
    videos = list(args.videos) + (make_variants(args.make_variants) if args.make_variants else [])
    differing, cpu = 0, {"skip": 0.0, "nonref": 0.0}
    for path in videos:
        duration = probe_video(path).duration
        gated, gated_cpu = sample(path, duration, skip_b=True)
        plain, plain_cpu = sample(path, duration, skip_b=False)
        cpu["skip"] += gated_cpu
        cpu["nonref"] += plain_cpu
        same_times = np.array_equal(gated.times, plain.times)
        diffs = (
            [
                int(np.abs(a.astype(np.int16) - b).max())
                for a, b in zip(gated.images, plain.images, strict=True)
            ]
            if same_times
            else []
        )
        bad = not same_times or any(diffs)
        differing += bad
        print(
            f"{path.name}: {gated.skipped}, times {'same' if same_times else 'DIFFER'}, "
            f"max difference {max(diffs, default=-1)} in {sum(d > 0 for d in diffs)} of {len(diffs)} frames, "
            f"CPU {gated_cpu:.2f} s vs {plain_cpu:.2f} s"
        )
    print(
        f"{len(videos)} videos, {differing} differ; sampling CPU {cpu['skip']:.1f} s with the skip, "
        f"{cpu['nonref']:.1f} s with non-reference frames only (refs_before {args.refs_before})"
    )
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
