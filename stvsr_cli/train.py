"""``stvsr train``: the paper's staged training (§3.4-3.5), checkpoints, exact resume, DDP.

Stages, in order (``stage="all"``):

* ``ms``     pre-train MS alone: L1 of MS(L) against H on all three frames of a triplet;
* ``mt``     pre-train MT alone: L_MT (L̂(t) against L(t)) plus the L1 of the HR pair warped
             with the same (LR-estimated) motion against H(t) (the S->T stream's MT);
* ``fusion`` MS, MT frozen; F and R trained on L_F + L_R;
* ``joint``  everything trained on all losses of eq. 11-17 at equal weights.

A run folder holds ``last.safetensors`` (the model, loadable by ``stvsr upscale --model``),
``last_state.safetensors`` (optimizer tensors, step, RNG; JSON in its metadata),
``log.jsonl`` and, when the run ends, ``model.safetensors``. With ``ema`` > 0 it also holds
``last_ema.safetensors``, an exponential moving average of the weights, and that average (not
the last step's weights) becomes ``model.safetensors``. Sample ``i`` of the data depends
only on ``(seed, i)`` and the learning rate only on the step, so ``resume`` continues exactly
(a new run refuses a folder that already holds one: ``resume`` it or choose another).
Under ``torchrun`` each process takes its own slice of every step's samples (DDP, gloo on CPU).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import (
    VIDEO_MEMORY_GIB,
    SampleConfig,
    TripletSampler,
    degrade,
    detect_layout,
    load_sequences,
    video_files,
    video_sequences,
)
from .distributed import Ranks, process_group
from .errors import StvsrError
from .metrics import psnr_from_mse
from .nets import DualStream, DualStreamConfig
from .tiling import pad_to_multiple
from .weights import load_grown, load_model, load_parts, save_model

STAGES = ("ms", "mt", "fusion", "joint")
# share of the total steps each stage gets when all stages run
STAGE_SHARES = {"ms": 0.3, "mt": 0.3, "fusion": 0.1, "joint": 0.3}
MODEL_PARTS = ("spatial", "temporal", "fusion", "refine")  # DualStream's children, for --init-modules


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
    min_scale: float = 1.0  # samples' content at a random scale in [min_scale, 1] (SampleConfig)
    degradation: str = "bicubic_aa"  # or "bicubic": the paper's own, no antialias
    seed: int = 0
    val_every: int = 500
    save_every: int = 100
    log_every: int = 10
    init: str | None = None  # start from these weights (fine-tuning)
    init_modules: tuple[str, ...] | None = None  # take only these parts from `init`, the rest fresh
    model_config: str | None = None  # JSON of DualStreamConfig: a fresh model, or the architecture for `init`
    grow: bool = False  # `model_config` is `init`'s architecture with more residual blocks: they start as identity
    backbones: tuple[str, ...] = ()  # backbone files (import-weights): each replaces the part of its role
    max_frames: int = 300  # per training clip
    video_memory: float = VIDEO_MEMORY_GIB  # decoded training video held in memory, all clips together
    val_triplets: int = 4  # per validation sequence
    workers: int | None = None  # processes preparing batches ahead; None: 0 on CPU, several on a GPU
    ema: float = 0.0  # decay of a moving average of the weights, per step (e.g. 0.999); 0: off


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
        losses = {"mt": F.l1_loss(model.temporal.synthesize(l0, l2, motion), l1)}
        if model.config.st_motion == "hr":  # the S->T stream estimates its own motion at HR
            motion = model.temporal.estimate(h0, h2)
        losses["mt_hr"] = F.l1_loss(model.temporal.synthesize(h0, h2, motion), h1)
        return losses
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
    """PSNR in dB of float [0,1] images after rounding both to 8 bits (as shipped output).

    The same formula and cap as ``metrics.psnr``, which ``stvsr bench`` uses on uint8 frames.
    """
    p = (pred.clamp(0, 1) * 255).round()
    t = (target.clamp(0, 1) * 255).round()
    return psnr_from_mse(torch.mean((p - t) ** 2).item())


def _full_triplet(seq, start: int) -> torch.Tensor:
    """Frames ``start..start+2`` of ``seq`` as ``[3, 3, H, W]`` uint8, cropped to multiples of 32."""
    t = torch.from_numpy(np.stack([seq.frame(start + k) for k in range(3)])).permute(0, 3, 1, 2)
    h, w = (t.shape[-2] // 32) * 32, (t.shape[-1] // 32) * 32
    return t[..., :h, :w].contiguous()


def validation_triplets(config: TrainConfig) -> list[torch.Tensor]:
    """Fixed full-frame HR triplets ``[3, 3, H, W]`` uint8 (cropped to multiples of 32).

    ``config.val`` folders give ``val_triplets`` evenly spaced triplets per sequence (a Vimeo
    folder its test list, else its train list); Vimeo-layout ``config.data`` adds the first 64
    sequences of its own test list. Frames smaller than 32 pixels are skipped.
    """
    triplets = []
    for root in config.val or []:
        root = Path(root)
        sequences = load_sequences(root, None, "test", config.max_frames) or load_sequences(
            root, None, "train", config.max_frames
        )
        for seq in sequences:
            n = len(seq)
            if n < 3:
                continue
            k = config.val_triplets
            starts = sorted({round(i * (n - 3) / max(k - 1, 1)) for i in range(k)}) if n > 3 else [0]
            triplets.extend(_full_triplet(seq, s) for s in starts)
    for root in config.data:  # Vimeo-style data brings its own test list
        root = Path(root)
        if root.is_dir():
            for seq in load_sequences(root, config.layout, "test", config.max_frames)[:64]:
                triplets.append(_full_triplet(seq, 0))
    return [t for t in triplets if t.shape[-1] and t.shape[-2]]


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
        # padded to the model's size multiple, every output (LR or HR) cropped back
        h, w = l0.shape[-2:]
        padded = pad_to_multiple(torch.cat((l0, l2)), model.size_multiple)
        out = {}
        for name, value in model(*padded.chunk(2)).items():
            s = value.shape[-1] // padded.shape[-1]
            out[name] = value[..., : s * h, : s * w]
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


def _load_ema(config: TrainConfig, model: DualStream, out: Path, step: int) -> WeightEMA | None:
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


# ---------------------------------------------------------------- the loop


def _build_model(config: TrainConfig) -> DualStream:
    """``--init`` weights, in the architecture of ``--model-config`` when both are given."""
    arch = _read_model_config(Path(config.model_config)) if config.model_config else None
    if config.backbones:
        return _with_backbones(config, arch)
    if not config.init:
        return _fresh_model(arch or DualStreamConfig(), config.model_config)
    if not config.init_modules and not config.grow:
        return load_model(config.init, config=arch)
    source = load_model(config.init)
    fresh = _fresh_model(arch or source.config, config.model_config)
    if config.grow:
        return load_grown(fresh, source, config.init)
    return load_parts(fresh, source, tuple(config.init_modules), config.init)


def _with_backbones(config: TrainConfig, arch: DualStreamConfig | None) -> DualStream:
    """A model whose MS and/or MT are ``--backbone`` files (their network, config and tensors);
    the other parts come from ``--init`` (``--init-modules``, or every part no backbone
    replaces) or start fresh."""
    from .import_weights import load_backbone, read_backbone_metadata

    metas = {}
    for path in config.backbones:
        meta = read_backbone_metadata(path)
        if meta["role"] in metas:
            raise StvsrError(f"two --backbone files for the {meta['role']} network: {metas[meta['role']][0]}, {path}")
        metas[meta["role"]] = (path, meta)
    source = load_model(config.init) if config.init else None
    base = arch or (source.config if source is not None else DualStreamConfig())
    changes = {}
    for role, (_, meta) in metas.items():
        changes[role] = meta["architecture"]
        changes[f"{role}_config"] = json.loads(meta["config"])
    model = _fresh_model(replace(base, **changes), config.model_config)
    if source is not None:
        parts = config.init_modules or tuple(p for p in MODEL_PARTS if p not in metas)
        load_parts(model, source, tuple(parts), config.init)
    for role, (path, _) in metas.items():
        getattr(model, role).load_state_dict(load_backbone(path).state_dict(), strict=True)
    return model


def _fresh_model(arch: DualStreamConfig, model_config: str | None) -> DualStream:
    try:
        return DualStream(arch)
    except (ValueError, TypeError, KeyError) as e:  # e.g. an unknown network name
        raise StvsrError(f"--model-config {model_config} is not a usable model config: {e}") from None


def _read_model_config(path: Path) -> DualStreamConfig:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(values, dict):
            raise ValueError("expected a JSON object (DualStreamConfig.to_json())")
        return DualStreamConfig.from_dict(values)
    except OSError as e:
        raise StvsrError(f"cannot read --model-config {path}: {e.strerror or e}") from None
    except (ValueError, TypeError, KeyError) as e:  # JSONDecodeError is a ValueError
        raise StvsrError(f"--model-config {path} is not a usable model config: {e}") from None


def _build_sampler(config: TrainConfig) -> TripletSampler:
    # the clips of every --data entry share one memory budget; sequences keep the --data order
    entries: list[tuple[Path, str] | list[Path]] = []  # (folder, its layout) or video files
    for root in config.data:
        path = Path(root)
        if path.is_file():  # a single video file
            entries.append([path])
            continue
        layout = config.layout or detect_layout(path)
        if layout == "videos":
            entries.append(video_files(path))
        else:
            entries.append((path, layout))
    files = [f for entry in entries if isinstance(entry, list) for f in entry]
    decoded = iter(video_sequences(files, config.max_frames, config.video_memory))
    sequences = []
    for entry in entries:
        if isinstance(entry, list):
            sequences.extend(seq for _ in entry for seq in next(decoded))
        else:
            sequences.extend(load_sequences(*entry, "train", config.max_frames))
    stills = []
    for root in config.stills:
        stills.extend(load_sequences(Path(root), "stills", "train"))
    sample_config = SampleConfig(crop=config.crop, strides=tuple(config.strides), min_scale=config.min_scale)
    return TripletSampler(sequences, stills, sample_config, seed=config.seed, still_fraction=config.still_fraction)


class StepBatches(torch.utils.data.Dataset):
    """Item ``step``: this process's uint8 HR batch ``[B, 3 frames, 3, crop, crop]`` for that
    step. It depends only on ``(seed, step, rank)``, so worker processes change nothing but speed."""

    def __init__(self, sampler: TripletSampler, batch: int, rank: int, world: int, steps: int):
        self.sampler, self.batch, self.rank, self.world, self.steps = sampler, batch, rank, world, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> torch.Tensor:
        # every process takes its own slice of the step's samples: [rank * batch, +batch)
        base = step * self.batch * self.world + self.rank * self.batch
        return self.sampler.batch(list(range(base, base + self.batch)))


def default_workers(device: torch.device) -> int:
    """Batch-preparing processes: none on a CPU (its cores are busy training), up to 8 beside a GPU."""
    if device.type == "cpu":
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def step_batches(config: TrainConfig, sampler: TripletSampler, first: int, device: torch.device, rank: int, world: int):
    """An iterator over the uint8 batches of steps ``first .. config.steps - 1``, prepared by
    ``config.workers`` processes ahead of the training loop (in the loop itself with 0)."""
    workers = default_workers(device) if config.workers is None else config.workers
    dataset = StepBatches(sampler, config.batch, rank, world, config.steps)
    loader = torch.utils.data.DataLoader(
        dataset,
        sampler=range(first, config.steps),
        batch_size=None,  # an item is already a whole batch
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
    )
    return iter(loader)


# what a resumed run must share with the stopped one: these decide which samples every step
# sees and how the steps are split into stages (steps may grow: a finished run can go on)
RESUME_KEYS = (
    "batch",
    "seed",
    "crop",
    "stage",
    "degradation",
    "strides",
    "still_fraction",
    "min_scale",
    "video_memory",
)


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
    if config.degradation not in ("bicubic_aa", "bicubic"):
        raise StvsrError(f"--degradation must be bicubic_aa or bicubic, not {config.degradation!r}")
    if config.init_modules is not None:
        if not config.init:
            raise StvsrError("--init-modules needs --init (the weights to take those parts from)")
        unknown = sorted(set(config.init_modules) - set(MODEL_PARTS))
        if unknown or not config.init_modules:
            raise StvsrError(f"--init-modules takes parts among {', '.join(MODEL_PARTS)}, not {unknown or 'nothing'}")
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


def _check_resume(config: TrainConfig, meta: dict, model: DualStream, out: Path) -> None:
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
        _check_resume(config, meta, model, out)
        start_step, opt_stage = meta["step"], meta["stage"]
        torch.set_rng_state(rng)
    else:
        model = _build_model(config)
    ema = _load_ema(config, model, out, start_step) if rank == 0 else None
    if start_step >= config.steps:
        if rank == 0:
            save_model((ema.model if ema else model), final, info=_info(config, start_step))
        return final

    sampler = _build_sampler(config)  # before anything is written: bad data leaves no run folder
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
            params = set_trainable(model, stage)
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
                hr = next(batches).to(device, non_blocking=True).float() / 255
                lr_frames = degrade(hr, antialias)
                losses = runner(stage, hr, lr_frames)
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
                    _checkpoint(model, ema, optimizer, config, stage, step, out)
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
            save_model((ema.model if ema else model), final, info=_info(config, step))
        return final
    finally:
        del batches  # stops its worker processes
        if log:
            log.close()


def _info(config: TrainConfig, step: int) -> dict:
    return {"trained_steps": step, "train_config": asdict(config)}


def _checkpoint(model, ema: WeightEMA | None, optimizer, config, stage, step, out: Path) -> None:
    """The average first and the optimizer state last: resume checks all three agree on ``step``."""
    if ema:
        save_model(ema.model, out / "last_ema.safetensors", info=_info(config, step))
    save_model(model, out / "last.safetensors", info=_info(config, step))
    save_state(out / "last_state.safetensors", optimizer, {"step": step, "stage": stage, "config": asdict(config)})
