"""Small building blocks shared by the networks.

Tensor contract for every network in ``stvsr_cli.nets``:

* images are ``float32`` (or half) tensors ``[N, 3, H, W]``, RGB, nominal range ``[0, 1]``
  (networks never clamp; the pipeline clamps once, when it converts to uint8);
* optical flow is ``[N, 2, H, W]`` in pixels of the tensor it belongs to, channel 0 = dx
  (towards +W), channel 1 = dy (towards +H); ``flow_warp(img, flow)`` samples ``img`` at
  ``(x + dx, y + dy)`` (backward warping).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


def zero_init(module: nn.Conv2d) -> nn.Conv2d:
    """Zero a layer so that a residual branch starts as the identity (output exactly 0)."""
    nn.init.zeros_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip; keeps shape ``[N, C, H, W]``."""

    def __init__(self, channels: int, res_scale: float = 1.0):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x), inplace=True))

    def start_as_identity(self) -> None:
        """Zero the branch's last conv: the block passes its input through unchanged, and still
        learns (the first conv keeps its random weights, so the zeroed one gets gradients)."""
        zero_init(self.conv2)


# elements per slab of ``by_row_slabs``: the temporaries of a slab (1 MiB in float32) stay in
# the CPU's cache between the passes of the function applied to it
SLAB_ELEMENTS = 2**17


