"""Quality metrics on 8-bit output: PSNR, SSIM and BT.601 luma PSNR.

Every function takes two uint8 RGB images ``[H, W, 3]`` of the same shape (values 0..255),
the method's output first and the ground truth second, and returns a Python float.

* ``psnr``: ``10 log10(255² / MSE)`` over all pixels and the three channels, capped at
  ``PSNR_CAP`` = 100 dB: identical images (MSE 0) score exactly 100, which keeps averages and
  JSON finite. The cap only touches near-identical frames (MSE below 6.5e-6, e.g. a single
  value off by one in a frame larger than about 230×230); real methods score 20-50 dB.
* ``ssim``: Wang et al. (2004) with an 11×11 Gaussian window (σ = 1.5), ``K1 = 0.01``,
  ``K2 = 0.03``, ``L = 255``, computed per RGB channel over the "valid" window positions
  (no padding, like the reference MATLAB ``ssim_index``) and averaged over the channels.
  Images smaller than the window are compared with a window cropped to their size.
* ``psnr_y``: PSNR of BT.601 studio-range luma ``Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255``
  (unrounded, peak 255), for comparison with papers that report Y-channel numbers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

PSNR_CAP = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
_ROWS = 256  # SSIM works in horizontal stripes of this many output rows (bounded memory on 4K)


def _check(pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"images differ in shape: {pred.shape} vs {target.shape}")
    if pred.ndim != 3 or pred.shape[2] != 3:
        raise ValueError(f"expected [H, W, 3] RGB images, got shape {pred.shape}")


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB for a mean squared error on a ``0..peak`` scale, capped at ``PSNR_CAP``."""
    if mse <= peak * peak * 10 ** (-PSNR_CAP / 10):
        return PSNR_CAP
    return 10.0 * math.log10(peak * peak / mse)


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of uint8 RGB ``pred`` against ``target`` (capped at ``PSNR_CAP``)."""
    _check(pred, target)
    diff = pred.astype(np.float64) - target.astype(np.float64)
    return psnr_from_mse(float(np.mean(diff * diff)))


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma, float64 ``[H, W]`` in 16..235, of uint8 RGB ``[H, W, 3]``."""
    x = rgb.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def psnr_y(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of the BT.601 luma of ``pred`` against that of ``target`` (peak 255)."""
    _check(pred, target)
    diff = luma(pred) - luma(target)
    return psnr_from_mse(float(np.mean(diff * diff)))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian taps, float64 ``[size]`` (the 2-D window is their outer product)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM of uint8 RGB ``pred`` against ``target``: per channel, then averaged."""
    _check(pred, target)
    h, w = pred.shape[:2]
    size = min(SSIM_WINDOW, h, w)
    taps = torch.from_numpy(gaussian_window(size))
    # [3 channels as batch, 1, H, W] float64: exact sums for 8-bit data
    x = torch.from_numpy(np.ascontiguousarray(pred.transpose(2, 0, 1))).to(torch.float64).unsqueeze(1)
    y = torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1))).to(torch.float64).unsqueeze(1)
    total = torch.zeros(3, dtype=torch.float64)
    out_rows = h - size + 1
    for r0 in range(0, out_rows, _ROWS):
        r1 = min(out_rows, r0 + _ROWS)
        total += _ssim_map(x[:, :, r0 : r1 + size - 1], y[:, :, r0 : r1 + size - 1], taps).sum(dim=(1, 2, 3))
    count = out_rows * (w - size + 1)
    return float((total / count).mean())


def _ssim_map(x: torch.Tensor, y: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """SSIM at every valid window position of ``x, y [C, 1, H, W]`` -> ``[C, 1, H-k+1, W-k+1]``."""
    c1 = (SSIM_K1 * 255) ** 2
    c2 = (SSIM_K2 * 255) ** 2
    k = taps.numel()
    kx = taps.view(1, 1, 1, k)
    ky = taps.view(1, 1, k, 1)

    def blur(img: torch.Tensor) -> torch.Tensor:  # separable Gaussian, "valid" positions only
        return F.conv2d(F.conv2d(img, kx), ky)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x * mu_x
    syy = blur(y * y) - mu_y * mu_y
    sxy = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return num / den
