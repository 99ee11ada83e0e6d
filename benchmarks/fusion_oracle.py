"""How much could *any* fusion of the two streams gain? Upper bounds on the val sets.

For each new frame (odd t) of each val clip it takes the model's S->T and T->S frames (uint8, as
``stvsr bench`` scores them) and the truth, and scores (RGB PSNR, per frame, then per clip, then
per set, as the protocol):

* ``st``, ``ts``, ``fused``: the streams and the model's own fusion;
* ``pick_B``: per BxB block, the better of the two streams (an oracle that knows the truth);
* ``blend_B``: per BxB block, the least-squares ``m0 * st + m1 * ts`` (the paper's two free
  masks, constant over a block, chosen knowing the truth, not rounded: an upper bound);
* ``blend_frame``: the same with one ``(m0, m1)`` per frame.

F sees neither the truth nor more than its receptive field, so what it can reach at the same
block size is at most these. Usage (the val folders as ``benchmarks/val_bench.sh`` builds them)::

    python benchmarks/fusion_oracle.py --videos runs/val_bench/videos --ucf101 runs/val_bench/ucf101 \\
        --middlebury ../shared/data/frames/middlebury --precision fp32
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from stvsr_cli.bench.datasets import find_clips
from stvsr_cli.bench.methods import model_outputs
from stvsr_cli.metrics import psnr_from_mse
from stvsr_cli.upscaler import Upscaler, resolve_device
from stvsr_cli.weights import load_model

BLOCKS = (8, 32, 128)  # block sizes in HR pixels


def _block_sums(x: np.ndarray, b: int) -> np.ndarray:
    """Sum of ``x`` (``[H, W]``) over each BxB block (edge blocks partial): ``[nblocks]``."""
    h, w = x.shape
    ids = (np.arange(h)[:, None] // b) * (-(-w // b)) + np.arange(w)[None, :] // b
    return np.bincount(ids.ravel(), weights=x.ravel())


def _blend_sse(sums: dict[str, np.ndarray]) -> np.ndarray:
    """Per block: the squared error of the best ``m0 * st + m1 * ts`` with any real ``m0, m1``
    (F's masks lie in [0, 1], so this bounds what they can reach): ``gg - b^T A^-1 b``."""
    a11, a22, a12, b1, b2, gg = (sums[k] for k in ("ss", "tt", "st", "sg", "tg", "gg"))
    det = a11 * a22 - a12 * a12
    ok = det > 1e-6 * a11 * a22
    safe = np.where(ok, det, 1.0)
    explained = np.where(
        ok, (b1 * b1 * a22 - 2 * b1 * b2 * a12 + b2 * b2 * a11) / safe, b1 * b1 / np.maximum(a11, 1e-9)
    )
    return np.maximum(gg - explained, 0.0)


def frame_scores(st: np.ndarray, ts: np.ndarray, fused: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    st, ts, fused, gt = (x.astype(np.float64) for x in (st, ts, fused, gt))
    n = gt.size
    mse = {name: float(((x - gt) ** 2).mean()) for name, x in (("st", st), ("ts", ts), ("fused", fused))}
    products = {"ss": st * st, "tt": ts * ts, "st": st * ts, "sg": st * gt, "tg": ts * gt, "gg": gt * gt}
    errors = {"st": (st - gt) ** 2, "ts": (ts - gt) ** 2}
    for b in BLOCKS:
        e_st, e_ts = (_block_sums(e.sum(2), b) for e in (errors["st"], errors["ts"]))
        mse[f"pick_{b}"] = float(np.minimum(e_st, e_ts).sum() / n)
        sums = {k: _block_sums(v.sum(2), b) for k, v in products.items()}
        mse[f"blend_{b}"] = float(_blend_sse(sums).sum() / n)
    whole = {k: np.array([v.sum()]) for k, v in products.items()}
    mse["blend_frame"] = float(_blend_sse(whole)[0] / n)
    return {k: psnr_from_mse(v) for k, v in mse.items()}


def dataset_scores(upscaler, dataset: str, root: str) -> dict[str, float]:
    sources, _ = find_clips(dataset, root, max_frames=21 if dataset == "videos" else 0)
    per_clip = []
    for source in sources:
        clip = source.load()
        rows = model_outputs(upscaler, clip.lr, ("model_st", "model_ts", "model_fused"))
        frames = [
            frame_scores(rows["model_st"][t], rows["model_ts"][t], rows["model_fused"][t], gt)
            for t, gt in clip.gt.items()
            if t % 2 == 1
        ]
        per_clip.append({k: float(np.mean([f[k] for f in frames])) for k in frames[0]})
    return {k: float(np.mean([c[k] for c in per_clip])) for k in per_clip[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="weights file (default: the bundled default)")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--videos")
    p.add_argument("--ucf101")
    p.add_argument("--middlebury")
    p.add_argument("--json")
    args = p.parse_args()
    upscaler = Upscaler(load_model(args.model), resolve_device("cpu"), args.precision)
    results = {}
    for dataset in ("videos", "ucf101", "middlebury"):
        root = getattr(args, dataset)
        if root:
            results[dataset] = dataset_scores(upscaler, dataset, root)
    names = list(next(iter(results.values())))
    print("| set | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for dataset, scores in results.items():
        print(f"| {dataset} | " + " | ".join(f"{scores[n]:.2f}" for n in names) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
