"""The hard transform set for ../shared/bench/make_bench.py (issue 26, deliverable 1).

    python3 ../shared/bench/make_bench.py MEDIA OUT --transforms hard \
        --transforms-module bench/hard/transforms.py

make_bench.py calls register(module) with itself; the transforms below then join its
registry and the set "hard" becomes selectable. bench/hard/make_hard.py uses the same set and
adds what a one-parent copy cannot express (montages, decoys, screen recordings).

Families (each alone or in chains of two or three, as make_bench chooses them):
    pip       the copy shrunk to 35-65 % of the frame width in a corner over other footage
    stack     vertical or horizontal split screen, the copy filling 50-95 % of the frame
    music     the soundtrack replaced by unrelated music
    speed     0.7-1.5x, with or without the pitch kept
    rotate    +-3-12 degrees, black corners or zoomed to fill
    text      caption overlay (make_bench's dev transform)
    logo      a channel bug in a corner
    padbig    heavy padding: black, coloured or the blurred picture itself behind it
    stretch   one axis scaled by 0.7-0.85 or 1.2-1.45
    noise     temporal + uniform noise
    squash    heavy compression: downscaled and upscaled, then 120-350 kbit/s
    hflip, audio_drop (make_bench's dev transforms)

Standard library only: the benchmark builds on any Debian 12 with ffmpeg.
"""

# ruff: noqa: UP031  (the %-formatted filter strings keep one style with make_bench's Graph API)

import math
import os
import subprocess

MB = None  # the make_bench module, set by register()

LOGO_TEXTS = ["TV5", "NEWS24", "clipz", "HD+", "VIDZ", "ZTV", "myfeed", "K-ONE", "reup", "FUNNY"]
LOGO_COLORS = ["0x1b3a8a", "0x8a1b1b", "0x1b8a3a", "0x6a1b8a", "0xd08000", "0x202020"]
PIP_FRAMES = [None, (1280, 720), (854, 480), (640, 360)]


def _even(x, lo=16):
    return MB.even(x, lo)


def _fmt(x):
    return MB.fmt(x)


def _corner_xy(corner, FW, FH, w, h, m):
    x = m if corner in ("tl", "bl") else FW - w - m
    y = m if corner in ("tl", "tr") else FH - h - m
    return max(0, x), max(0, y)


def _overlay(g, bottom, top, x, y):
    out = g.lab()
    g.filters.append("[%s][%s]overlay=x=%s:y=%s:shortest=1[%s]" % (bottom, top, x, y, out))
    return out


# --- picture-in-picture ----------------------------------------------------------------------
def _plan_pip(rng, ctx, it):
    # the background is new filler footage; its id is tagged so the evaluator can tell a
    # shared background from a shared copy (every filler is used once anyway)
    bg = ctx.fillers.take(it["dur"])
    it["tags"]["filler_pip"] = bg["id"]
    return {
        "scale": round(rng.uniform(0.35, 0.65), 2),
        "corner": rng.choice(["tl", "tr", "bl", "br"]),
        "_margin": round(rng.uniform(0.0, 0.06), 3),
        "_frame": rng.choice(PIP_FRAMES),
        "_bg": bg,
    }


def _build_pip(g, p):
    FW, FH = p["_frame"] or (_even(g.w), _even(g.h))
    ar = g.w / float(g.h)
    w = _even(FW * p["scale"])
    h = _even(w / ar)
    if h > FH * p["scale"] * 1.15:  # a tall copy in a wide frame: scale by the height instead
        h = _even(FH * p["scale"])
        w = _even(h * ar)
    m = int(p["_margin"] * min(FW, FH))
    x, y = _corner_xy(p["corner"], FW, FH, w, h, m)
    bg, _ = g.add_clip(p["_bg"], FW, FH, g.fps, g.dur, audio=False)
    fg = g.chain(g.v, "scale=%d:%d,setsar=1,fps=%s,format=yuv420p" % (w, h, _fmt(g.fps)))
    g.v = _overlay(g, bg, fg, x, y)
    g.w, g.h = FW, FH


# --- stacked / split screen ------------------------------------------------------------------
def _plan_stack(rng, ctx, it):
    bg = ctx.fillers.take(it["dur"])
    it["tags"]["filler_stack"] = bg["id"]
    return {
        "mode": rng.choice(["vstack", "hstack"]),
        "frac": round(rng.uniform(0.5, 0.95), 2),
        "pos": rng.choice(["first", "second"]),
        "_bg": bg,
    }


def _build_stack(g, p):
    W, H = _even(g.w), _even(g.h)
    fg = g.chain(g.v, "scale=%d:%d,setsar=1,fps=%s,format=yuv420p" % (W, H, _fmt(g.fps)))
    f = p["frac"]
    if p["mode"] == "vstack":
        ow, oh = W, _even(H * (1 - f) / f)
    else:
        ow, oh = _even(W * (1 - f) / f), H
    other, _ = g.add_clip(p["_bg"], ow, oh, g.fps, g.dur, audio=False)
    a, b = (fg, other) if p["pos"] == "first" else (other, fg)
    out = g.lab()
    g.filters.append("[%s][%s]%s=inputs=2:shortest=1[%s]" % (a, b, p["mode"], out))
    g.v = out
    g.w, g.h = (W, H + oh) if p["mode"] == "vstack" else (W + ow, H)


