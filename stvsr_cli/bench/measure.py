"""Measuring a method: wall time and peak memory on its device, and scoring frames against truth."""

from __future__ import annotations

import platform
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..metrics import psnr, psnr_y, ssim


def _proc_status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _release_free_memory() -> None:
    """Give freed heap pages back to the OS (glibc ``malloc_trim``) so that RSS growth during
    the next measurement is not hidden by memory an earlier method freed but kept mapped."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _maxrss_kb() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if platform.system() == "Darwin" else rss  # bytes on macOS, KiB on Linux


def measure(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float, float]:
    """Run ``fn()``; return its result, wall seconds (device synced) and peak memory in MiB.

    Memory is the peak above what was in use when ``fn`` started: on CUDA the allocator's
    ``max_memory_allocated``; on the CPU the process's peak RSS (``VmHWM``, reset through
    ``/proc/self/clear_refs``; elsewhere the growth of ``ru_maxrss``, which misses peaks
    below an earlier one). It includes the outputs ``fn`` returns.
    """
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        _release_free_memory()
        exact = _reset_peak_rss() and _proc_status_kb("VmRSS") is not None
        base = _proc_status_kb("VmRSS") if exact else _maxrss_kb()
    start = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if cuda:
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        peak = ((_proc_status_kb("VmHWM") if exact else _maxrss_kb()) - base) / 1024
    return result, seconds, max(peak, 0.0)


def device_name(device: torch.device) -> str:
    """``"cuda: NVIDIA H100 ..."`` or ``"cpu: <model name>, N threads"``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "mps: Apple GPU"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"cpu: {model}, {threads} thread{'s' if threads != 1 else ''}"


# ---------------------------------------------------------------------------------- scoring


def mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def position_key(k: int, multi: int) -> str:
    """The summary key of the new frames' PSNR at ``t = k / multi``."""
    return f"mid_psnr_{k}_{multi}"


def score(frames: list[np.ndarray], gt: dict[int, np.ndarray], luma: bool = False, multi: int = 2) -> dict[str, Any]:
    """Per-frame and per-clip scores of ``frames`` (``multi (N-1) + 1`` outputs) against ``gt``;
    with ``multi`` > 2 also the new frames' PSNR per position ``k / multi`` (``mid_psnr_k_multi``)."""
    per_frame = []
    for t in sorted(gt):
        item = {
            "t": t,
            "kind": "key" if t % multi == 0 else "mid",
            "psnr": psnr(frames[t], gt[t]),
            "ssim": ssim(frames[t], gt[t]),
        }
        if luma:
            item["psnr_y"] = psnr_y(frames[t], gt[t])
        per_frame.append(item)
    out: dict[str, Any] = {}
    metrics = ("psnr", "ssim", "psnr_y") if luma else ("psnr", "ssim")
    for kind in ("key", "mid"):
        for metric in metrics:
            out[f"{kind}_{metric}"] = mean([f[metric] for f in per_frame if f["kind"] == kind])
    if multi > 2:
        for k in range(1, multi):
            out[position_key(k, multi)] = mean([f["psnr"] for f in per_frame if f["t"] % multi == k])
    out["frames"] = per_frame
    return out


# ----------------------------------------------------------------------------------- runner
