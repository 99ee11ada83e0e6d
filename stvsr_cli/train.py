"""``stvsr train``: the paper's staged training (§3.4-3.5), checkpoints, exact resume, DDP.

Stages, in order (``stage="all"``):

* ``ms``     pre-train MS alone: L1 of MS(L) against H on all three frames of a triplet;
* ``mt``     pre-train MT alone: L_MT (L̂(t) against L(t)) plus the L1 of the HR pair warped
             with the same (LR-estimated) motion against H(t) (the S->T stream's MT);
* ``fusion`` MS, MT frozen; F and R trained on L_F + L_R;
* ``joint``  everything trained on all losses of eq. 11-17 at equal weights.

A run folder holds ``last.safetensors`` (the model, loadable by ``stvsr upscale --model``),
``last_state.safetensors`` (optimizer tensors, step, RNG; JSON in its metadata),
``log.jsonl`` and, when the run ends, ``model.safetensors``. Sample ``i`` of the data depends
only on ``(seed, i)`` and the learning rate only on the step, so ``resume`` continues exactly.
Under ``torchrun`` each process takes its own slice of every step's samples (DDP, gloo on CPU).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .data import SampleConfig, TripletSampler, degrade, load_sequences
from .errors import StvsrError
from .nets import DualStream, DualStreamConfig
from .weights import load_model, save_model

STAGES = ("ms", "mt", "fusion", "joint")
# share of the total steps each stage gets when all stages run
STAGE_SHARES = {"ms": 0.3, "mt": 0.3, "fusion": 0.1, "joint": 0.3}


@dataclass
class TrainConfig:
    data: list[str]
    out: str
    steps: int = 1000
    stage: str = "all"
    layout: str | None = None
    stills: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    batch: int = 24  # the paper's
    lr: float = 5e-5  # the paper's, for fusion and joint stages
    pretrain_lr: float = 5e-4  # MS/MT pre-training from scratch learns faster with more
    crop: int = 128
    strides: tuple[int, ...] = (1, 2, 3)
    still_fraction: float = 0.15
    degradation: str = "bicubic_aa"  # or "bicubic": the paper's own, no antialias
    seed: int = 0
    val_every: int = 500
    save_every: int = 100
    log_every: int = 10
    init: str | None = None  # start from these weights (fine-tuning)
    model_config: str | None = None  # JSON of DualStreamConfig for a fresh model
    max_frames: int = 300
    val_triplets: int = 4  # per validation sequence


def stage_plan(config: TrainConfig) -> list[tuple[str, int, int]]:
    """``[(stage, first_step, end_step), ...]`` covering ``range(config.steps)``."""
    if config.stage != "all":
        return [(config.stage, 0, config.steps)]
    plan, start = [], 0
    for i, name in enumerate(STAGES):
        end = config.steps if i == len(STAGES) - 1 else start + round(config.steps * STAGE_SHARES[name])
        plan.append((name, start, max(end, start)))
        start = max(end, start)
    return plan


def learning_rate(config: TrainConfig, stage: str, step: int, start: int, end: int) -> float:
    """Linear warm-up over 3% of the stage, then cosine decay to 10% of the peak."""
    peak = config.pretrain_lr if stage in ("ms", "mt") else config.lr
    n = max(end - start, 1)
    t = step - start
    warm = max(1, int(0.03 * n))
    if t < warm:
        return peak * (t + 1) / warm
    progress = (t - warm) / max(n - warm, 1)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def trainable_modules(model: DualStream, stage: str) -> list[nn.Module]:
    return {
        "ms": [model.spatial],
        "mt": [model.temporal],
        "fusion": [model.fusion, model.refine],
        "joint": [model],
    }[stage]


def set_trainable(model: DualStream, stage: str) -> list[nn.Parameter]:
    model.requires_grad_(False)
    for module in trainable_modules(model, stage):
        module.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


class TrainStep(nn.Module):
    """Computes one stage's losses; wrapped in DDP so gradients are averaged across ranks."""

    def __init__(self, model: DualStream):
        super().__init__()
        self.model = model

    def forward(self, stage: str, hr: torch.Tensor, lr: torch.Tensor) -> dict[str, torch.Tensor]:
        """``hr [B, 3 frames, 3, H, W]``, ``lr [B, 3 frames, 3, H/2, W/2]`` -> named L1 losses."""
        return stage_losses(self.model, stage, hr, lr)


