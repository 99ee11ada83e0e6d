"""The names and defaults several modules (and the command line) share, each stated once here.
No heavy imports: the command line reads them for its help and defaults."""

from __future__ import annotations

# what --mode can be: 2x size and frame rate, size only, frame rate only
MODES = ("spacetime", "space", "time")
# how LR frames are made from HR truth (evaluation and training): antialiased bicubic x0.5
# (our protocol, DESIGN §4) or the paper's plain bicubic; both rounded to 8 bits
DEGRADATIONS = ("bicubic_aa", "bicubic")
DEFAULT_DEGRADATION = "bicubic_aa"
# scene-cut sensitivity (0-1; 0 turns it off): no new frame blends two shots
DEFAULT_SCENE_THRESHOLD = 0.3
# GiB of decoded training video held in memory, all clips together (larger clips: windows)
VIDEO_MEMORY_GIB = 8.0