# --- soundtrack replaced -----------------------------------------------------------------------
def take_music(ctx, dur, rng):
    """A stretch of music nobody else carries; synthesised when the real tracks run out."""
    asset = ctx.audio._music(dur)
    if asset is None:
        asset = synth_music(ctx, dur, rng)
    return asset


def synth_music(ctx, dur, rng):
    n = ctx.extra["synth_music"] = ctx.extra.get("synth_music", 0) + 1
    path = os.path.join(ctx.work, "synthmusic_%03d.wav" % n)
    base = rng.choice([110.0, 130.8, 146.8, 164.8, 196.0, 220.0])
    steps = [rng.choice([0, 2, 3, 5, 7, 9, 10, 12]) for _ in range(8)]
    bpm = rng.uniform(80, 150)
    # a seeded arpeggio: a note per beat from an 8-step pattern, with a decaying envelope
    idx = "floor(mod(t*%s/60,8))" % _fmt(bpm)
    semis = "+".join("eq(%s,%d)*%d" % (idx, i, s) for i, s in enumerate(steps))
    expr = "0.25*sin(2*PI*%s*pow(2,(%s)/12)*t)*exp(-4*mod(t*%s/60,1))" % (_fmt(base), semis, _fmt(bpm))
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=exprs='%s|%s':s=44100:d=%s" % (expr, expr, _fmt(dur + 1)),
            path,
        ],
        check=True,
    )
    return {"path": path, "offset": 0.0, "dur": dur, "kind": "music", "id": "synthmusic_%03d" % n}


def _plan_music(rng, ctx, it):
    asset = take_music(ctx, it["dur"], rng)
    it["has_audio"] = True
    it["tags"]["audio"] = asset["id"]
    # make_hard lays some of these tracks over other footage too (music-reuse negatives)
    ctx.extra.setdefault("music_assets", []).append(asset)
    return {"_asset": asset}


def _build_music(g, p):
    g.drop_audio()
    g.a = g.add_audio_asset(p["_asset"], g.dur)


# --- speed ---------------------------------------------------------------------------------
def _plan_speed(rng, ctx, it):
    f = rng.choice([rng.uniform(0.7, 0.92), rng.uniform(1.08, 1.5)])
    it["dur"] = round(it["dur"] / f, 2)  # later stages (music) see the new length
    return {"factor": round(f, 2), "pitch": rng.choice(["kept", "shifted"])}


def _build_speed(g, p):
    f = p["factor"]
    g.vf("setpts=PTS/%s,fps=%s" % (_fmt(f), _fmt(g.fps)))
    if g.a is not None:
        g.a = g.norm_audio(g.a)
        if p["pitch"] == "kept":
            g.af("atempo=%s" % _fmt(f))
        else:  # tape-style: pitch moves with the speed
            g.af("asetrate=%d,aresample=%d" % (int(round(MB.AUDIO_RATE * f)), MB.AUDIO_RATE))
    g.dur = g.dur / f


# --- rotation --------------------------------------------------------------------------------
def _plan_rotate(rng, ctx, it):
    return {"deg": round(rng.choice([-1, 1]) * rng.uniform(3, 12), 1), "fill": rng.choice(["black", "zoom"])}


def _build_rotate(g, p):
    a = math.radians(p["deg"])
    W, H = _even(g.w), _even(g.h)
    g.vf("rotate=a=%s:ow=%d:oh=%d:c=black" % (repr(round(a, 5)), W, H))
    if p["fill"] == "zoom":  # crop the black corners away and scale back
        z = abs(math.cos(a)) + abs(math.sin(a)) * max(W / float(H), H / float(W))
        cw, ch = _even(W / z), _even(H / z)
        g.vf("crop=%d:%d,scale=%d:%d" % (cw, ch, W, H))
    g.w, g.h = W, H


# --- logo --------------------------------------------------------------------------------------
def _plan_logo(rng, ctx, it):
    return {
        "text": rng.choice(LOGO_TEXTS),
        "corner": rng.choice(["tl", "tr", "bl", "br"]),
        "size": round(rng.uniform(0.08, 0.16), 3),
        "_color": rng.choice(LOGO_COLORS),
        "_alpha": round(rng.uniform(0.55, 0.9), 2),
    }


