#!/usr/bin/env python3
"""

# ruff: noqa: UP031  (the %-formatted filter strings keep one style with make_bench's Graph API)Build the hard development benchmark (issue 26) from the development media.

    python3 bench/hard/make_hard.py MEDIA OUT [--seed 11] [--jobs 2]

MEDIA is what ../shared/bench/fetch_media.sh produced. OUT receives videos/, manifest.csv
(the format of ../shared/bench/README.md, multi-segment rows for montages) and summary.json.

It drives ../shared/bench/make_bench.py as a library with the transform set "hard"
(bench/hard/transforms.py), so originals, copies, partial copies, natural copies, music-reuse
and shared-intro negatives come out exactly as make_bench plans them, and adds in the same
plan, drawing on the same filler and music pools (every piece of filler is used once):
    static footage  two synthesised screen recordings (a scrolling terminal and a slide deck
                    with a moving pointer) join the media as long clips: make_bench cuts them
                    into segments whose copies are duplicates and whose other segments (other
                    moments of the same recording) are hard negatives (tag scene=)
    montages        3-6 excerpts of 5-20 s of different originals, each with 0-2 hard edits,
                    sometimes with filler cuts between them or one music track over all
                    (role compilation, one manifest row per excerpt)
    decoys          montages of filler footage only (role compilation_filler), some carrying
                    the music of a montage or of a copy whose soundtrack was replaced
    music reuse     the music laid over a copy (transform "music") laid over other footage

Seeds 11 and 12 are for development; 21 and 22 are held out (build them only for the closing
measurement). Same media + same seed gives the same benchmark.

Standard library + ffmpeg only.
"""

import argparse
import concurrent.futures as cf
import csv
import importlib.util
import itertools
import json
import os
import random
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BENCH = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "bench"))

STATIC_DUR = 72.0  # a screen recording; make_bench cuts it into 4 segments of 15.75 s
STATIC_FPS = 15
STATIC_W, STATIC_H = 1280, 720
MONO_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
MONTAGE_FRAMES = [(1280, 720), (854, 480), (640, 360)]
MONTAGE_MAX = 56.0  # a montage stays under make_bench's 60 s cap