def stage_losses(model: DualStream, stage: str, hr: torch.Tensor, lr: torch.Tensor) -> dict[str, torch.Tensor]:
    h0, h1, h2 = hr.unbind(1)
    l0, l1, l2 = lr.unbind(1)
    if stage == "ms":
        return {"ms": F.l1_loss(model.spatial(lr.flatten(0, 1)), hr.flatten(0, 1))}
    if stage == "mt":
        motion = model.temporal.estimate(l0, l2)
        return {
            "mt": F.l1_loss(model.temporal.synthesize(l0, l2, motion), l1),
            "mt_hr": F.l1_loss(model.temporal.synthesize(h0, h2, motion), h1),
        }
    out = model(l0, l2)
    losses = {"fused": F.l1_loss(out["h_fused"], h1), "refined": F.l1_loss(out["h_refined"], h1)}
    if stage == "joint":
        losses.update(
            st=F.l1_loss(out["h_st"], h1),
            ts=F.l1_loss(out["h_ts"], h1),
            ms=F.l1_loss(out["h0"], h0) + F.l1_loss(out["h1"], h2),
            mt=F.l1_loss(out["l_mid"], l1),
        )
    return losses


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


# ---------------------------------------------------------------- validation


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of float [0,1] images after rounding both to 8 bits (as shipped output)."""
    p = (pred.clamp(0, 1) * 255).round()
    t = (target.clamp(0, 1) * 255).round()
    mse = torch.mean((p - t) ** 2).item()
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def validation_triplets(config: TrainConfig) -> list[torch.Tensor]:
    """Fixed full-frame HR triplets ``[3, 3, H, W]`` uint8 (cropped to multiples of 32)."""
    triplets = []
    roots = config.val or []
    for root in roots:
        for seq in load_sequences(Path(root), None, "train", config.max_frames):
            n = len(seq)
            starts = (
                sorted({round(i * (n - 3) / max(config.val_triplets - 1, 1)) for i in range(config.val_triplets)})
                if n > 3
                else [0]
            )
            for s in starts:
                t = torch.from_numpy(__import__("numpy").stack([seq.frame(s + k) for k in range(3)])).permute(
                    0, 3, 1, 2
                )
                h, w = (t.shape[-2] // 32) * 32, (t.shape[-1] // 32) * 32
                triplets.append(t[..., :h, :w].contiguous())
    for root in config.data:  # Vimeo-style data brings its own test list
        root = Path(root)
        if root.is_dir():
            for seq in load_sequences(root, config.layout, "test", config.max_frames)[:64]:
                t = torch.from_numpy(__import__("numpy").stack([seq.frame(k) for k in range(3)])).permute(0, 3, 1, 2)
                h, w = (t.shape[-2] // 32) * 32, (t.shape[-1] // 32) * 32
                triplets.append(t[..., :h, :w].contiguous())
    return triplets


@torch.inference_mode()
def validate(model: DualStream, triplets: list[torch.Tensor], antialias: bool) -> dict[str, float]:
    """Mean PSNR over the triplets: keyframes, both streams, fused, refined and baselines."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    for t in triplets:
        hr = t.float().unsqueeze(0) / 255  # [1, 3, 3, H, W]
        lr = degrade(hr, antialias)
        l0, _, l2 = lr.unbind(1)
        h0, h1, h2 = hr.unbind(1)
        out = model(l0, l2)
        bic = F.interpolate(torch.cat((l0, l2)), scale_factor=2, mode="bicubic", align_corners=False)
        row = {
            "key": 0.5 * (psnr(out["h0"], h0) + psnr(out["h1"], h2)),
            "key_bicubic": 0.5 * (psnr(bic[:1], h0) + psnr(bic[1:], h2)),
            "mid_blend": psnr(bic.mean(0, keepdim=True), h1),
            "mid_st": psnr(out["h_st"], h1),
            "mid_ts": psnr(out["h_ts"], h1),
            "mid_fused": psnr(out["h_fused"], h1),
            "mid_refined": psnr(out["h_refined"], h1),
        }
        for k, v in row.items():
            sums[k] = sums.get(k, 0.0) + v
    model.train(was_training)
    return {k: round(v / max(len(triplets), 1), 3) for k, v in sums.items()}


# ---------------------------------------------------------------- the loop


def _build_model(config: TrainConfig) -> DualStream:
    if config.init:
        return load_model(config.init)
    if config.model_config:
        values = json.loads(Path(config.model_config).read_text())
        return DualStream(DualStreamConfig.from_dict(values))
    return DualStream()


