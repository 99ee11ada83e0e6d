"""The explicit registry of swappable spatial (MS) and temporal (MT) networks.

Each entry maps a name to ``(network class, config dataclass)``; weights files store the name
and the config, so a model is rebuilt from its file alone.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from torch import nn

from .rife import RifeConfig, RifeTemporal
from .spatial import BicubicConfig, BicubicSpatial, ResidualSR, ResidualSRConfig
from .temporal import BlendConfig, BlendTemporal, FlowConfig, FlowTemporal

SPATIAL: dict[str, tuple[type[nn.Module], type]] = {
    "bicubic": (BicubicSpatial, BicubicConfig),
    "residual_sr": (ResidualSR, ResidualSRConfig),
}

TEMPORAL: dict[str, tuple[type[nn.Module], type]] = {
    "blend": (BlendTemporal, BlendConfig),
    "flow": (FlowTemporal, FlowConfig),
    "rife": (RifeTemporal, RifeConfig),
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


def build(registry: dict[str, tuple[type[nn.Module], type]], name: str, config: dict | None) -> nn.Module:
    if name not in registry:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(sorted(registry))}")
    net_cls, config_cls = registry[name]
    return net_cls(config_from_dict(config_cls, config))
