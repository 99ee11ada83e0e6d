"""Networks: pure ``nn.Module``s configured by frozen dataclasses (no I/O, no global device)."""

from .dual_stream import DualStream, DualStreamConfig
from .fusion import FusionConfig
from .refine import RefineConfig
from .registry import SPATIAL, TEMPORAL

__all__ = ["DualStream", "DualStreamConfig", "FusionConfig", "RefineConfig", "SPATIAL", "TEMPORAL"]
