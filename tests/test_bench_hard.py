"""The hard benchmark's generator (bench/hard/) builds valid ffmpeg graphs and a manifest the
evaluator reads: tiny synthetic inputs go through the new transforms, a montage and a decoy,
without the downloaded media."""

import csv
import importlib.util
import random
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"

pytestmark = pytest.mark.skipif(
    not (BENCH / "make_bench.py").exists() or not shutil.which("ffmpeg"),
    reason="needs ../shared/bench and ffmpeg",
)


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def mods():
    mb = load("make_bench", BENCH / "make_bench.py")
    hard = load("bench_make_hard", ROOT / "bench" / "hard" / "make_hard.py")
    tr = load("bench_hard_transforms", ROOT / "bench" / "hard" / "transforms.py")
    tr.register(mb)
    # small frames keep the renders cheap: PiP over the copy's own frame size, small montages
    tr.PIP_FRAMES = [None]
    hard.MONTAGE_FRAMES = [(320, 180)]
    ev = load("bench_evaluate", BENCH / "evaluate.py")
    return mb, hard, tr, ev


def tiny_source(path: Path, pattern: str, audio: bool):
    """6 s at 160x90: long enough for a montage excerpt (>= 5 s), cheap to render."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"{pattern}=s=160x90:r=10:d=6"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=f=440:d=6", "-c:a", "aac", "-shortest"]
    subprocess.run(
        [*cmd, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True
    )


def test_transforms_montage_and_decoy_render_and_parse(mods, tmp_path):
    mb, hard, tr, ev = mods
    vdir, work = tmp_path / "videos", tmp_path / "work"
    vdir.mkdir()
    work.mkdir()
    (tmp_path / "media" / "audio").mkdir(parents=True)  # no music: the synthesised fallback is used
    rng = random.Random(5)
    args = SimpleNamespace(seed=5)
    planner = mb.Planner(args, str(tmp_path / "media"), str(work), mb.TRANSFORM_SETS["hard"], rng)
    # filler comes from ffmpeg's synthetic sources only (no real clips, no photos)
    fillers = mb.FillerPool(rng, [], [])
    planner.ctx = mb.Ctx(
        rng, fillers, mb.AudioPool(rng, str(tmp_path / "media"), str(work)), str(work), planner.font
    )
    planner.ctx.extra["_take_music"] = lambda d: tr.take_music(planner.ctx, d, rng)

    originals = []
    for n, (pattern, audio) in enumerate([("testsrc", True), ("testsrc2", False), ("smptebars", True)]):
        o = planner.new(
            role="original",
            kind="original",
            source_id=f"src{n}",
            src=(0.0, 6.0),
            dur=6.0,
            has_audio=audio,
            w=160,
            h=90,
            dw=160,
            dh=90,
            fps=10.0,
            file=f"o{n}.mp4",
        )
        o["tags"] = {"pkg": "lavfi"} | ({"audio": f"native:src{n}"} if audio else {})
        tiny_source(vdir / o["file"], pattern, audio)
        o["_probe"] = mb.probe(str(vdir / o["file"]))
        originals.append(o)
    planner.originals = originals

    # copies through the compositing, timing and audio families, one chain each
    chains = [
        ["pip", "speed", "music"],
        ["stack", "rotate", "squash"],
        ["padbig", "logo", "noise"],
        ["stretch"],
    ]
    copies = []
    for n, names in enumerate(chains):
        o = originals[n % 2]
        it = planner.derived(o, "full_copy", "copy")
        planner.apply_chain(it, sorted(names, key=lambda t: mb.TRANSFORMS[t].stage), rng)
        it["file"] = f"c{n}.mp4"
        cmd = mb.build_derived(
            it, str(vdir / o["file"]), o["_probe"], str(vdir / it["file"]), str(work), planner.font, 1
        )
        subprocess.run(cmd, check=True, capture_output=True)
        it["_probe"] = mb.probe(str(vdir / it["file"]))
        assert it["_probe"]["has_video"] and it["_probe"]["duration"] > 3.0
        copies.append(it)
    pip, stack = copies[0], copies[1]
    assert pip["_probe"]["has_audio_stream"]  # the replaced soundtrack
    assert (pip["_probe"]["width"], pip["_probe"]["height"]) == (160, 90)  # the filler frame
    assert stack["_probe"]["width"] * stack["_probe"]["height"] > 160 * 90

    montages = hard.plan_montages(planner, mb, rng, 1, set(mb.TRANSFORM_SETS["hard"]))
    hard.plan_decoys(planner, mb, rng, 1)
    extra = [it for it in planner.items if it["kind"] in ("montage", "decoy") and it["phase"] > 0]
    assert len(montages) == 1 and len(extra) == 2
    for n, it in enumerate(extra):
        it["file"] = f"x{n}.mp4"
        _, problem = hard.render_extra(
            mb, it, planner.items, str(vdir), str(work), planner.font, 1, sys.stderr
        )
        assert problem is None, problem

    manifest = tmp_path / "manifest.csv"
    rows = hard.manifest_rows(mb, planner.items)
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    recs = ev.load_manifest(str(manifest))
    montage, decoy = recs["x0.mp4"], recs["x1.mp4"]
    assert montage["comp"] and len(montage["segs"]) == 3
    assert decoy["decoy"]
    for o in originals:  # the montage holds an excerpt of every original
        assert ev.is_duplicate(montage, recs[o["file"]])
        assert not ev.is_duplicate(decoy, recs[o["file"]])
    assert ev.is_duplicate(recs["c0.mp4"], recs["o0.mp4"])
    assert ev.pos_kind(montage, recs["o0.mp4"]) == "compilation"
    assert ev.neg_kind(decoy, recs["o2.mp4"]) in ("compilation_decoy", "music_reuse")


def test_mandelbrot_fillers_are_distinct_pictures_and_the_random_stream_is_unchanged(mods):
    """make_bench's mandelbrot fillers share 7 centres (two 'unrelated' fillers could be one
    zoom); the hard benchmark gives each its own boundary point from the filler's seed alone."""
    mb, hard, _tr, _ev = mods
    pool = SimpleNamespace(rng=random.Random(5))
    original = mb.FillerPool.synth
    plain = [original(pool, 8.0) for _ in range(60)]
    try:
        hard.distinct_mandelbrots(mb)
        pool.rng = random.Random(5)
        patched = [mb.FillerPool.synth(pool, 8.0) for _ in range(60)]
    finally:
        mb.FillerPool.synth = original
    assert [s["id"] for s in patched] == [s["id"] for s in plain]  # same fillers, same seeds
    mandel = [s for s in patched if s["src"] == "mandelbrot"]
    assert len(mandel) >= 5
    centres = {(round(s["x"], 4), round(s["y"], 4)) for s in mandel}
    assert len(centres) == len(mandel)
    assert hard.boundary_point(mandel[0]["seed"]) == (mandel[0]["x"], mandel[0]["y"])
    for s in patched:
        if s["src"] != "mandelbrot":
            assert s == plain[patched.index(s)]