def by_row_slabs(fn, *xs: torch.Tensor) -> torch.Tensor:
    """``fn(*xs)`` for a pointwise ``fn`` of tensors ``[N, C, H, W]`` (same shape), computed a slab
    of rows at a time and written into one output laid out like ``xs[0]``.

    For inference on the CPU: a chain of elementwise ops over a large tensor then keeps its
    temporaries in cache instead of streaming whole-frame temporaries through memory for every
    op (measured on 2 EPYC cores, bf16: SPAN's attention on 48 x 384 x 640 features 142 -> 23 ms).
    Same values as ``fn(*xs)``, since ``fn`` is pointwise; no autograd.
    """
    first = xs[0]
    out = torch.empty_like(first)
    rows = max(1, SLAB_ELEMENTS // max(1, first.shape[0] * first.shape[1] * first.shape[3]))
    for y in range(0, first.shape[2], rows):
        part = slice(y, y + rows)
        out[:, :, part] = fn(*(x[:, :, part] for x in xs))
    return out


class PReLU(nn.PReLU):
    """``nn.PReLU`` (same parameter, same values) that computes a 4-D channels-last input as a
    2-D ``[pixels / k, k * C]`` one, ``k`` pixels a row so that rows are at least 32 wide:
    torch's kernel falls off its vector path for narrow rows (on 2 EPYC cores, bf16,
    16 x 768 x 1280: channels-last 52 ms, ``[pixels, 16]`` 21 ms, ``[pixels / 2, 32]`` 2.4 ms)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or self.weight.numel() == 1 or not _is_channels_last(x):
            return super().forward(x)
        n, c, h, w = x.shape
        k = -(-32 // c)
        if (n * h * w) % k:
            k = 1
        rows = x.permute(0, 2, 3, 1).reshape(-1, k * c)  # a view: channels-last memory is [N, H, W, C]
        return F.prelu(rows, self.weight.repeat(k)).view(n, h, w, c).permute(0, 3, 1, 2)


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def working_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype convolutions on ``x`` compute in: autocast's where it is on, else ``x``'s."""
    device = x.device.type
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
    if device == "cpu":  # older torch: one pair of functions per device type
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else x.dtype
    return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else x.dtype


def conv_silu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``silu(conv(x))``. On the CPU without autograd, one oneDNN call that applies the SiLU to
    the convolution's float32 sums before it stores them (the op torch.compile fuses the two
    into): no pass over the output for the activation, and in bf16 one rounding instead of two.
    Measured on 2 EPYC cores, bf16: a SPAN keyframe at 640x360 0.596 -> 0.574 s (median of 5)."""
    if not eager_cpu_inference(x) or conv.padding_mode != "zeros" or not _has_fused_conv():
        return F.silu(conv(x))
    dtype = working_dtype(x)
    if dtype not in (torch.float32, torch.bfloat16):
        return F.silu(conv(x))
    bias = None if conv.bias is None else conv.bias.to(dtype)
    return torch.ops.mkldnn._convolution_pointwise(
        x.to(dtype), conv.weight.to(dtype), bias, conv.padding, conv.stride, conv.dilation, conv.groups, "swish", [], ""
    )


def eager_cpu_inference(x: torch.Tensor) -> bool:
    """Whether ``x`` is on the CPU, without autograd and outside ``torch.compile``: where the
    hand-fused paths of this package (``conv_silu``, SPAN's slab attention) pay; a compiled
    graph fuses such ops itself."""
    compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return x.device.type == "cpu" and not torch.is_grad_enabled() and not (compiling and compiling())


@functools.cache
def _has_fused_conv() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def upsample_bicubic(x: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Bicubic ×scale with ``align_corners=False`` (pixel centres aligned, as in every SR paper)."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a flow field to ``size = (H, W)`` and rescale its vectors to the new pixel units.
    Flow is pixel coordinates: it is resized and returned in float32 whatever its dtype (bf16
    keeps 8 bits of mantissa, half a pixel at 100 pixels of motion)."""
    h, w = flow.shape[-2:]
    flow = flow.float()
    if (h, w) == tuple(size):
        return flow
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = torch.tensor([size[1] / w, size[0] / h], dtype=flow.dtype, device=flow.device)
    return out * scale.view(1, 2, 1, 1)


_GRID_CACHE: dict[tuple, torch.Tensor] = {}


def _base_grid(n: int, h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    key = (h, w, dtype, device)
    grid = _GRID_CACHE.get(key)
    if grid is None:
        ys = torch.linspace(-1.0, 1.0, h, dtype=dtype, device=device)
        xs = torch.linspace(-1.0, 1.0, w, dtype=dtype, device=device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack((gx, gy), dim=-1).unsqueeze(0)  # [1, H, W, 2]
        if len(_GRID_CACHE) > 32:
            _GRID_CACHE.clear()
        _GRID_CACHE[key] = grid
    return grid.expand(n, h, w, 2)


def flow_warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``img [N, C, H, W]`` by ``flow [N, 2, H, W]`` (pixels, see module doc).

    Bilinear sampling with border padding, so pixels that flow leaves the frame repeat the
    edge instead of turning black (``align_corners=True`` keeps pixel ``x`` at grid ``x``).
    The sampling grid is float32 whatever the dtypes (in bf16 a 1280-pixel grid would be
    several pixels off); the result has ``img``'s dtype and memory layout.
    """
    n, _, h, w = img.shape
    flow = flow.float()
    # pixels -> normalised [-1, 1] offsets; a shift of one pixel is 2 / (size - 1)
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=flow.dtype, device=flow.device)
    offset = (flow * scale.view(1, 2, 1, 1)).permute(0, 2, 3, 1)  # [N, H, W, 2]
    grid = _base_grid(n, h, w, flow.dtype, flow.device) + offset
    with torch.autocast(img.device.type, enabled=False):
        out = F.grid_sample(img.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)
    # in img's layout: grid sampling writes contiguous, a channels-last net wants its own back
    layout = torch.channels_last if _is_channels_last(img) else torch.contiguous_format
    return out.to(dtype=img.dtype, memory_format=layout)


def time_plane(t: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` (a float, or one per batch item ``[N]``) as a constant channel ``[N, 1, H, W]`` the
    size, dtype and device of ``like`` ``[N, C, H, W]``: how the networks are told t (a view, so
    cropping it gives the plane at a smaller size)."""
    n, _, h, w = like.shape
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device).reshape(-1, 1, 1, 1)
    if t.shape[0] not in (1, n):
        raise ValueError(f"timestep has {t.shape[0]} values for {n} pairs")
    return t.expand(n, 1, h, w)
