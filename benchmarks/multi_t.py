"""New frames at t = 1/4, 1/2, 3/4 (``--multi 4``) against MCI + lanczos and blending, on the
val clips, under the bench protocol with every 4th frame as input.

Usage: python benchmarks/multi_t.py [--data ../shared/data] [--frames 21] [--model default] [--json OUT]

For each clip: the first ``frames`` frames (4(N-1)+1 of them), cropped to even size, are the
truth; LR input = frames 0, 4, 8, ... downscaled x0.5 by the protocol's ``degrade`` (antialiased
bicubic, rounded to 8 bits). Each method makes all frames at 2x size: keyframes at t = 0 and new
frames at t = 1/4, 2/4, 3/4 of each input interval. RGB PSNR per frame, averaged per position
then over clips. (``stvsr bench`` itself scores the midpoint only.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from stvsr_cli.baselines import bicubic_blend, mci_lanczos
from stvsr_cli.degradation import degrade
from stvsr_cli.metrics import psnr
from stvsr_cli.upscaler import Upscaler
from stvsr_cli.video import read_frames
from stvsr_cli.weights import load_model

CLIPS = ("carphone_pristine.mp4", "realshort.mp4")  # the val split's clips (shared/data README)
MULTI = 4


def truth_and_input(path: Path, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    hr = []
    for rgb, _ in read_frames(path, max_frames=frames):
        h, w = rgb.shape[:2]
        hr.append(np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2]))
    hr = hr[: (len(hr) - 1) // MULTI * MULTI + 1]
    x = torch.from_numpy(np.stack(hr[0::MULTI])).permute(0, 3, 1, 2).float() / 255.0
    lr = (degrade(x) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return hr, [np.ascontiguousarray(f) for f in lr]


def by_position(out: list[np.ndarray], hr: list[np.ndarray]) -> dict[str, float]:
    scores: dict[str, list[float]] = {}
    for t, (a, b) in enumerate(zip(out, hr, strict=True)):
        scores.setdefault("key" if t % MULTI == 0 else f"{t % MULTI}/{MULTI}", []).append(psnr(a, b))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--frames", type=int, default=21)
    parser.add_argument("--model", default="default")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    upscaler = Upscaler(load_model(args.model), "cpu", multi=MULTI)
    methods = {
        "bicubic_blend": lambda lr: bicubic_blend(lr, MULTI),
        "mci_lanczos": lambda lr: mci_lanczos(lr, MULTI),
        f"stvsr ({args.model}, {upscaler.precision})": lambda lr: list(upscaler.run(lr)),
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in CLIPS:
        hr, lr = truth_and_input(args.data / "clips" / name, args.frames)
        for method, run in methods.items():
            results.setdefault(method, {})[name] = by_position(run(lr), hr)
    columns = ["key", *(f"{k}/{MULTI}" for k in range(1, MULTI))]
    print(f"| method | {' | '.join(columns)} |\n|---|{'---:|' * len(columns)}")
    for method, per_clip in results.items():
        means = [np.mean([c[col] for c in per_clip.values()]) for col in columns]
        print(f"| {method} | {' | '.join(f'{m:.2f}' for m in means)} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
