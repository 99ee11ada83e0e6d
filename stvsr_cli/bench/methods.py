"""The methods ``stvsr bench`` scores: the classical baselines and the model's rows, as engines
that turn a clip's LR frames into all ``2N-1`` output frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .protocol import METHODS, MODEL_ROWS, BenchError


def parse_methods(text: str | None) -> tuple[str, ...]:
    """``"a,b"`` -> the known methods in canonical order; ``None``/``"all"`` -> all of them."""
    if text is None or text.strip().lower() == "all":
        return METHODS
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise BenchError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if not names:
        raise BenchError(f"--methods is empty; choose from {', '.join(METHODS)}")
    return tuple(m for m in METHODS if m in names)


@torch.inference_mode()
def model_outputs(upscaler, lr: list[np.ndarray], rows: tuple[str, ...], multi: int = 2) -> dict[str, list[np.ndarray]]:
    """The model rows for LR frames ``lr`` (uint8 ``[h, w, 3]``): ``{row: multi (N-1) + 1 uint8
    frames}`` (2N-1 by default).

    Keyframes are ``model.upscale(L(i))``, shared by every row; the new frames of each pair, at
    ``t = k / multi``, are ``streams`` + ``fuse`` (what ``model(l0, l1)`` computes at the
    midpoint, reusing the keyframes), padded and cropped as ``Upscaler`` does (``keyframes``,
    ``pair_inputs``, ``to_frames``).
    """
    model = upscaler.model
    h, w = lr[0].shape[:2]
    keys: list[np.ndarray] = []
    mids: dict[str, list[list[np.ndarray]]] = {row: [] for row in rows}  # per pair, per t
    prev = None
    for frame in lr:
        x = upscaler.to_tensor([frame])  # [1, 3, h, w]
        hr = upscaler.keyframes(x)  # [1, 3, 2h, 2w]
        x, hr_padded = upscaler.pair_inputs(x, hr)
        if prev is not None:
            for row in rows:
                mids[row].append([])
            for k in range(1, multi):
                with upscaler.arithmetic():
                    out = model.streams(prev[0], x, prev[1], hr_padded, k / multi)
                    out.update(model.fuse(out["h_st"], out["h_ts"], k / multi))
                for row in rows:
                    mids[row][-1].append(upscaler.to_frames(out[MODEL_ROWS[row]], 2 * h, 2 * w)[0])
        keys.append(upscaler.to_frames(hr, 2 * h, 2 * w)[0])
        prev = (x, hr_padded)
    return {row: interleave(keys, mids[row]) for row in rows}


def interleave(keys: list[np.ndarray], mids: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Display order: each key, then the new frames of the pair it starts."""
    out = [keys[0]]
    for new, key in zip(mids, keys[1:], strict=True):
        out += [*new, key]
    return out


@dataclass
class Engine:
    """One computation producing one or more rows: ``run(lr) -> {row: 2N-1 frames}``."""

    name: str
    rows: tuple[str, ...]
    run: Callable[[list[np.ndarray]], dict[str, list[np.ndarray]]]
    device: torch.device


def build_engines(
    methods: tuple[str, ...], model_path=None, device: str = "auto", precision: str = "auto", multi: int = 2
) -> tuple[list[Engine], dict[str, Any]]:
    """Engines for ``methods`` and facts about the model (path, info) when one is used; each
    makes ``multi`` frames per input interval."""
    from ..baselines import bicubic_blend, mci_lanczos

    cpu = torch.device("cpu")
    engines = []
    if "bicubic_blend" in methods:
        engines.append(
            Engine("bicubic_blend", ("bicubic_blend",), lambda lr: {"bicubic_blend": bicubic_blend(lr, multi)}, cpu)
        )
    if "mci_lanczos" in methods:
        engines.append(Engine("mci_lanczos", ("mci_lanczos",), lambda lr: {"mci_lanczos": mci_lanczos(lr, multi)}, cpu))
    rows = tuple(m for m in methods if m in MODEL_ROWS)
    facts: dict[str, Any] = {}
    if rows:
        from ..upscaler import Upscaler, resolve_device
        from ..weights import load_model, resolve_weights

        dev = resolve_device(device)
        model = load_model(model_path)
        if multi != 2 and not getattr(model.temporal, "takes_timestep", False):
            raise BenchError(f"--multi {multi}: this model's temporal network makes only the frame halfway")
        upscaler = Upscaler(model, dev, precision)
        facts = {
            "model": str(resolve_weights(model_path)),
            "model_info": getattr(model, "info", {}),
            "precision": upscaler.precision,
            # the row whose new frames `stvsr upscale` writes with this model
            "upscale_row": "model_st" if model.config.mid_from == "st" else "model_refined",
        }
        engines.append(Engine("model", rows, lambda lr: model_outputs(upscaler, lr, rows, multi), dev))
    return engines, facts


# ------------------------------------------------------------------------------ measurement
