"""videohash's own default rule on a benchmark build, as a results CSV for ../shared/bench/evaluate.py.

Not an AstraDup dependency: run it in a scratch virtualenv (videohash 3.0.1 still calls
PIL's removed `Image.ANTIALIAS`, hence the Pillow pin):

    python3 -m venv /tmp/vh && /tmp/vh/bin/pip install videohash "Pillow<10"
    /tmp/vh/bin/python scripts/videohash_baseline.py /tmp/bench_dev /tmp/videohash.csv
    .venv/bin/python ../shared/bench/evaluate.py --manifest /tmp/bench_dev --results /tmp/videohash.csv

Every pair is written with score 1 - Hamming distance / 64 and labelled `duplicate` when
videohash's `is_similar` would say so (distance <= ceil(15 % of 64 bits) = 10).
"""

import csv
import itertools
import sys
import tempfile
from math import ceil
from pathlib import Path

from videohash import VideoHash

SIMILAR_BITS = ceil(15 / 100 * 64)  # videohash's default similar_percentage of its 64-bit hash


def main(bench: Path, out: Path) -> None:
    hashes = {}
    for path in sorted((bench / "videos").glob("*.mp4")):
        with tempfile.TemporaryDirectory() as storage:
            hashes[path.name] = VideoHash(path=str(path), storage_path=storage + "/")
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "score", "label"])
        for a, b in itertools.combinations(sorted(hashes), 2):
            distance = hashes[a] - hashes[b]
            label = "duplicate" if distance <= SIMILAR_BITS else "different"
            writer.writerow([a, b, round(1 - distance / 64, 4), label])
    print(f"{len(hashes)} videos hashed, results in {out}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
