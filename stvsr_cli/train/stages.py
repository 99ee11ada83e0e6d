"""The stages of a training run: their steps, learning rates, what each trains and its losses."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..nets import DualStream
from .config import STAGE_SHARES, STAGES, TrainConfig


def stage_plan(config: TrainConfig) -> list[tuple[str, int, int]]:
    """``[(stage, first_step, end_step), ...]`` covering ``range(config.steps)``."""
    if config.stage != "all":
        return [(config.stage, 0, config.steps)]
    plan, start = [], 0
    for i, name in enumerate(STAGES):
        end = config.steps if i == len(STAGES) - 1 else start + round(config.steps * STAGE_SHARES[name])
        plan.append((name, start, max(end, start)))
        start = max(end, start)
    return plan


def lr_size_multiple(model: DualStream, stages: list[str]) -> int:
    """What LR crop sizes must be multiples of for ``stages``: MS's own multiple when MS is all
    they run (``ms``), else the whole model's."""
    if set(stages) == {"ms"}:
        return max(getattr(model.spatial, "size_multiple", 1), 1)
    return model.size_multiple


def learning_rate(config: TrainConfig, stage: str, step: int, start: int, end: int) -> float:
    """Linear warm-up over 3% of the stage, then cosine decay to 10% of the peak."""
    peak = config.pretrain_lr if stage in ("ms", "mt") else config.lr
    n = max(end - start, 1)
    t = step - start
    warm = max(1, int(0.03 * n))
    if t < warm:
        return peak * (t + 1) / warm
    progress = (t - warm) / max(n - warm, 1)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def trainable_modules(model: DualStream, stage: str) -> list[nn.Module]:
    return {
        "ms": [model.spatial],
        "mt": [model.temporal],
        "fusion": [model.fusion, model.refine],
        "joint": [model],
    }[stage]


def set_trainable(model: DualStream, stage: str, freeze: tuple[str, ...] = ()) -> list[nn.Parameter]:
    """What ``stage`` trains, less the ``freeze`` parts (``MODEL_PARTS`` names)."""
    model.requires_grad_(False)
    for module in trainable_modules(model, stage):
        module.requires_grad_(True)
    for part in freeze:
        getattr(model, part).requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


class TrainStep(nn.Module):
    """Computes one stage's losses; wrapped in DDP so gradients are averaged across ranks."""

    def __init__(self, model: DualStream):
        super().__init__()
        self.model = model

    def forward(
        self, stage: str, hr: torch.Tensor, lr: torch.Tensor, t: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        return stage_losses(self.model, stage, hr, lr, t)


def stage_losses(
    model: DualStream, stage: str, hr: torch.Tensor, lr: torch.Tensor, t: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Named L1 losses of ``stage`` for ``hr [B, 3 frames, 3, H, W]`` and ``lr [B, 3 frames, 3,
    H/2, W/2]``: the middle frame is the truth at time ``t`` ``[B]`` between the other two
    (``None``: halfway, 0.5)."""
    h0, h1, h2 = hr.unbind(1)
    l0, l1, l2 = lr.unbind(1)
    t = 0.5 if t is None else t
    if stage == "ms":
        return {"ms": F.l1_loss(model.spatial(lr.flatten(0, 1)), hr.flatten(0, 1))}
    if stage == "mt":
        motion = model.temporal.estimate(l0, l2, t)
        losses = {"mt": F.l1_loss(model.temporal.synthesize(l0, l2, motion, t), l1)}
        if model.config.st_motion == "hr":  # the S->T stream estimates its own motion at HR
            motion = model.temporal.estimate(h0, h2, t)
        losses["mt_hr"] = F.l1_loss(model.temporal.synthesize(h0, h2, motion, t), h1)
        return losses
    out = model(l0, l2, t)
    losses = {"fused": F.l1_loss(out["h_fused"], h1), "refined": F.l1_loss(out["h_refined"], h1)}
    if stage == "joint":
        losses.update(
            st=F.l1_loss(out["h_st"], h1),
            ts=F.l1_loss(out["h_ts"], h1),
            ms=F.l1_loss(out["h0"], h0) + F.l1_loss(out["h1"], h2),
            mt=F.l1_loss(out["l_mid"], l1),
        )
    return losses
