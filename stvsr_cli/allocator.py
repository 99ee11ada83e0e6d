"""The C allocator's settings for a process that allocates and frees the same large tensors
for every frame (glibc only; elsewhere nothing changes).

glibc serves a request above its mmap threshold (128 KiB at first, raised as blocks are freed,
up to 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, and gives the top of its heap
back to the kernel beyond its trim threshold. A model run on the CPU frees and re-allocates
megabytes of feature maps per layer, so without settings the kernel zeroes and faults the same
memory in again for every frame: measured on 2 EPYC cores, the default model at 640x360 spent
18.5 s of 165 s CPU time in the kernel, and ``stvsr upscale`` of 50 frames took 85.2 s; with
the settings below 1.2 s in the kernel and 73.5 s (``docs/BENCHMARKS.md``).

What it costs: up to ``TRIM_THRESHOLD`` of freed memory stays mapped, ready for the next frame
(peak memory is set by the largest frame's tensors either way; blocks over 32 MiB, as at 4K,
are still mapped and unmapped each time).
"""

from __future__ import annotations

import ctypes
import sys

# mallopt(3) parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# glibc's largest mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Serve blocks up to 32 MiB from the heap and keep up to 1 GiB of freed heap mapped, so
    that each frame reuses the previous frame's memory. Returns whether the settings took
    (False on systems without glibc, such as macOS, Windows or musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's name; musl has none
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
