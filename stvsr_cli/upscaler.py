"""``Upscaler``: frames in, frames out, streaming (memory independent of length).

Frames are RGB numpy arrays ``[H, W, 3]``, uint8 (the fast, usual path) or uint16 (input of
more than 8 bits: 10-bit video stays 10-bit); the model sees each on its own full scale as
float in [0, 1], and the output frames have the input's dtype. For input frames
``f_0 .. f_(N-1)`` the output is ``key_0, mid_0, key_1, mid_1, ..., key_(N-1)``: ``key_i`` is
``f_i`` upscaled, ``mid_i`` the frame halfway between ``f_i`` and ``f_(i+1)`` (with ``multi``
or per-pair times, more new frames between them). Also: the device and precision choices.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .errors import StvsrError, UsageError
from .names import DEFAULT_SCENE_THRESHOLD, MODES
from .nets import DualStream
from .scene import is_cut
from .tiling import pad_to_multiple, run_tiled

# automatic tiling: LR frames above this many pixels are processed in tiles of AUTO_TILE
AUTO_TILE_PIXELS = 1280 * 736
AUTO_TILE = 768
TILE_OVERLAP = 32  # LR pixels of context around each tile


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; asking for an absent device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda:") and name[5:].isdigit() and torch.cuda.is_available():
        return torch.device(name)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StvsrError("--device cuda was asked for, but no CUDA device is available (try --device cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise StvsrError("--device mps was asked for, but MPS is not available on this machine")
    if name not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX-512 BF16 or AMX: Intel since
    Cooper Lake / Sapphire Rapids, AMD since Zen 4); elsewhere bf16 is emulated and slower."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The arithmetic dtype of the model's convolutions.

    ``auto``: fp16 on CUDA; on the CPU bf16 where it runs natively (1.5-2x faster, within
    0.01 dB of fp32 on val, see docs/BENCHMARKS.md), else fp32; fp32 elsewhere. fp16 is
    refused on the CPU, and bf16 where the CPU would only emulate it."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in dtypes:
        raise UsageError(f"unknown precision {precision!r}; choose auto, fp32, fp16 or bf16")
    if device.type == "cpu" and precision == "fp16":
        raise UsageError("--precision fp16 needs a GPU; on the CPU use bf16 (where the CPU has it) or fp32")
    if device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        raise UsageError("--precision bf16: this CPU has no native bf16 (AVX-512 BF16 or AMX); use fp32")
    return dtypes[precision]


def precision_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]


class Produced(NamedTuple):
    """An output frame of ``Upscaler.process``: at ``t`` between the input frames at times ``a``
    and ``b`` (a keyframe: ``t == 0`` and ``a == b``)."""

    frame: np.ndarray
    a: Any
    b: Any
    t: Fraction

    @property
    def is_key(self) -> bool:
        return self.t == 0


class Upscaler:
    """Runs a ``DualStream`` over a stream of frames.

    Each input frame is spatially upscaled once and reused by the two pairs it belongs to;
    ``batch`` pairs go through the model together. Frames are padded (replicate) to the
    size multiple each network needs and cropped back (``keyframes``, ``pair_inputs``).

    Precision: images between the networks stay float32; with fp16/bf16 the weights are
    stored in that dtype and the networks run under autocast (``arithmetic()``), so the
    convolutions run in half precision while flows, sampling grids and the residuals added to
    images keep float32 (the networks make sure of that where it matters).
    """

    def __init__(
        self,
        model: DualStream,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        batch: int = 1,
        mode: str = "spacetime",
        scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
        tile: int = 0,
        multi: int = 2,
    ):
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; choose {', '.join(MODES)}")
        if multi < 2:
            raise UsageError(f"--multi must be at least 2, not {multi}")
        if multi != 2 and mode == "space":
            raise UsageError("--multi makes new frames: it does not go with --mode space")
        if multi != 2 and not getattr(model.temporal, "takes_timestep", False):
            raise UsageError(
                f"--multi {multi} needs frames at any time between two inputs, and this model's temporal network "
                f"({model.config.temporal}) makes only the frame halfway: use the default model"
            )
        if batch < 1:
            raise UsageError("batch must be at least 1")
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.dtype = resolve_dtype(precision, self.device)
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        # a copy (tens of MB at most), converted: the caller's model keeps its dtype, device and mode
        self.model = copy.deepcopy(model).eval().to(self.device, self.dtype).to(memory_format=self.memory_format)
        # what a net asks to keep in float32 (nets.protocols), from the caller's unrounded weights
        for path, source in model.named_modules():
            for name in getattr(source, "float32_parts", ()):
                parent, _, leaf = name.rpartition(".")  # a dotted name reaches into a child ("levels.0")
                part = copy.deepcopy(getattr(source.get_submodule(parent), leaf)).to(self.device).float()
                if isinstance(part, nn.Module):
                    part = part.to(memory_format=self.memory_format)
                setattr(self.model.get_submodule(".".join(p for p in (path, parent) if p)), leaf, part)
        self.precision = precision_name(self.dtype)
        self.batch = batch
        self.mode = mode
        self.multi = multi  # output frames per input interval: new frames at t = k / multi
        self.scene_threshold = scene_threshold
        self.multiple = int(getattr(model, "size_multiple", 1))
        if tile and (tile < 2 * TILE_OVERLAP + self.multiple):
            raise UsageError(f"--tile must be at least {2 * TILE_OVERLAP + self.multiple} (or 0 for automatic)")
        self.tile = tile
        self.scene_cuts = 0
        self.compiled = False  # whether the networks were given to torch.compile (stvsr_cli.compiling)

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        return (width, height) if self.mode == "time" else (2 * width, 2 * height)

    def tile_size(self, h: int, w: int) -> int:
        """LR tile side for a padded frame of ``h x w`` (0: the whole frame at once)."""
        if self.tile:
            return 0 if self.tile >= max(h, w) else self.tile
        # automatic: whole frames up to 720p input, tiles beyond, so that memory stays bounded
        # whatever the frame size (1080p -> 4K whole takes 2.9 GB on the CPU, tiled about half)
        return 0 if h * w <= AUTO_TILE_PIXELS else AUTO_TILE

    def arithmetic(self) -> torch.autocast:
        """The context the networks run in: autocast to ``self.dtype`` (off for fp32)."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def _run(self, fn, lr: list[torch.Tensor], hr: list[torch.Tensor], multiple: int | None = None) -> torch.Tensor:
        h, w = lr[0].shape[-2:]
        tile = self.tile_size(h, w)
        with self.arithmetic():
            if not tile:
                out = fn(lr, hr)
            else:
                out = run_tiled(fn, lr, hr, tile, TILE_OVERLAP, multiple or self.multiple, self.model.scale)
        return out.float()

    def to_tensor(self, frames: list[np.ndarray]) -> torch.Tensor:
        """uint8 or uint16 RGB frames -> float32 ``[B, 3, h, w]`` in [0, 1] (each type on its
        own full scale), on the device, not padded."""
        peak = float(np.iinfo(frames[0].dtype).max)
        x = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2)  # [B, 3, h, w]
        return (x.float() / peak).contiguous(memory_format=self.memory_format)

    def keyframes(self, lr: torch.Tensor) -> torch.Tensor:
        """MS alone: ``[B, 3, h, w] -> [B, 3, 2h, 2w]``. The LR frames are padded only to MS's
        own size multiple (and cropped back), so a keyframe does not depend on what the
        temporal net needs."""
        h, w = lr.shape[-2:]
        multiple = int(getattr(self.model.spatial, "size_multiple", 1))
        hr = self._run(lambda lo, _: self.model.upscale(lo[0]), [pad_to_multiple(lr, multiple)], [], multiple)
        return hr[..., : 2 * h, : 2 * w]

    def pair_inputs(self, lr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LR frames and their keyframes padded to the whole model's size multiple (LR) and
        twice that (HR), as the streams need them; outputs are cropped back to ``2h x 2w``."""
        padded = pad_to_multiple(lr, self.multiple)
        return padded, pad_to_multiple(hr, self.model.scale * self.multiple)

    @staticmethod
    def to_frames(x: torch.Tensor, height: int, width: int, dtype=np.uint8) -> list[np.ndarray]:
        """Float ``[B, 3, H, W]`` -> ``dtype`` (uint8 or uint16) RGB frames, cropped."""
        peak = np.iinfo(dtype).max
        target = torch.uint8 if dtype == np.uint8 else torch.uint16
        # not in place: x may be a frame the next pair still needs
        x = (x[..., :height, :width].float().clamp(0, 1) * peak).round().to(target)
        return list(x.permute(0, 2, 3, 1).cpu().numpy())

    def _new_frames(self, l0, l1, h0, h1, t: float) -> torch.Tensor:
        """The new frames at ``t`` for the pairs ``(l0, l1)`` (LR, padded) with keyframes
        ``(h0, h1)``: the model's, or in ``--mode time`` MT's on the LR pairs."""
        if self.mode == "time":
            return self._run(lambda lo, _: self.model.retime(lo[0], lo[1], t), [l0, l1], [])
        return self._run(lambda lo, hi: self.model.interpolate(lo[0], lo[1], hi[0], hi[1], t), [l0, l1], [h0, h1])

    def pair_times(self, a: Any, b: Any) -> list[Fraction]:
        """The times ``t`` in (0, 1) of the new frames between inputs tagged ``a`` and ``b``
        (``k / multi``, or what ``times`` given to ``process`` says)."""
        return [Fraction(k, self.multi) for k in range(1, self.multi)]

    @torch.inference_mode()
    def _upscale_chunk(
        self, frames: list[np.ndarray], prev: dict | None, times: list[list[Fraction]]
    ) -> tuple[list[tuple[str, np.ndarray, int]], dict]:
        """Upscale a chunk of consecutive frames; ``times[i]``: the new frames' t for pair ``i``
        (the pairs from ``prev``'s frame on). Returns (outputs in order, state for the next)."""
        h, w = frames[0].shape[:2]
        dtype = frames[0].dtype
        out_w, out_h = self.output_size(w, h)
        x = self.to_tensor(frames)
        hr = x if self.mode == "time" else self.keyframes(x)
        keys = self.to_frames(hr, out_h, out_w, dtype)
        lr, hr = self.pair_inputs(x, hr) if self.mode == "spacetime" else (pad_to_multiple(x, self.multiple), hr)
        lr_all, hr_all, raw = lr, hr, frames
        if prev is not None:
            lr_all = torch.cat((prev["lr"], lr))
            hr_all = torch.cat((prev["hr"], hr))
            raw = [prev["raw"], *frames]
        n_pairs = len(raw) - 1
        # mids[i][t]: the new frame at t between pair i's frames; pairs wanting the same t run together
        mids: list[dict[Fraction, np.ndarray]] = [{} for _ in range(n_pairs)]
        if self.mode != "space" and n_pairs > 0:
            by_t: dict[Fraction, list[int]] = {}
            for i in range(n_pairs):
                for t in times[i]:
                    by_t.setdefault(t, []).append(i)
            for t, pairs in sorted(by_t.items()):
                if pairs == list(range(pairs[0], pairs[-1] + 1)):  # consecutive (always with --multi): views
                    idx = slice(pairs[0], pairs[-1] + 1)
                    nxt = slice(pairs[0] + 1, pairs[-1] + 2)
                else:
                    idx = torch.tensor(pairs, device=lr_all.device)
                    nxt = idx + 1
                lo0, lo1, hi0, hi1 = lr_all[idx], lr_all[nxt], hr_all[idx], hr_all[nxt]
                new = self.to_frames(self._new_frames(lo0, lo1, hi0, hi1, float(t)), out_h, out_w, dtype)
                for i, frame in zip(pairs, new, strict=True):
                    mids[i][t] = frame
            prev_keys = [prev["key"]] + keys if prev is not None else keys
            for i in range(n_pairs):
                if mids[i] and is_cut(raw[i], raw[i + 1], self.scene_threshold):
                    mids[i] = dict.fromkeys(mids[i], prev_keys[i])  # no blending across a cut: the earlier side
                    self.scene_cuts += 1
        # (pair index or -1 for the chunk's keys, t, frame), in display order
        outputs: list[tuple[int, Fraction, np.ndarray]] = []
        for i, key in enumerate(keys):
            if prev is not None or i > 0:
                pair = i if prev is not None else i - 1
                outputs.extend((pair, t, frame) for t, frame in sorted(mids[pair].items()))
            outputs.append((i, Fraction(0), key))
        state = {"lr": lr[-1:], "hr": hr[-1:], "raw": frames[-1], "key": keys[-1]}
        return outputs, state

    def process(self, frames: Iterable[tuple[np.ndarray, Any]], times=None) -> Iterator[Produced]:
        """``frames``: ``(rgb, time)`` pairs, ``time`` any increasing value (a pts, an index).
        Yields ``Produced(frame, a, b, t)`` in display order: a keyframe has ``t == 0`` and
        ``a == b``, its input frame's time; a new frame sits at ``t`` (a ``Fraction`` in (0, 1))
        between the input frames at times ``a`` and ``b``.

        ``times(a, b) -> [t, ...]``: where new frames go between two inputs (default
        ``pair_times``: ``k / multi``); a 0 in it is ignored (that is the keyframe)."""
        times = times or self.pair_times
        chunk: list[np.ndarray] = []
        tags: list[Any] = []
        prev = None
        prev_tag = None

        def flush():
            nonlocal prev, prev_tag
            all_tags = ([prev_tag] if prev is not None else []) + tags
            wanted = [[t for t in times(a, b) if 0 < t < 1] for a, b in zip(all_tags, all_tags[1:])]
            outputs, prev_state = self._upscale_chunk(chunk, prev, wanted)
            offset = 0 if prev is None else 1  # all_tags[0] is the previous chunk's last frame
            for index, t, frame in outputs:
                if t == 0:
                    yield Produced(frame, all_tags[index + offset], all_tags[index + offset], t)
                else:
                    yield Produced(frame, all_tags[index], all_tags[index + 1], t)
            prev, prev_tag = prev_state, tags[-1]
            chunk.clear()
            tags.clear()

        shape = None
        for frame, tag in frames:
            if shape is None:
                shape = frame.shape
                if frame.dtype not in (np.uint8, np.uint16):
                    raise StvsrError(f"frames must be uint8 or uint16 RGB, not {frame.dtype}")
            elif frame.shape != shape:
                raise StvsrError(
                    f"frame size changed mid-stream from {shape[1]}x{shape[0]} to {frame.shape[1]}x{frame.shape[0]}"
                )
            chunk.append(np.ascontiguousarray(frame))
            tags.append(tag)
            if len(chunk) >= self.batch:
                yield from flush()
        if chunk:
            yield from flush()

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Frames in, frames out (``multi * (N - 1) + 1`` of them, 2N-1 by default; N in ``--mode space``)."""
        for out in self.process((f, i) for i, f in enumerate(frames)):
            yield out.frame