def _build_sampler(config: TrainConfig) -> TripletSampler:
    sequences = []
    for root in config.data:
        path = Path(root)
        if path.is_file():  # a single video file
            from .data import Sequence
            from .video import decode_all_frames

            sequences.append(Sequence(path.name, frames=decode_all_frames(path, config.max_frames)))
        else:
            sequences.extend(load_sequences(path, config.layout, "train", config.max_frames))
    stills = []
    for root in config.stills:
        stills.extend(load_sequences(Path(root), "stills", "train"))
    sample_config = SampleConfig(crop=config.crop, strides=tuple(config.strides))
    return TripletSampler(sequences, stills, sample_config, seed=config.seed, still_fraction=config.still_fraction)


def train(config: TrainConfig, progress: Callable[[dict], None] | None = None, resume: bool = False) -> Path:
    """Run (or resume) training; returns the path of the final ``model.safetensors``."""
    if config.stage not in ("all", *STAGES):
        raise StvsrError(f"unknown stage {config.stage!r}; choose all, {', '.join(STAGES)}")
    if config.steps < 1 or config.batch < 1:
        raise StvsrError("--steps and --batch must be at least 1")
    if config.crop % 32 or config.crop < 32:
        raise StvsrError("--crop must be a multiple of 32 (at least 32)")
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if distributed:
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path, model_path = out / "last_state.safetensors", out / "last.safetensors"
    torch.manual_seed(config.seed)

    start_step, opt_state = 0, None
    if resume and state_path.exists() and model_path.exists():
        meta, opt_state, rng = load_state(state_path)
        start_step = meta["step"]
        saved = meta["config"]
        for key in ("batch", "seed", "crop", "stage", "degradation"):
            if saved.get(key) != asdict(config).get(key) and not (key == "crop" and saved.get(key) is None):
                raise StvsrError(f"--resume: {key} differs from the run in {out} ({saved.get(key)!r} there)")
        model = load_model(model_path)
        torch.set_rng_state(rng)
        opt_stage = meta["stage"]
    elif resume and rank == 0 and not state_path.exists():
        raise StvsrError(f"--resume: no checkpoint in {out}")
    else:
        model = _build_model(config)
        opt_stage = None
    if start_step >= config.steps:
        final = out / "model.safetensors"
        if rank == 0:
            save_model(model, final, info=_info(config, start_step))
        return final

    model.to(device).train()
    sampler = _build_sampler(config)
    val_set = validation_triplets(config) if rank == 0 else []
    antialias = config.degradation != "bicubic"
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    plan = stage_plan(config)
    step = start_step
    t0 = time.time()
    try:
        for stage, first, end in plan:
            if end <= step:
                continue
            params = set_trainable(model, stage)
            optimizer = torch.optim.RAdam(params, lr=config.lr)
            if opt_state is not None and opt_stage == stage:
                optimizer.load_state_dict(opt_state)
            opt_state = None
            runner: nn.Module = TrainStep(model)
            if distributed:
                runner = nn.parallel.DistributedDataParallel(runner)
            while step < end:
                lr_now = learning_rate(config, stage, step, first, end)
                for group in optimizer.param_groups:
                    group["lr"] = lr_now
                base = step * config.batch * world + rank * config.batch
                hr = sampler.batch(list(range(base, base + config.batch))).to(device).float() / 255
                lr_frames = degrade(hr, antialias)
                losses = runner(stage, hr, lr_frames)
                loss = sum(losses.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                record = {
                    "step": step,
                    "stage": stage,
                    "lr": lr_now,
                    "loss": loss.item(),
                    **{k: round(v.item(), 5) for k, v in losses.items()},
                    "elapsed_s": round(time.time() - t0, 1),
                }
                if rank == 0:
                    if step % config.log_every == 0 or step == end:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    if step % config.save_every == 0 or step == end:
                        _checkpoint(model, optimizer, config, stage, step, out)
                    if val_set and (step % config.val_every == 0 or step == end):
                        v = validate(model, val_set, antialias)
                        log.write(json.dumps({"step": step, "stage": stage, "val": v}) + "\n")
                        log.flush()
                        record["val"] = v
                    if progress:
                        progress(record)
        final = out / "model.safetensors"
        if rank == 0:
            save_model(model, final, info=_info(config, step))
        return final
    finally:
        if log:
            log.close()
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


def _info(config: TrainConfig, step: int) -> dict:
    return {"trained_steps": step, "train_config": asdict(config)}


def _checkpoint(model, optimizer, config, stage, step, out: Path) -> None:
    save_model(model, out / "last.safetensors", info=_info(config, step))
    save_state(out / "last_state.safetensors", optimizer, {"step": step, "stage": stage, "config": asdict(config)})