def _build_logo(g, p):
    h = max(12, int(g.h * p["size"]))
    w = int(h * (0.6 * len(p["text"]) + 0.8))
    x, y = _corner_xy(p["corner"], g.w, g.h, w, h, int(0.03 * min(g.w, g.h)))
    font = ("fontfile=%s:" % g.font) if g.font else ""
    g.vf(
        "drawbox=x=%d:y=%d:w=%d:h=%d:color=%s@%s:t=fill,"
        "drawtext=%stext='%s':fontsize=%d:fontcolor=white@%s:x=%d+(%d-tw)/2:y=%d+(%d-th)/2"
        % (
            x,
            y,
            w,
            h,
            p["_color"],
            _fmt(p["_alpha"]),
            font,
            p["text"],
            int(h * 0.62),
            _fmt(min(1.0, p["_alpha"] + 0.1)),
            x,
            w,
            y,
            h,
        )
    )


# --- heavy padding -------------------------------------------------------------------------------
def _plan_padbig(rng, ctx, it):
    return {
        "fill": rng.choice(["black", "color", "blur"]),
        "bar": round(rng.uniform(0.15, 0.4), 3),
        "axis": rng.choice(["x", "y", "xy"]),
        "_color": rng.choice(LOGO_COLORS),
    }


def _build_padbig(g, p):
    W, H = _even(g.w), _even(g.h)
    bw = _even(W * p["bar"], 2) if "x" in p["axis"] else 0
    bh = _even(H * p["bar"], 2) if "y" in p["axis"] else 0
    OW, OH = W + 2 * bw, H + 2 * bh
    if p["fill"] == "blur":  # the social-media look: the picture itself, enlarged and blurred
        lab1, lab2 = g.lab(), g.lab()
        g.filters.append("[%s]scale=%d:%d,split[%s][%s]" % (g.v, W, H, lab1, lab2))
        bg = g.chain(
            lab1,
            "scale=%d:%d:force_original_aspect_ratio=increase,crop=%d:%d,gblur=sigma=18" % (OW, OH, OW, OH),
        )
        g.v = _overlay(g, bg, lab2, bw, bh)
    else:
        color = "black" if p["fill"] == "black" else p["_color"]
        g.vf("scale=%d:%d,pad=%d:%d:%d:%d:%s" % (W, H, OW, OH, bw, bh, color))
    g.w, g.h = OW, OH


# --- stretch -----------------------------------------------------------------------------------
def _plan_stretch(rng, ctx, it):
    return {
        "axis": rng.choice(["x", "y"]),
        "factor": round(rng.choice([rng.uniform(0.7, 0.85), rng.uniform(1.2, 1.45)]), 2),
    }


def _build_stretch(g, p):
    if p["axis"] == "x":
        W, H = _even(g.w * p["factor"], 32), _even(g.h)
    else:
        W, H = _even(g.w), _even(g.h * p["factor"], 32)
    g.vf("scale=%d:%d,setsar=1" % (W, H))
    g.w, g.h = W, H


# --- noise and heavy compression ---------------------------------------------------------------
def _plan_noise(rng, ctx, it):
    return {"strength": rng.randint(12, 35)}


def _build_noise(g, p):
    g.vf("noise=alls=%d:allf=t+u" % p["strength"])


def _plan_squash(rng, ctx, it):
    return {"kbps": rng.randint(120, 350), "down": round(rng.uniform(0.3, 0.6), 2)}


def _build_squash(g, p):
    W, H = _even(g.w), _even(g.h)
    g.vf("scale=%d:%d,scale=%d:%d" % (_even(W * p["down"]), _even(H * p["down"]), W, H))
    g.w, g.h = W, H
    g.bitrate_k = p["kbps"]


HARD_SET = [
    "pip",
    "stack",
    "music",
    "speed",
    "rotate",
    "text",
    "logo",
    "padbig",
    "stretch",
    "noise",
    "squash",
    "hflip",
    "audio_drop",
]


def register(mb):
    """Add the hard transforms and the set "hard" to make_bench's registry."""
    global MB
    MB = mb
    reg = mb.register_transform
    # stages: 2 pixels/geometry, 3 compositing, 4 overlays, 5 timing, 6 audio, 7 codec
    reg("rotate", _plan_rotate, _build_rotate, group="rotate", stage=2)
    reg("stretch", _plan_stretch, _build_stretch, group="geometry", stage=2)
    reg("padbig", _plan_padbig, _build_padbig, group="geometry", stage=3)
    reg("pip", _plan_pip, _build_pip, group="layout", stage=3)
    reg("stack", _plan_stack, _build_stack, group="layout", stage=3)
    reg("logo", _plan_logo, _build_logo, group="logo", stage=4)
    reg("noise", _plan_noise, _build_noise, group="noise", stage=4)
    reg("speed", _plan_speed, _build_speed, group="timing", stage=5)
    reg("music", _plan_music, _build_music, group="audio", stage=6)
    reg("squash", _plan_squash, _build_squash, group="codec", stage=7)
    mb.TRANSFORM_SETS["hard"] = list(HARD_SET)
    mb.SET_DEFAULTS["hard"] = {"copies": "3-5"}
