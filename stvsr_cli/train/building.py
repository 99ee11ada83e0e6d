"""What a run starts from: the model (fresh, from a file, with backbones) and its data (sampler,
per-step batches, worker processes)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import torch

from ..data import (
    SampleConfig,
    TripletSampler,
    detect_layout,
    load_sequences,
    video_files,
    video_sequences,
)
from ..errors import StvsrError
from ..nets import DualStream, DualStreamConfig
from ..weights import load_grown, load_model, load_parts
from .config import MODEL_PARTS, TrainConfig

# ---------------------------------------------------------------- the loop


def build_model(config: TrainConfig) -> DualStream:
    """``--init`` weights, in the architecture of ``--model-config`` when both are given."""
    arch = read_model_config(Path(config.model_config)) if config.model_config else None
    if config.backbones:
        return with_backbones(config, arch)
    if not config.init:
        return fresh_model(arch or DualStreamConfig(), config.model_config)
    if not config.init_modules and not config.grow:
        return load_model(config.init, config=arch)
    source = load_model(config.init)
    fresh = fresh_model(arch or source.config, config.model_config)
    if config.grow:
        return load_grown(fresh, source, config.init)
    return load_parts(fresh, source, tuple(config.init_modules), config.init)


def with_backbones(config: TrainConfig, arch: DualStreamConfig | None) -> DualStream:
    """A model whose MS and/or MT are ``--backbone`` files (their network, config and tensors);
    the other parts come from ``--init`` (``--init-modules``, or every part no backbone
    replaces) or start fresh."""
    from ..import_weights import load_backbone, read_backbone_metadata

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
    model = fresh_model(replace(base, **changes), config.model_config)
    if source is not None:
        parts = config.init_modules or tuple(p for p in MODEL_PARTS if p not in metas)
        load_parts(model, source, tuple(parts), config.init)
    for role, (path, _) in metas.items():
        getattr(model, role).load_state_dict(load_backbone(path).state_dict(), strict=True)
    return model


def fresh_model(arch: DualStreamConfig, model_config: str | None) -> DualStream:
    try:
        return DualStream(arch)
    except (ValueError, TypeError, KeyError) as e:  # e.g. an unknown network name
        raise StvsrError(f"--model-config {model_config} is not a usable model config: {e}") from None


def read_model_config(path: Path) -> DualStreamConfig:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(values, dict):
            raise ValueError("expected a JSON object (DualStreamConfig.to_json())")
        return DualStreamConfig.from_dict(values)
    except OSError as e:
        raise StvsrError(f"cannot read --model-config {path}: {e.strerror or e}") from None
    except (ValueError, TypeError, KeyError) as e:  # JSONDecodeError is a ValueError
        raise StvsrError(f"--model-config {path} is not a usable model config: {e}") from None


def build_sampler(config: TrainConfig) -> TripletSampler:
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
    sample_config = SampleConfig(
        crop=config.crop,
        strides=tuple(config.strides),
        spans=tuple(config.spans),
        min_scale=config.min_scale,
        cap_to_source=config.min_scale_cap,
    )
    return TripletSampler(sequences, stills, sample_config, seed=config.seed, still_fraction=config.still_fraction)


class StepBatches(torch.utils.data.Dataset):
    """Item ``step``: this process's uint8 HR batch ``[B, 3 frames, 3, crop, crop]`` for that
    step and the times ``t`` ``[B]`` of its middle frames. It depends only on ``(seed, step,
    rank)``, so worker processes change nothing but speed."""

    def __init__(self, sampler: TripletSampler, batch: int, rank: int, world: int, steps: int):
        self.sampler, self.batch, self.rank, self.world, self.steps = sampler, batch, rank, world, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
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
    "spans",
    "still_fraction",
    "min_scale",
    "min_scale_cap",
    "video_memory",
    "freeze",
)
