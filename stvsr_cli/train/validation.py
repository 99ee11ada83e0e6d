"""Validation during training: PSNR of the model's frames on held-back triplets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import (
    degrade,
    load_sequences,
)
from ..metrics import psnr_from_mse
from ..nets import DualStream
from ..tiling import pad_to_multiple
from .config import TrainConfig

# ---------------------------------------------------------------- validation


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of float [0,1] images after rounding both to 8 bits (as shipped output).

    The same formula and cap as ``metrics.psnr``, which ``stvsr bench`` uses on uint8 frames.
    """
    p = (pred.clamp(0, 1) * 255).round()
    t = (target.clamp(0, 1) * 255).round()
    return psnr_from_mse(torch.mean((p - t) ** 2).item())


def _full_triplet(seq, start: int) -> torch.Tensor:
    """Frames ``start..start+2`` of ``seq`` as ``[3, 3, H, W]`` uint8, cropped to multiples of 32."""
    t = torch.from_numpy(np.stack([seq.frame(start + k) for k in range(3)])).permute(0, 3, 1, 2)
    h, w = (t.shape[-2] // 32) * 32, (t.shape[-1] // 32) * 32
    return t[..., :h, :w].contiguous()


def validation_triplets(config: TrainConfig) -> list[torch.Tensor]:
    """Fixed full-frame HR triplets ``[3, 3, H, W]`` uint8 (cropped to multiples of 32).

    ``config.val`` folders give ``val_triplets`` evenly spaced triplets per sequence (a Vimeo
    folder its test list, else its train list); Vimeo-layout ``config.data`` adds the first 64
    sequences of its own test list. Frames smaller than 32 pixels are skipped.
    """
    triplets = []
    for root in config.val or []:
        root = Path(root)
        sequences = load_sequences(root, None, "test", config.max_frames) or load_sequences(
            root, None, "train", config.max_frames
        )
        for seq in sequences:
            n = len(seq)
            if n < 3:
                continue
            k = config.val_triplets
            starts = sorted({round(i * (n - 3) / max(k - 1, 1)) for i in range(k)}) if n > 3 else [0]
            triplets.extend(_full_triplet(seq, s) for s in starts)
    for root in config.data:  # Vimeo-style data brings its own test list
        root = Path(root)
        if root.is_dir():
            for seq in load_sequences(root, config.layout, "test", config.max_frames)[:64]:
                triplets.append(_full_triplet(seq, 0))
    return [t for t in triplets if t.shape[-1] and t.shape[-2]]


@torch.inference_mode()
def validate(model: DualStream, triplets: list[torch.Tensor], antialias: bool) -> dict[str, float]:
    """Mean PSNR over the triplets: keyframes, both streams, fused, refined and baselines."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    for t in triplets:
        hr = t.float().unsqueeze(0) / 255  # [1, 3, 3, H, W]
        lr = degrade(hr, antialias)
        l0, _, l2 = lr.unbind(1)
        h0, h1, h2 = hr.unbind(1)
        # padded to the model's size multiple, every output (LR or HR) cropped back
        h, w = l0.shape[-2:]
        padded = pad_to_multiple(torch.cat((l0, l2)), model.size_multiple)
        out = {}
        for name, value in model(*padded.chunk(2)).items():
            s = value.shape[-1] // padded.shape[-1]
            out[name] = value[..., : s * h, : s * w]
        bic = F.interpolate(torch.cat((l0, l2)), scale_factor=2, mode="bicubic", align_corners=False)
        row = {
            "key": 0.5 * (psnr(out["h0"], h0) + psnr(out["h1"], h2)),
            "key_bicubic": 0.5 * (psnr(bic[:1], h0) + psnr(bic[1:], h2)),
            "mid_blend": psnr(bic.mean(0, keepdim=True), h1),
            "mid_st": psnr(out["h_st"], h1),
            "mid_ts": psnr(out["h_ts"], h1),
            "mid_fused": psnr(out["h_fused"], h1),
            "mid_refined": psnr(out["h_refined"], h1),
        }
        for k, v in row.items():
            sums[k] = sums.get(k, 0.0) + v
    model.train(was_training)
    return {k: round(v / max(len(triplets), 1), 3) for k, v in sums.items()}
