"""Checkpoints (optimizer state, step, RNG) and the moving average of the weights (EMA)."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from ..errors import StvsrError
from ..nets import DualStream
from ..weights import load_model, save_model
from .config import TrainConfig

# ---------------------------------------------------------------- checkpoints


def save_state(path: Path, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    """Optimizer tensors + JSON metadata (step, stage, RNG, config) as safetensors."""
    from safetensors.torch import save_file

    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"opt.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    metadata = {
        "meta": json.dumps(meta),
        "param_groups": json.dumps(sd["param_groups"]),
        "scalars": json.dumps(scalars),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def load_state(path: Path) -> tuple[dict, dict, torch.Tensor]:
    """-> (meta, optimizer state_dict, torch RNG state)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        md = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for key, value in json.loads(md["scalars"]).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer_sd = {"state": state, "param_groups": json.loads(md["param_groups"])}
    return json.loads(md["meta"]), optimizer_sd, tensors["rng.torch"]


# ---------------------------------------------------------------- weight averaging


class WeightEMA:
    """An exponential moving average of a model's weights (Polyak averaging).

    After every optimizer step ``avg = decay * avg + (1 - decay) * w`` for each parameter;
    buffers are copied. With decay d the average spans roughly the last 1 / (1 - d) steps, which
    smooths out the noise of the final steps of a run. It starts from ``model`` as it is now.
    """

    def __init__(self, model: DualStream, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: DualStream) -> None:
        for avg, w in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(w, 1.0 - self.decay)
        for avg, w in zip(self.model.buffers(), model.buffers(), strict=True):
            avg.copy_(w)


def load_ema(config: TrainConfig, model: DualStream, out: Path, step: int) -> WeightEMA | None:
    """The run's average on ``resume``: its checkpoint, or a new one from ``model`` if it had none."""
    if not config.ema:
        return None
    ema = WeightEMA(model, config.ema)
    path = out / "last_ema.safetensors"
    if path.is_file():
        saved = load_model(path)
        if saved.info.get("trained_steps") != step:
            raise StvsrError(
                f"--resume: the checkpoint in {out} is inconsistent (average at step "
                f"{saved.info.get('trained_steps')}, model at step {step}); start a new run"
            )
        ema.model.load_state_dict(saved.state_dict())
    return ema


def run_info(config: TrainConfig, step: int) -> dict:
    return {"trained_steps": step, "train_config": asdict(config)}


def checkpoint(model, ema: WeightEMA | None, optimizer, config, stage, step, out: Path) -> None:
    """The average first and the optimizer state last: resume checks all three agree on ``step``."""
    if ema:
        save_model(ema.model, out / "last_ema.safetensors", info=run_info(config, step))
    save_model(model, out / "last.safetensors", info=run_info(config, step))
    save_state(out / "last_state.safetensors", optimizer, {"step": step, "stage": stage, "config": asdict(config)})