def load_py(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# --------------------------------------------------------------------------------------
# filler that is what the manifest says it is
# --------------------------------------------------------------------------------------
def boundary_point(seed):
    """A point near the Mandelbrot set's boundary, drawn from `seed` alone: zooming there shows
    structure all the way down, and two seeds give two different pictures."""
    r = random.Random(seed)
    while True:
        c = complex(r.uniform(-2.0, 0.5), r.uniform(-1.15, 1.15))
        z, n = 0j, 0
        while abs(z) <= 2.0 and n < 200:
            z, n = z * z + c, n + 1
        if 40 <= n < 200:  # escapes, but slowly: the boundary is within reach of the zoom
            return c.real, c.imag


def distinct_mandelbrots(mb):
    """make_bench draws mandelbrot fillers around 7 fixed centres with 1e-3 jitter, so two fillers
    can be the very same zoom: a pair the ground truth calls unrelated that is in truth one
    picture. Here each filler zooms into its own boundary point, chosen from the filler's own
    seed; the benchmark's random stream is not touched, so everything else a seed makes is
    unchanged (seeds rendered before this change differ only in their mandelbrot pictures)."""
    synth = mb.FillerPool.synth

    def synth_distinct(self, dur):
        spec = synth(self, dur)
        if spec.get("src") == "mandelbrot":
            spec["x"], spec["y"] = boundary_point(spec["seed"])
            spec["scale"] = min(spec["scale"], 0.5)  # zoomed in far enough that the point's shape shows
        return spec

    mb.FillerPool.synth = synth_distinct


# --------------------------------------------------------------------------------------
# static footage: screen recordings synthesised with ffmpeg
# --------------------------------------------------------------------------------------
def chapter_bounds(args, dur):
    """make_bench's segmentation of a long clip; content changes inside the gaps, so two
    segments show different moments (other text, other slides) under the same UI."""
    import math

    gap, L = args.seg_gap, args.seg_len
    k = max(2, int(math.ceil((dur + gap) / (L + gap))))
    seg = (dur - (k - 1) * gap) / k
    cuts = [i * (seg + gap) - gap / 2 for i in range(1, k)]
    return [0.0] + cuts + [dur]


WORDS = (
    "build deploy cache index vector frame audio ingest worker queue shard merge commit "
    "fetch probe decode encode render thumbnail manifest segment scene cluster embed"
).split()


def terminal_lines(rng, media_files, n):
    out = []
    while len(out) < n:
        r = rng.random()
        if r < 0.2:
            out.append("$ ls -l media/")
            for f in rng.sample(media_files, min(4, len(media_files))):
                out.append("-rw-r--r-- 1 dev dev %8d %s" % (rng.randint(10**4, 10**8), f[:48]))
        elif r < 0.45:
            out.append("$ make %s" % rng.choice(WORDS))
            for _ in range(rng.randint(2, 5)):
                out.append(
                    "[%3d%%] Building %s/%s.o" % (rng.randint(1, 99), rng.choice(WORDS), rng.choice(WORDS))
                )
        elif r < 0.7:
            out.append("$ git log --oneline -3")
            for _ in range(3):
                out.append(
                    "%07x %s the %s %s"
                    % (
                        rng.getrandbits(28),
                        rng.choice(WORDS).capitalize(),
                        rng.choice(WORDS),
                        rng.choice(WORDS),
                    )
                )
        else:
            out.append("$ python3 -m %s --%s %d" % (rng.choice(WORDS), rng.choice(WORDS), rng.randint(1, 64)))
            for _ in range(rng.randint(1, 4)):
                out.append(
                    "%02d:%02d:%02d INFO %s %s=%0.3f"
                    % (
                        rng.randint(0, 23),
                        rng.randint(0, 59),
                        rng.randint(0, 59),
                        rng.choice(WORDS),
                        rng.choice(WORDS),
                        rng.random() * 100,
                    )
                )
    return out[:n]


def pointer_overlay(rng, base, t0, t1, label_in, label_out):
    """A small pointer that drifts a little (a hand resting on the mouse) during [t0, t1)."""
    x0, y0 = rng.randint(200, STATIC_W - 200), rng.randint(150, STATIC_H - 150)
    ax, ay, w = rng.randint(4, 25), rng.randint(4, 18), rng.uniform(0.3, 1.1)
    return "[%s][%s]overlay=x='%d+%d*sin(%s*t)':y='%d+%d*cos(%s*t)':enable='between(t,%s,%s)'[%s]" % (
        label_in,
        base,
        x0,
        ax,
        "%.2f" % w,
        y0,
        ay,
        "%.2f" % w,
        "%.2f" % t0,
        "%.2f" % t1,
        label_out,
    )


def terminal_cmd(rng, args, work, out, media_files):
    bounds = chapter_bounds(args, STATIC_DUR)
    theme = rng.choice([("0x1e1e1e", "0x33ff66"), ("0x002b36", "0x93a1a1"), ("0x101018", "0xe0e0e0")])
    fs, lh = 18, 24
    rows = (STATIC_H - 80) // lh
    filters = ["[0:v]null[b0]"]
    cur = "b0"
    k = 0
    for c, (t0, t1) in enumerate(itertools.pairwise(bounds)):
        rate = rng.uniform(0.6, 1.4)  # one new line every `rate` s: mostly still frames
        lines = terminal_lines(rng, media_files, rows + int((t1 - t0) / rate) + 3)
        tf = os.path.join(work, "term_%d.txt" % c)
        with open(tf, "w") as f:
            f.write("\n".join(lines) + "\n")
        k += 1
        filters.append(
            "[%s]drawtext=expansion=none:fontfile=%s:textfile=%s:fontsize=%d:line_spacing=6:fontcolor=%s:"
            "x=16:y='44-%d*floor((t-%.2f)/%.3f)':enable='between(t,%.2f,%.2f)'[b%d]"
            % (cur, MONO_FONT, tf, fs, theme[1], lh, t0, rate, t0, t1, k)
        )
        cur = "b%d" % k
    k += 1
    # window chrome drawn last, over the scrolled-away lines
    title = os.path.join(work, "term_title.txt")
    with open(title, "w") as f:
        f.write("dev@%s: ~/%s" % (rng.choice(["build01", "laptop", "ws-7"]), rng.choice(WORDS)))
    filters.append(
        "[%s]drawbox=x=0:y=0:w=iw:h=36:color=0x3a3a3a:t=fill,"
        "drawtext=expansion=none:fontfile=%s:textfile=%s:fontsize=16:fontcolor=white:x=(w-tw)/2:y=10,"
        "drawbox=x=0:y=ih-28:w=iw:h=28:color=0x2a2a2a:t=fill,"
        "drawbox=x=16:y=ih-52:w=10:h=18:color=%s@0.9:t=fill:enable='lt(mod(t,1),0.5)'[b%d]"
        % (cur, MONO_FONT, title, theme[1], k)
    )
    cur = "b%d" % k
    filters.append("[1:v]format=yuva420p[ptr]")
    k += 1
    filters.append(pointer_overlay(rng, "ptr", 0, STATIC_DUR, cur, "b%d" % k))
    cur = "b%d" % k
    inputs = [
        "-f",
        "lavfi",
        "-i",
        "color=c=%s:s=%dx%d:r=%d:d=%s" % (theme[0], STATIC_W, STATIC_H, STATIC_FPS, STATIC_DUR),
        "-f",
        "lavfi",
        "-i",
        "color=c=white:s=12x18:r=%d:d=%s" % (STATIC_FPS, STATIC_DUR),
    ]
    return static_command(inputs, filters, cur, out)


def slides_cmd(rng, args, work, out, images):
    bounds = chapter_bounds(args, STATIC_DUR)
    accent = rng.choice(["0x1b3a8a", "0x8a1b1b", "0x1b6a5a", "0x5a2a8a"])
    font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    bold = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
    inputs = [
        "-f",
        "lavfi",
        "-i",
        "color=c=0xf4f4f4:s=%dx%d:r=%d:d=%s" % (STATIC_W, STATIC_H, STATIC_FPS, STATIC_DUR),
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=12x18:r=%d:d=%s" % (STATIC_FPS, STATIC_DUR),
    ]
    filters = [
        "[0:v]drawbox=x=0:y=0:w=iw:h=90:color=%s:t=fill,drawbox=x=0:y=ih-40:w=iw:h=40:color=0xdddddd:t=fill"
        "[s0]" % accent
    ]
    cur, k, n_slide, used = "s0", 0, 0, []
    deck = rng.choice(["Quarterly review", "Onboarding", "Architecture", "Roadmap", "Lab meeting"])
    for t0, t1 in itertools.pairwise(bounds):
        n = rng.randint(2, 3)  # slides change every few seconds, never across a chapter cut
        edges = [t0 + (t1 - t0) * i / n for i in range(n + 1)]
        for a, b in itertools.pairwise(edges):
            n_slide += 1
            tf = os.path.join(work, "slide_%02d.txt" % n_slide)
            with open(tf, "w") as f:
                f.write("%s - %s %s" % (deck, rng.choice(WORDS).capitalize(), rng.choice(WORDS)))
            bf = os.path.join(work, "slide_%02d_b.txt" % n_slide)
            with open(bf, "w") as f:
                f.write(
                    "\n".join(
                        "- %s %s %s" % (rng.choice(WORDS).capitalize(), rng.choice(WORDS), rng.choice(WORDS))
                        for _ in range(rng.randint(3, 5))
                    )
                )
            en = "enable='between(t,%.2f,%.2f)'" % (a, b)
            k += 1
            filters.append(
                "[%s]drawtext=expansion=none:fontfile=%s:textfile=%s:fontsize=34:fontcolor=white:x=40:y=28:%s,"
                "drawtext=expansion=none:fontfile=%s:textfile=%s:fontsize=28:line_spacing=18:fontcolor=0x202020:"
                "x=60:y=150:%s,drawtext=fontfile=%s:text='%d':fontsize=18:fontcolor=0x404040:"
                "x=w-60:y=h-30:%s[s%d]" % (cur, bold, tf, en, font, bf, en, font, n_slide, en, k)
            )
            cur = "s%d" % k
            if images and rng.random() < 0.5:
                img = images.pop()
                used.append(img)
                inputs += ["-loop", "1", "-framerate", str(STATIC_FPS), "-t", str(STATIC_DUR), "-i", img]
                idx = sum(1 for x in inputs if x == "-i") - 1
                k += 1
                filters.append(
                    "[%d:v]scale=520:340:force_original_aspect_ratio=decrease,setsar=1[im%d]" % (idx, k)
                )
                filters.append("[%s][im%d]overlay=x=700:y=180:%s[s%d]" % (cur, k, en, k + 1))
                k += 1
                cur = "s%d" % k
            else:  # a bar chart instead of a picture
                boxes = ",".join(
                    "drawbox=x=%d:y=%d:w=50:h=%d:color=%s:t=fill:%s"
                    % (720 + 80 * j, 560 - hgt, hgt, accent, en)
                    for j, hgt in enumerate(rng.randint(40, 340) for _ in range(5))
                )
                k += 1
                filters.append("[%s]%s[s%d]" % (cur, boxes, k))
                cur = "s%d" % k
    filters.append("[1:v]format=yuva420p[ptr]")
    for c, (t0, t1) in enumerate(itertools.pairwise(bounds)):  # the pointer rests elsewhere per chapter
        k += 1
        filters.append(pointer_overlay(rng, "ptr%d" % c, t0, t1, cur, "s%d" % k))
        cur = "s%d" % k
    # the pointer source is used once per chapter
    n_ch = len(bounds) - 1
    filters[filters.index("[1:v]format=yuva420p[ptr]")] = "[1:v]format=yuva420p,split=%d%s" % (
        n_ch,
        "".join("[ptr%d]" % c for c in range(n_ch)),
    )
    return static_command(inputs, filters, cur, out), used


def static_command(inputs, filters, cur, out):
    return (
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
        + inputs
        + [
            "-filter_complex",
            ";".join(filters),
            "-map",
            "[%s]" % cur,
            "-t",
            str(STATIC_DUR),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "16",
            "-pix_fmt",
            "yuv420p",
            "-an",
            out,
        ]
    )


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_media(mb, args, src_media, media, work):
    """OUT/media: the development media (hard links) plus the screen recordings; the images
    shown on slides are left out of images/ so no filler reuses them."""
    rng = random.Random(args.seed * 1009 + 3)
    vdir = os.path.join(media, "video")
    if os.path.isdir(media):
        shutil.rmtree(media)
    os.makedirs(vdir)
    files = sorted(os.listdir(os.path.join(src_media, "video")))
    for f in files:
        link_or_copy(os.path.join(src_media, "video", f), os.path.join(vdir, f))
    os.symlink(os.path.join(src_media, "audio"), os.path.join(media, "audio"))
    if os.path.exists(os.path.join(src_media, "groups.tsv")):
        shutil.copy2(os.path.join(src_media, "groups.tsv"), os.path.join(media, "groups.tsv"))
    idir = os.path.join(src_media, "images")
    images = sorted(os.path.join(idir, f) for f in os.listdir(idir)) if os.path.isdir(idir) else []
    images = [p for p in images if p.lower().endswith(mb.IMAGE_EXT)]
    slide_imgs = rng.sample(images, min(6, len(images)))
    term_cmd = terminal_cmd(rng, args, work, os.path.join(vdir, "screencast__terminal.mp4"), files)
    sl_cmd, used = slides_cmd(rng, args, work, os.path.join(vdir, "screencast__slides.mp4"), list(slide_imgs))
    os.makedirs(os.path.join(media, "images"))
    for p in images:
        if p not in used:
            link_or_copy(p, os.path.join(media, "images", os.path.basename(p)))
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        for rc, _, err in ex.map(lambda c: mb.run(c, timeout=900), [term_cmd, sl_cmd]):
            if rc != 0:
                raise SystemExit("screen recording failed: %s" % err[-2000:])


# --------------------------------------------------------------------------------------
# planning beyond make_bench: music reuse over copies' music, montages, decoys
# --------------------------------------------------------------------------------------
def plan_music_over(planner, mb, rng, share=0.5, cap=8):
    """The music of some copies whose soundtrack was replaced, over unrelated footage."""
    ctx = planner.ctx
    assets = list(ctx.extra.get("music_assets", []))
    rng.shuffle(assets)
    for n, asset in enumerate(assets[: min(cap, int(round(share * len(assets))))]):
        dur = round(min(asset["dur"], 20.0), 2)
        vis = ctx.fillers.take(dur)
        W, H = rng.choice([(640, 360), (854, 480), (1280, 720), (720, 404)])
        it = planner.new(
            role="hn_music",
            kind="music",
            source_id="music_other_%02d" % n,
            src=(0.0, dur),
            dur=dur,
            visual=vis,
            asset=dict(asset, dur=dur),
            W=W,
            H=H,
            has_audio=True,
        )
        it["transforms"] = ["music_reuse"]
        it["tags"] = {"audio": asset["id"], "filler": vis["id"]}


def plan_montages(planner, mb, rng, n_montages, hard):
    ctx = planner.ctx
    pool = [o for o in planner.originals if o["dur"] >= 5.0]
    montages = []
    for _ in range(n_montages):
        n = rng.randint(3, 6)
        srcs = rng.sample(pool, min(n, len(pool)))
        W, H = rng.choice(MONTAGE_FRAMES)
        it = planner.new(
            role="compilation",
            kind="montage",
            phase=3,
            source_id=None,
            W=W,
            H=H,
            segs=[],
            pieces=[],
            music=None,
        )
        used = 0.0
        for j, o in enumerate(srcs):
            left = len(srcs) - j - 1
            # room for this excerpt when every later one takes its shortest, slowest form
            room = (MONTAGE_MAX - used - left * 5.0 / 0.7) * 0.7
            hi = min(20.0, o["dur"], room)
            if hi < 5.0:
                break
            L = round(rng.uniform(5.0, hi), 2)
            a = round(rng.uniform(0, o["dur"] - L), 2)
            seg = {
                "parent": o["id"],
                "in_a": a,
                "in_b": round(a + L, 2),
                "dur": L,
                "has_audio": o["has_audio"],
                "w": o["dw"],
                "h": o["dh"],
                "fps": min(o["fps"], 30.0),
                "transforms": [],
                "plan": [],
                "tags": dict(o["tags"]),
                "source_id": o["source_id"],
                "src": (round(o["src"][0] + a, 2), round(o["src"][0] + a + L, 2)),
                "pre": None,
                "post": None,
            }
            k = rng.choices([0, 1, 2], weights=[0.3, 0.45, 0.25])[0]
            if k:
                names = planner.choose_chain(seg, rng, k, allow=lambda T: T.name in hard)
                planner.apply_chain(seg, names, rng)
            used += seg["dur"]  # speed planning updated it
            it["segs"].append(seg)
            if rng.random() < 0.25 and used + 3.0 < MONTAGE_MAX:  # a filler cut before the next excerpt
                d = round(rng.uniform(1.5, 3.0), 1)
                f = ctx.fillers.take(d)
                f["dur"] = d
                it["pieces"].append((len(it["segs"]), f))
                seg["tags"]["filler_cut"] = f["id"]
                used += d
        if len(it["segs"]) < 3:  # too few long sources: leave this montage out
            it["phase"] = 0
            continue
        if rng.random() < 0.3:  # one music track over the whole montage
            asset = ctx.extra["_take_music"](used)
            it["music"] = asset
            for s in it["segs"]:
                s["tags"]["audio"] = asset["id"]
            ctx.extra.setdefault("montage_music", []).append(asset)
        it["dur"] = used
        montages.append(it)
    return montages


def plan_decoys(planner, mb, rng, n_decoys):
    ctx = planner.ctx
    shared = list(ctx.extra.get("montage_music", []))
    for n in range(n_decoys):
        W, H = rng.choice(MONTAGE_FRAMES)
        pieces = []
        for _ in range(rng.randint(3, 5)):
            d = round(rng.uniform(4.0, 10.0), 1)
            f = ctx.fillers.take(d)
            f["dur"] = d
            pieces.append(f)
        dur = round(sum(p["dur"] for p in pieces), 2)
        tags = {"filler%d" % (i + 1): p["id"] for i, p in enumerate(pieces)}
        if shared:  # a montage's own music over unrelated footage: the music-reuse trap
            asset = dict(shared.pop(), dur=dur)
        elif rng.random() < 0.6:
            asset = ctx.extra["_take_music"](dur)
        else:
            asset = None
        if asset:
            tags["audio"] = asset["id"]
        it = planner.new(
            role="compilation_filler",
            kind="decoy",
            source_id="decoy_%02d" % n,
            src=(0.0, dur),
            dur=dur,
            W=W,
            H=H,
            pieces=pieces,
            music=asset,
            has_audio=bool(asset),
        )
        it["transforms"] = ["decoy(%d)" % len(pieces)]
        it["tags"] = tags


# --------------------------------------------------------------------------------------
# rendering montages and decoys
# --------------------------------------------------------------------------------------
def fit(W, H, F):
    return (
        "scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1,"
        "fps=%s,format=yuv420p" % (W, H, W, H, F)
    )


def build_montage(mb, it, items, vdir, work, font, threads):
    """Excerpts rendered one by one through make_bench's own copy builder, then joined."""
    parts = []
    for k, seg in enumerate(it["segs"]):
        parent = items[seg["parent"]]
        ppath = os.path.join(vdir, parent["file"])
        if parent.get("_failed") or not os.path.exists(ppath):
            raise RuntimeError("parent %s missing" % parent["file"])
        part = os.path.join(work, "montage%d_%d.mp4" % (it["id"], k))
        rc, _, err = mb.run(
            mb.build_derived(seg, ppath, parent["_probe"], part, work, font, threads), timeout=900
        )
        if rc != 0:
            raise RuntimeError("excerpt %d: %s" % (k, err.strip()[-300:]))
        parts.append((part, mb.probe(part)))
    W, H, F = it["W"], it["H"], "25"
    g = mb.Graph(work, font, threads)
    want_audio = it["music"] is None
    segs, total = [], 0.0
    cuts = dict(it["pieces"])
    for k, (part, info) in enumerate(parts):
        if k in cuts:
            d = cuts[k]["dur"]
            v, _ = g.add_clip(cuts[k], W, H, 25.0, d, audio=False)
            segs.append((v, g.silence(d) if want_audio else None))
            total += d
        i = g.add_input(["-i", part])
        v = g.chain("%d:v:0" % i, fit(W, H, F))
        a = None
        if want_audio:
            # a fixed length per excerpt keeps picture and sound in step across the joins
            src = g.norm_audio("%d:a:0" % i) if info["has_audio_stream"] else g.silence(info["duration"])
            a = g.chain(src, "apad,atrim=0:%s" % mb.fmt(info["duration"]))
            v = g.chain(v, "trim=0:%s,setpts=PTS-STARTPTS" % mb.fmt(info["duration"]))
        segs.append((v, a))
        total += info["duration"]
    return join(mb, g, segs, W, H, total, it["music"], want_audio)


def join(mb, g, segs, W, H, total, music, with_audio):
    ins = "".join("[%s]" % v + ("[%s]" % a if with_audio else "") for v, a in segs)
    ov = g.lab()
    oa = g.lab() if with_audio else None
    g.filters.append(
        "%sconcat=n=%d:v=1:a=%d[%s]%s"
        % (ins, len(segs), 1 if with_audio else 0, ov, ("[%s]" % oa) if with_audio else "")
    )
    g.v, g.a, g.w, g.h, g.dur = ov, oa, W, H, total
    if music:
        g.a = g.add_audio_asset(music, total)
    g.crf = 20
    return g


def build_decoy(mb, it, work, font, threads):
    W, H = it["W"], it["H"]
    g = mb.Graph(work, font, threads)
    segs = [(g.add_clip(p, W, H, 25.0, p["dur"], audio=False)[0], None) for p in it["pieces"]]
    return join(mb, g, segs, W, H, it["dur"], it["music"], False)


def render_extra(mb, it, items, vdir, work, font, threads, log):
    """make_bench.render for the kinds it does not know (same checks, same failure log)."""
    out = os.path.join(vdir, it["file"])
    tmp = out + ".part.mp4"
    try:
        if it["kind"] == "montage":
            g = build_montage(mb, it, items, vdir, work, font, threads)
        else:
            g = build_decoy(mb, it, work, font, threads)
        cmd = g.command(tmp)
    except Exception as e:  # one bad file must not stop the build
        return it, "build error: %r" % (e,)
    rc, _, err = mb.run(cmd, timeout=900)
    if rc != 0 or not os.path.exists(tmp):
        log.write("FAILED %s %s\n%s\n%s\n\n" % (it["file"], it["kind"], " ".join(cmd), err[-2000:]))
        if os.path.exists(tmp):
            os.remove(tmp)
        return it, "ffmpeg rc=%d: %s" % (rc, err.strip().splitlines()[-1][:300] if err.strip() else "")
    os.replace(tmp, out)
    it["_probe"] = mb.probe(out)
    if it["_probe"]["duration"] > mb.MAX_OUT_DUR + 0.6:
        return it, "too long (%.1fs)" % it["_probe"]["duration"]
    return it, None


# --------------------------------------------------------------------------------------
def manifest_rows(mb, items):
    rows = []

    def row(it, seg, pr):
        tags = ";".join("%s=%s" % (k, seg["tags"][k]) for k in sorted(seg["tags"]))
        return {
            "file": it["file"],
            "source_id": seg["source_id"],
            "src_start": mb.fmt(seg["src"][0]),
            "src_end": mb.fmt(seg["src"][1]),
            "transforms": ";".join(seg["transforms"]),
            "role": it["role"],
            "duration": mb.fmt(round(pr["duration"], 3)),
            "width": pr["width"],
            "height": pr["height"],
            "has_audio": int(pr["has_audio_stream"]),
            "tags": tags,
        }

    for it in sorted((i for i in items if i.get("file")), key=lambda x: x["file"]):
        if it.get("_failed") or "_probe" not in it:
            continue
        if "parent" in it and items[it["parent"]].get("_failed"):
            continue
        for seg in it["segs"] if it["kind"] == "montage" else [it]:
            rows.append(row(it, seg, it["_probe"]))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("media", help="media dir from fetch_media.sh")
    ap.add_argument("out", help="output dir (videos/ + manifest.csv)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--bench-dir",
        default=os.environ.get("BENCH_DIR", DEFAULT_BENCH),
        help="folder with make_bench.py (default ../shared/bench)",
    )
    ap.add_argument("--copies", default="3-5", help="full copies per original, MIN-MAX")
    ap.add_argument("--montages", type=int, default=12)
    ap.add_argument("--decoys", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="ffmpeg threads per job")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N media clips (smoke test)")
    ap.add_argument("--dry-run", action="store_true", help="plan and print counts only")
    ap.add_argument("--keep-work", action="store_true")
    ap.add_argument("--force", action="store_true", help="overwrite an existing OUT")
    args = ap.parse_args(argv)
    # make_bench's own defaults for the parts it plans
    args.transforms, args.partial_frac, args.silent_frac, args.music_frac = "hard", 0.4, 0.3, 0.25
    args.intro_groups, args.intro_size, args.filler_frac = 2, 4, 0.12
    args.max_len, args.seg_len, args.seg_gap = 30.0, 20.0, 3.0

    mb = load_py("make_bench", os.path.join(args.bench_dir, "make_bench.py"))
    tr = load_py("bench_hard_transforms", os.path.join(HERE, "transforms.py"))
    tr.register(mb)
    distinct_mandelbrots(mb)
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            sys.exit("%s not found (apt-get install -y ffmpeg)" % tool)
    src_media, out = os.path.abspath(args.media), os.path.abspath(args.out)
    if not os.path.isdir(os.path.join(src_media, "video")):
        sys.exit("no video/ in %s (run fetch_media.sh first)" % src_media)
    if os.path.exists(os.path.join(out, "manifest.csv")) and not args.force and not args.dry_run:
        sys.exit("%s already holds a benchmark (use --force to regenerate)" % out)
    vdir, work, media = os.path.join(out, "videos"), os.path.join(out, "work"), os.path.join(out, "media")
    if os.path.isdir(vdir) and not args.dry_run:
        shutil.rmtree(vdir)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    print("synthesising screen recordings ...", flush=True)
    build_media(mb, args, src_media, media, work)

    rng = random.Random(args.seed)
    copies_rng = random.Random(args.seed * 7919 + 17)
    xrng = random.Random(args.seed * 104729 + 29)
    planner = mb.Planner(args, media, work, mb.TRANSFORM_SETS["hard"], rng)
    print("probing media in %s ..." % media, flush=True)
    clips = planner.inventory(args.jobs)
    if args.limit:
        clips = clips[: args.limit]
    items = planner.plan(clips, copies_rng)
    planner.ctx.extra["_take_music"] = lambda d: tr.take_music(planner.ctx, d, xrng)
    plan_music_over(planner, mb, xrng)
    plan_montages(planner, mb, xrng, args.montages, set(mb.TRANSFORM_SETS["hard"]))
    plan_decoys(planner, mb, xrng, args.decoys)
    items = [it for it in planner.items]
    live = [it for it in items if it["phase"] > 0]

    order = list(range(len(live)))
    random.Random(args.seed + 1).shuffle(order)
    for n, idx in enumerate(order):
        live[idx]["file"] = "v%04d.mp4" % (n + 1)
    roles = {}
    for it in live:
        roles[it["role"]] = roles.get(it["role"], 0) + 1
    print("planned %d videos: %s" % (len(live), ", ".join("%s=%d" % kv for kv in sorted(roles.items()))))
    if args.dry_run:
        for t in sorted(planner.usage):
            print("  %-14s used in %d copies/excerpts" % (t, planner.usage[t]))
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(media, ignore_errors=True)
        return 0

    os.makedirs(vdir, exist_ok=True)
    failures, done = [], 0
    logf = open(os.path.join(out, "render_errors.log"), "w")
    for phase in (1, 2, 3):
        batch = [it for it in live if it["phase"] == phase]
        with cf.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            futs = []
            for it in batch:
                if it["kind"] in ("montage", "decoy"):
                    futs.append(
                        ex.submit(render_extra, mb, it, items, vdir, work, planner.font, args.threads, logf)
                    )
                else:
                    futs.append(ex.submit(mb.render, it, items, vdir, work, planner.font, args.threads, logf))
            for fut in cf.as_completed(futs):
                it, problem = fut.result()
                done += 1
                if problem:
                    failures.append(
                        {
                            "file": it["file"],
                            "role": it["role"],
                            "error": problem,
                            "transforms": ";".join(it.get("transforms", [])),
                        }
                    )
                    it["_failed"] = True
                    p = os.path.join(vdir, it["file"])
                    if os.path.exists(p):
                        os.remove(p)
                if done % 25 == 0 or done == len(live):
                    print("  rendered %d/%d (%.0fs)" % (done, len(live), time.time() - t0), flush=True)
    logf.close()

    rows = manifest_rows(mb, items)
    with open(os.path.join(out, "manifest.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    tcount, files = {}, {}
    for r in rows:
        files[r["file"]] = r
        for t in r["transforms"].split(";"):
            if t:
                tcount[t.split("(")[0]] = tcount.get(t.split("(")[0], 0) + 1
    summary = {
        "seed": args.seed,
        "transform_set": "hard",
        "media": src_media,
        "videos": len(files),
        "manifest_rows": len(rows),
        "roles": {},
        "transform_counts": tcount,
        "failures": failures,
        "filler_clips": planner.filler_files,
        "seconds": round(time.time() - t0, 1),
        "total_video_seconds": round(sum(float(r["duration"]) for r in files.values()), 1),
    }
    for r in files.values():
        summary["roles"][r["role"]] = summary["roles"].get(r["role"], 0) + 1
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(media, ignore_errors=True)
    print(
        "wrote %d videos (%d manifest rows) to %s (%d failed) in %.0f s"
        % (len(files), len(rows), vdir, len(failures), summary["seconds"])
    )
    print("roles: %s" % ", ".join("%s=%d" % kv for kv in sorted(summary["roles"].items())))
    for fl in failures:
        print("  FAILED %s [%s] %s: %s" % (fl["file"], fl["role"], fl["transforms"], fl["error"]))
    print("manifest: %s" % os.path.join(out, "manifest.csv"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
