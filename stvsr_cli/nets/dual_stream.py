"""The dual-stream space-time upsampler (paper §3), wiring MS, MT, F and R.

For LR frames ``l0 = L(t-1)`` and ``l1 = L(t+1)`` (``[N, 3, h, w]``, contract in
``stvsr_cli.nets.blocks``):

* ``h0 = MS(l0)``, ``h1 = MS(l1)``                          keyframes, ``[N, 3, 2h, 2w]``
* ``l_mid = MT(l0, l1)``;  ``h_ts = MS(l_mid)``                  stream T->S (motion from the LR pair)
* ``h_st = MT(h0, h1)``                                         stream S->T (motion from the HR pair)
* ``masks = F(h_st, h_ts)``;  ``h_fused = m0 * h_st + m1 * h_ts``
* ``h_refined = h_fused + R(h_fused)``

At a time ``t`` other than the midpoint MT makes the frame at ``t`` in both streams (where it
takes a timestep), and F and R are told ``t`` where their configs say ``time_input``.

``mid_from`` says what the inference path (``interpolate``) returns: ``"refined"`` (all of the
above) or ``"st"``, the S->T stream alone, which skips T->S, F and R (training and ``forward``
always compute everything).

``st_motion`` says where the S->T stream gets its motion. ``"hr"`` (the paper, and our
default): MT estimates it again on the upscaled pair, so the two streams see the motion at two
resolutions and make different mistakes, which is what the fusion net exploits (the estimate is
~10% of the model's FLOPs). ``"lr"``: the LR pair's motion, resized, is reused (cheaper, but the
streams then differ so little that fusion has almost nothing to choose between); model files
written before this option existed mean ``"lr"``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from . import registry
from .fusion import FusionConfig, FusionUNet
from .refine import RefineConfig, RefineNet

# what the inference path returns for a new frame: the refined fusion of both streams (the
# paper's model), or the S->T stream alone (when it is as good: about 40% of the time with RIFE)
MID_FROM = ("refined", "st")


@dataclass(frozen=True)
class DualStreamConfig:
    spatial: str = "residual_sr"
    spatial_config: dict = field(default_factory=dict)
    temporal: str = "flow"
    temporal_config: dict = field(default_factory=dict)
    fusion: FusionConfig = FusionConfig()
    refine: RefineConfig = RefineConfig()
    st_motion: str = "hr"
    mid_from: str = "refined"  # what ``interpolate`` returns: "refined" (both streams, F, R) or "st"

    def __post_init__(self):
        if self.st_motion not in ("hr", "lr"):
            raise ValueError(f"DualStreamConfig.st_motion must be 'hr' or 'lr', got {self.st_motion!r}")
        if self.mid_from not in MID_FROM:
            raise ValueError(f"DualStreamConfig.mid_from must be one of {', '.join(MID_FROM)}, got {self.mid_from!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any], format_version: int = 2) -> DualStreamConfig:
        """From a weights file's JSON. Files of format version 1 may leave out ``st_motion``
        (written before it existed: the LR motion was shared) and their parts' configs (code
        defaults); version 2 files state everything."""
        values = dict(values)
        fields = {
            "spatial",
            "spatial_config",
            "temporal",
            "temporal_config",
            "fusion",
            "refine",
            "st_motion",
            "mid_from",
        }
        unknown = set(values) - fields
        if unknown:
            raise ValueError(f"unknown DualStreamConfig fields: {sorted(unknown)}")
        return cls(
            spatial=values.get("spatial", cls.spatial),
            spatial_config=dict(values.get("spatial_config") or {}),
            temporal=values.get("temporal", cls.temporal),
            temporal_config=dict(values.get("temporal_config") or {}),
            fusion=registry.config_from_dict(FusionConfig, values.get("fusion")),
            refine=registry.config_from_dict(RefineConfig, values.get("refine")),
            st_motion=values.get("st_motion", "lr" if format_version < 2 else cls.st_motion),
            mid_from=values.get("mid_from", "refined"),
        )


class DualStream(nn.Module):
    """The whole model. ``size_multiple`` is the LR size requirement (the pipeline pads)."""

    scale = 2

    def __init__(self, config: DualStreamConfig = DualStreamConfig()):
        super().__init__()
        self.config = config
        self.spatial = registry.build(registry.SPATIAL, config.spatial, config.spatial_config)
        self.temporal = registry.build(registry.TEMPORAL, config.temporal, config.temporal_config)
        self.fusion = FusionUNet(config.fusion)
        self.refine = RefineNet(config.refine)
        # the parts' configs in full (not "{}" for "the code's defaults"): what a file stores
        # (as JSON gives them back: lists, so that a loaded model's config compares equal)
        self.config = replace(
            config,
            spatial_config=json.loads(json.dumps(asdict(self.spatial.config))),
            temporal_config=json.loads(json.dumps(asdict(self.temporal.config))),
        )
        # fusion and refinement work at HR: their multiples halve at LR
        self.size_multiple = max(
            getattr(self.temporal, "size_multiple", 1),
            getattr(self.spatial, "size_multiple", 1),
            self.fusion.size_multiple // self.scale,
            self.refine.size_multiple // self.scale,
            1,
        )

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        """MS alone: ``[N, 3, h, w] -> [N, 3, 2h, 2w]`` (keyframes)."""
        return self.spatial(lr)

    def retime(self, f0: torch.Tensor, f1: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor:
        """MT alone: the frame at time ``t`` between ``f0`` and ``f1`` at their own size
        (``--mode time``; ``ValueError`` where MT makes only the midpoint)."""
        return self.temporal.synthesize(f0, f1, self.temporal.estimate(f0, f1, t), t)

    def streams(self, l0, l1, h0, h1, t: float | torch.Tensor = 0.5) -> dict[str, torch.Tensor]:
        """Both streams for a pair whose keyframes ``h0, h1`` are already upscaled, at time
        ``t`` between them (``ValueError`` where MT makes only the midpoint)."""
        motion = self.temporal.estimate(l0, l1, t)
        l_mid = self.temporal.synthesize(l0, l1, motion, t)  # [N, 3, h, w]
        h_ts = self.spatial(l_mid)  # [N, 3, 2h, 2w]
        if self.config.st_motion == "hr":
            motion = self.temporal.estimate(h0, h1, t)
        h_st = self.temporal.synthesize(h0, h1, motion, t)  # [N, 3, 2h, 2w]
        return {"l_mid": l_mid, "h_ts": h_ts, "h_st": h_st}

    def fuse(self, h_st: torch.Tensor, h_ts: torch.Tensor, t: float | torch.Tensor = 0.5) -> dict[str, torch.Tensor]:
        """F and R on the two streams' frames at time ``t`` (told to them where their configs
        say ``time_input``)."""
        masks = self.fusion(h_st, h_ts, t)  # [N, 2, H, W]
        h_fused = masks[:, 0:1] * h_st + masks[:, 1:2] * h_ts
        return {"masks": masks, "h_fused": h_fused, "h_refined": self.refine(h_fused, t)}

    def interpolate(self, l0, l1, h0, h1, t: float | torch.Tensor = 0.5) -> torch.Tensor:
        """The intermediate HR frame for a pair (inference path): the refined fusion of both
        streams, or with ``mid_from="st"`` the S->T stream alone (T->S, F and R skipped)."""
        if self.config.mid_from == "st":
            if self.config.st_motion == "hr":
                return self.retime(h0, h1, t)
            return self.temporal.synthesize(h0, h1, self.temporal.estimate(l0, l1, t), t)
        s = self.streams(l0, l1, h0, h1, t)
        return self.fuse(s["h_st"], s["h_ts"], t)["h_refined"]

    def forward(self, l0: torch.Tensor, l1: torch.Tensor, t: float | torch.Tensor = 0.5) -> dict[str, torch.Tensor]:
        """Every intermediate result (training, ablations, bench rows) for the frame at ``t``
        (a float or one per item ``[N]``)."""
        h0, h1 = self.spatial(torch.cat((l0, l1), dim=0)).chunk(2, dim=0)
        out = {"h0": h0, "h1": h1}
        out.update(self.streams(l0, l1, h0, h1, t))
        out.update(self.fuse(out["h_st"], out["h_ts"], t))
        return out
