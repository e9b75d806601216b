"""How much of exact nearest-neighbour search an index projection keeps, on a library's real
frame embeddings: the basis is fitted on half the library and measured on the other half.

For each held-out frame, its exact k nearest frames of other held-out videos by full cosine are
compared with what the app's projected search returns with an exact index: the top k × rerank by
projected cosine, re-ranked by full cosine to k. Reported: recall@k of frames and of videos (the
share of the exact neighbours' videos found, which is what candidate votes are made of). With
--manifest (the benchmark's manifest.csv) the halves are split by source video, so no copy of a
held-out video's source helped fit the basis.
"""

import csv
import json
import zlib

import numpy as np
from django.core.management.base import BaseCommand

from dedup.features.projection import fit_basis, project, second_moment
from dedup.models import Video
from dedup.services import frame_embeddings


class Command(BaseCommand):
    help = "Recall of the projected candidate index on this library's real embeddings."

    def add_arguments(self, parser):
        parser.add_argument("--manifest", default="", help="Benchmark manifest: split by source_id.")
        parser.add_argument("--dims", type=int, nargs="+", default=[128, 192, 256, 384])
        parser.add_argument("--rerank", type=int, nargs="+", default=[1, 2, 4])
        parser.add_argument("--k", type=int, default=40)
        parser.add_argument(
            "--basis",
            nargs="+",
            choices=["uncentred", "centred", "random"],
            default=["uncentred"],
            help="uncentred: what fit_index_projection fits; centred: classic PCA (mean removed "
            "first); random: a random orthonormal projection. For comparison only.",
        )

    def handle(self, *args, manifest: str, dims: list, rerank: list, k: int, basis: list, **options):
        videos, x = frame_embeddings(
            "SELECT video_id, embedding FROM dedup_frame WHERE informative AND indexed ORDER BY id", []
        )
        vid = np.array(videos)
        if manifest:
            source = {r["file"]: r["source_id"] for r in csv.DictReader(open(manifest))}
            names = dict(Video.objects.values_list("pk", "file_name"))
            group = {v: source.get(names[v], str(v)) for v in set(vid.tolist())}
        else:
            group = {v: str(v) for v in set(vid.tolist())}
        train = np.array([zlib.crc32(group[v].encode()) % 2 == 0 for v in vid.tolist()])
        test = ~train
        xt, vt = x[test], vid[test]
        other = vt[:, None] != vt[None, :]
        exact_sims = np.where(other, xt @ xt.T, -9)
        exact = np.argsort(-exact_sims, axis=1)[:, :k]
        result = {
            "frames": int(len(x)),
            "fit_frames": int(train.sum()),
            "held_out_frames": int(test.sum()),
            "held_out_videos": int(len(set(vt.tolist()))),
            "split": "source video" if manifest else "video",
            "k": k,
            "recall": {},
        }
        mean = x[train].mean(axis=0)
        projected = {}
        for kind in basis:
            for dim in dims:
                if kind == "uncentred":
                    p = project(xt, fit_basis(second_moment(x[train]), dim=dim))
                elif kind == "centred":
                    p = project(xt - mean, fit_basis(second_moment(x[train] - mean), dim=dim))
                else:
                    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((x.shape[1], dim)))
                    p = project(xt, q.astype(np.float32))
                projected[f"{kind}_{dim}d" if len(basis) > 1 else f"{dim}d"] = p
        for name, p in projected.items():
            p /= np.linalg.norm(p, axis=1, keepdims=True)
            order = np.argsort(-np.where(other, p @ p.T, -9), axis=1)
            for r in rerank:
                top = order[:, : r * k]
                # the app's re-rank: the top k × r by projected cosine, ordered by full cosine
                picked = np.take_along_axis(top, np.argsort(-np.take_along_axis(exact_sims, top, 1), 1), 1)
                picked = picked[:, :k]
                frames = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, picked, strict=True)])
                videos = np.mean(
                    [
                        len(set(vt[a]) & set(vt[b])) / len(set(vt[a]))
                        for a, b in zip(exact, picked, strict=True)
                    ]
                )
                result["recall"][f"{name}_rerank{r}"] = {
                    "frames": round(float(frames), 3),
                    "videos": round(float(videos), 3),
                }
        self.stdout.write(json.dumps(result, indent=1))
