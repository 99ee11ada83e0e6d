"""``train``: checks, resuming, the distributed setup and the loop over stages and steps."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ..data import (
    degrade,
)
from ..distributed import Ranks, process_group
from ..errors import StvsrError
from ..names import DEGRADATIONS
from ..nets import DualStream
from ..weights import load_model, save_model
from .building import RESUME_KEYS, build_model, build_sampler, step_batches
from .checkpoints import checkpoint, load_ema, load_state, run_info
from .config import MODEL_PARTS, STAGES, TrainConfig
from .stages import TrainStep, learning_rate, lr_size_multiple, set_trainable, stage_plan
from .validation import validate, validation_triplets


def check_config(config: TrainConfig) -> None:
    """Raise ``StvsrError`` for options no run can use."""
    if config.stage not in ("all", *STAGES):
        raise StvsrError(f"unknown stage {config.stage!r}; choose all, {', '.join(STAGES)}")
    if config.steps < 1 or config.batch < 1:
        raise StvsrError("--steps and --batch must be at least 1")
    if config.crop % 32 or config.crop < 32:
        raise StvsrError("--crop must be a multiple of 32 (at least 32)")
    if not config.strides or any(int(s) != s or s < 1 for s in config.strides):
        raise StvsrError(f"--strides must be positive whole numbers, not {list(config.strides)}")
    if not config.spans or any(int(n) != n or n < 2 for n in config.spans):
        raise StvsrError(f"--spans must be whole numbers of at least 2, not {list(config.spans)}")
    if config.video_memory <= 0:
        raise StvsrError("--video-memory must be more than 0 GiB")
    if config.workers is not None and config.workers < 0:
        raise StvsrError("--workers must be 0 or more")
    if not 0.0 <= config.still_fraction <= 1.0:
        raise StvsrError("the still fraction must be between 0 and 1")
    if not 0.1 <= config.min_scale <= 1.0:
        raise StvsrError(f"--min-scale must be between 0.1 and 1 (1: no resampling), not {config.min_scale}")
    if not 0.0 <= config.ema < 1.0:
        raise StvsrError(f"--ema must be 0 (off) or a decay between 0 and 1 such as 0.999, not {config.ema}")
    if config.degradation not in DEGRADATIONS:
        raise StvsrError(f"--degradation must be bicubic_aa or bicubic, not {config.degradation!r}")
    if config.init_modules is not None:
        if not config.init:
            raise StvsrError("--init-modules needs --init (the weights to take those parts from)")
        unknown = sorted(set(config.init_modules) - set(MODEL_PARTS))
        if unknown or not config.init_modules:
            raise StvsrError(f"--init-modules takes parts among {', '.join(MODEL_PARTS)}, not {unknown or 'nothing'}")
    unknown = sorted(set(config.freeze) - set(MODEL_PARTS))
    if unknown:
        raise StvsrError(f"--freeze takes parts among {', '.join(MODEL_PARTS)}, not {', '.join(unknown)}")
    if config.backbones and config.grow:
        raise StvsrError("--backbone and --grow cannot be combined")
    if config.grow and (not config.init or not config.model_config or config.init_modules):
        raise StvsrError(
            "--grow needs --init (the weights) and --model-config (their architecture with more residual "
            "blocks), and no --init-modules"
        )
    for key in ("save_every", "val_every", "log_every"):
        if getattr(config, key) < 1:
            raise StvsrError(f"--{key.replace('_', '-')} must be at least 1")


def check_resume(config: TrainConfig, meta: dict, model: DualStream, out: Path) -> None:
    saved = meta["config"]
    current = json.loads(json.dumps(asdict(config)))  # tuples -> lists, as in the checkpoint
    for key in RESUME_KEYS:
        if key in saved and saved[key] != current[key]:
            flag = "--" + key.replace("_", "-")
            raise StvsrError(f"--resume: {flag} differs from the run in {out} ({saved[key]!r} there)")
    trained = getattr(model, "info", {}).get("trained_steps")
    if trained != meta["step"]:  # stopped between writing the two files
        raise StvsrError(
            f"--resume: the checkpoint in {out} is inconsistent (model at step {trained}, "
            f"optimizer at step {meta['step']}); start a new run"
        )


def train(config: TrainConfig, progress: Callable[[dict], None] | None = None, resume: bool = False) -> Path:
    """Run (or resume) training; returns the path of the final ``model.safetensors``.

    Raises ``StvsrError`` for bad options, missing data, a missing checkpoint on ``resume``, or
    an existing run in ``config.out`` without ``resume``. Under ``torchrun`` (``WORLD_SIZE`` > 1)
    every process calls this; rank 0 alone writes files and calls ``progress``.
    """
    check_config(config)
    out = Path(config.out)
    state_path, model_path = out / "last_state.safetensors", out / "last.safetensors"
    if resume and not (state_path.is_file() and model_path.is_file()):
        raise StvsrError(f"--resume: no checkpoint in {out} (last.safetensors + last_state.safetensors)")
    if not resume and state_path.exists():
        raise StvsrError(f"{out} already holds a training run: add --resume to continue it, or choose another --out")
    ranks = Ranks.from_env()
    if ranks is None:
        return _train(config, progress, resume, torch.device("cuda" if torch.cuda.is_available() else "cpu"), 0, 1)
    device = ranks.device()
    with process_group(device):
        return _train(config, progress, resume, device, ranks.rank, ranks.world)


def _train(
    config: TrainConfig,
    progress: Callable[[dict], None] | None,
    resume: bool,
    device: torch.device,
    rank: int,
    world: int,
) -> Path:
    out = Path(config.out)
    state_path, model_path = out / "last_state.safetensors", out / "last.safetensors"
    final = out / "model.safetensors"
    torch.manual_seed(config.seed)
    start_step, opt_state, opt_stage = 0, None, None
    if resume:
        meta, opt_state, rng = load_state(state_path)
        model = load_model(model_path)
        check_resume(config, meta, model, out)
        start_step, opt_stage = meta["step"], meta["stage"]
        torch.set_rng_state(rng)
    else:
        model = build_model(config)
    lr_multiple = lr_size_multiple(model, [stage for stage, _, _ in stage_plan(config)])
    if config.crop % (model.scale * lr_multiple):  # HR crops make LR crops of half the size
        raise StvsrError(
            f"--crop {config.crop} does not fit this model: its crops must be multiples of "
            f"{model.scale * lr_multiple} (LR sizes multiples of {lr_multiple})"
        )
    if config.spans != (2,) and not model.temporal.takes_timestep:
        raise StvsrError(
            f"--spans {','.join(map(str, config.spans))} trains frames at t other than 1/2, which the model's "
            f"temporal network ({model.config.temporal}) does not make; use --spans 2 or a temporal net that "
            "takes t (rife)"
        )
    ema = load_ema(config, model, out, start_step) if rank == 0 else None
    if start_step >= config.steps:
        if rank == 0:
            save_model((ema.model if ema else model), final, info=run_info(config, start_step))
        return final

    sampler = build_sampler(config)  # before anything is written: bad data leaves no run folder
    val_set = validation_triplets(config) if rank == 0 else []
    out.mkdir(parents=True, exist_ok=True)
    model.to(device).train()
    if ema:
        ema.model.to(device)
    antialias = config.degradation != "bicubic"
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    step = start_step
    batches = step_batches(config, sampler, start_step, device, rank, world)
    t0 = time.time()
    try:
        for stage, first, end in stage_plan(config):
            if end <= step:
                continue
            params = set_trainable(model, stage, config.freeze)
            optimizer = torch.optim.RAdam(params, lr=config.lr)
            if opt_state is not None and opt_stage == stage:
                optimizer.load_state_dict(opt_state)
            opt_state = None
            runner: nn.Module = TrainStep(model)
            if world > 1:
                runner = nn.parallel.DistributedDataParallel(runner)
            while step < end:
                lr_now = learning_rate(config, stage, step, first, end)
                for group in optimizer.param_groups:
                    group["lr"] = lr_now
                hr, t = next(batches)
                hr = hr.to(device, non_blocking=True).float() / 255
                lr_frames = degrade(hr, antialias)
                # halfway only: None (0.5 as a number), which midpoint-only temporal nets take
                losses = runner(stage, hr, lr_frames, None if config.spans == (2,) else t.to(device))
                loss = sum(losses.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if rank != 0:
                    continue
                if ema:
                    ema.update(model)
                record = {
                    "step": step,
                    "stage": stage,
                    "lr": lr_now,
                    "loss": loss.item(),
                    **{k: round(v.item(), 5) for k, v in losses.items()},
                    "elapsed_s": round(time.time() - t0, 1),
                }
                if step % config.log_every == 0 or step == end:
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                if step % config.save_every == 0 or step == end:
                    checkpoint(model, ema, optimizer, config, stage, step, out)
                if val_set and (step % config.val_every == 0 or step == end):
                    val = {"val": validate(model, val_set, antialias)}
                    if ema:
                        val["val_ema"] = validate(ema.model, val_set, antialias)
                    log.write(json.dumps({"step": step, "stage": stage, **val}) + "\n")
                    log.flush()
                    record.update(val)
                if progress:
                    progress(record)
            del runner  # a stage's DDP wrapper (and its gradient hooks) ends with the stage
        if rank == 0:
            save_model((ema.model if ema else model), final, info=run_info(config, step))
        return final
    finally:
        del batches  # stops its worker processes
        if log:
            log.close()
