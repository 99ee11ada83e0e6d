"""What a training run is (``TrainConfig``), its stages, their learning rates, what each
trains and its losses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data import (
    VIDEO_MEMORY_GIB,
)
from ..names import DEFAULT_DEGRADATION
from ..nets import DualStream

STAGES = ("ms", "mt", "fusion", "joint")
# share of the total steps each stage gets when all stages run
STAGE_SHARES = {"ms": 0.3, "mt": 0.3, "fusion": 0.1, "joint": 0.3}
MODEL_PARTS = ("spatial", "temporal", "fusion", "refine")  # DualStream's children, for --init-modules


@dataclass
class TrainConfig:
    data: list[str]
    out: str
    steps: int = 1000
    stage: str = "all"
    layout: str | None = None
    stills: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    batch: int = 24  # the paper's
    lr: float = 5e-5  # the paper's, for fusion and joint stages
    pretrain_lr: float = 5e-4  # MS/MT pre-training from scratch learns faster with more
    crop: int = 128
    strides: tuple[int, ...] = (1, 2, 3)
    still_fraction: float = 0.15
    min_scale: float = 1.0  # samples' content at a random scale in [min_scale, 1] (SampleConfig)
    degradation: str = DEFAULT_DEGRADATION  # stvsr_cli.names.DEGRADATIONS
    seed: int = 0
    val_every: int = 500
    save_every: int = 100
    log_every: int = 10
    init: str | None = None  # start from these weights (fine-tuning)
    init_modules: tuple[str, ...] | None = None  # take only these parts from `init`, the rest fresh
    freeze: tuple[str, ...] = ()  # parts kept as they are in every stage (e.g. a pretrained temporal net)
    model_config: str | None = None  # JSON of DualStreamConfig: a fresh model, or the architecture for `init`
    grow: bool = False  # `model_config` is `init`'s architecture with more residual blocks: they start as identity
    backbones: tuple[str, ...] = ()  # backbone files (import-weights): each replaces the part of its role
    max_frames: int = 300  # per training clip
    video_memory: float = VIDEO_MEMORY_GIB  # decoded training video held in memory, all clips together
    val_triplets: int = 4  # per validation sequence
    workers: int | None = None  # processes preparing batches ahead; None: 0 on CPU, several on a GPU
    ema: float = 0.0  # decay of a moving average of the weights, per step (e.g. 0.999); 0: off


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

    def forward(self, stage: str, hr: torch.Tensor, lr: torch.Tensor) -> dict[str, torch.Tensor]:
        """``hr [B, 3 frames, 3, H, W]``, ``lr [B, 3 frames, 3, H/2, W/2]`` -> named L1 losses."""
        return stage_losses(self.model, stage, hr, lr)


def stage_losses(model: DualStream, stage: str, hr: torch.Tensor, lr: torch.Tensor) -> dict[str, torch.Tensor]:
    h0, h1, h2 = hr.unbind(1)
    l0, l1, l2 = lr.unbind(1)
    if stage == "ms":
        return {"ms": F.l1_loss(model.spatial(lr.flatten(0, 1)), hr.flatten(0, 1))}
    if stage == "mt":
        motion = model.temporal.estimate(l0, l2)
        losses = {"mt": F.l1_loss(model.temporal.synthesize(l0, l2, motion), l1)}
        if model.config.st_motion == "hr":  # the S->T stream estimates its own motion at HR
            motion = model.temporal.estimate(h0, h2)
        losses["mt_hr"] = F.l1_loss(model.temporal.synthesize(h0, h2, motion), h1)
        return losses
    out = model(l0, l2)
    losses = {"fused": F.l1_loss(out["h_fused"], h1), "refined": F.l1_loss(out["h_refined"], h1)}
    if stage == "joint":
        losses.update(
            st=F.l1_loss(out["h_st"], h1),
            ts=F.l1_loss(out["h_ts"], h1),
            ms=F.l1_loss(out["h0"], h0) + F.l1_loss(out["h1"], h2),
            mt=F.l1_loss(out["l_mid"], l1),
        )
    return losses
