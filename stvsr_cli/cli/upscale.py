"""``stvsr upscale``: a file, an image sequence or a folder; its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import StvsrError
from ..options import UpscaleOptions as _OPT
from ..video import EncodeSettings as _ENC
from .app import CompileMode, Device, MidFrom, Mode, Precision, PrecisionOption, app, fail


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
    precision: PrecisionOption = Precision.auto,
    batch: Annotated[int, typer.Option(min=1, max=64, help="Frame pairs per model call.")] = _OPT.batch,
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
    ] = _OPT.multi,
    input_fps: Annotated[
        str, typer.Option(help="Frame rate of an image-sequence input (25, 23.976, 24000/1001).")
    ] = str(_OPT.input_fps),
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
    crf: Annotated[int, typer.Option(min=0, max=63, help="Constant rate factor (x264/x265/vpx/av1).")] = _ENC.crf,
    preset: Annotated[str, typer.Option(help="Encoder preset (x264/x265).")] = _ENC.preset,
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
    ] = _OPT.tile,
    scene_threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Scene-cut sensitivity; no blending across a cut. 0 turns it off.")
    ] = _OPT.scene_threshold,
    frames: Annotated[
        int, typer.Option(min=0, help="Only the first N input frames (a quick preview); 0: all.")
    ] = _OPT.max_frames,
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
    ] = _OPT.segment_frames,
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
    from ..options import UpscaleOptions, parse_size
    from ..pipeline import upscale_video
    from ..schedule import parse_rate
    from ..video import EncodeSettings

    try:
        exact_size = parse_size(size) if size is not None else None
        rate = parse_rate(fps) if fps is not None else None
        picture_rate = parse_rate(input_fps, "--input-fps")
    except StvsrError as e:
        fail(str(e), e.exit_code)

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
    from ..progress import ProgressReporter

    if json_report is not None and not json_report.parent.is_dir():
        fail(f"--json: folder does not exist: {json_report.parent}", 2)
    from ..batch import is_folder_job
    from ..distributed import Ranks

    ranks = Ranks.from_env()  # under torchrun: rank 0 reports, the others work quietly
    if ranks is not None and not ranks.main:
        quiet, json_report = True, None
    if is_folder_job(input, output):
        upscale_folder_command(input, output, options, quiet, json_report, ranks)
        return
    reporter = ProgressReporter(enabled=not quiet)
    try:
        summary = upscale_video(input, output, options, progress=reporter, ranks=ranks)
    except StvsrError as e:
        reporter.close()
        if json_report is not None:
            failed = {"ok": False, "input": str(input), "output": str(output), "error": str(e)}
            write_report(json_report, {**failed, "exit_code": e.exit_code})
        fail(str(e), e.exit_code)
    reporter.close()
    for warning in summary.warnings:
        typer.secho(f"warning: {warning}", fg="yellow", err=True)
    if json_report is not None:
        write_report(json_report, summary.to_dict())
    if not quiet:
        typer.echo(summary.describe())


def upscale_folder_command(src: Path, dst: Path, options, quiet: bool, json_report: Path | None, ranks=None) -> None:
    """``stvsr upscale IN_DIR OUT_DIR``: every video, a table at the end, exit 1 if any failed."""
    from rich.console import Console
    from rich.table import Table

    from ..batch import BatchStopped, upscale_folder
    from ..progress import ProgressReporter

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
        fail(str(e), e.exit_code)
    if ranks is not None and not ranks.main:  # rank 0 reports the whole folder
        raise typer.Exit(1 if result.failed else 0)
    for f in result.files:
        for warning in f.summary.warnings if f.summary is not None else []:
            err.print(f"[yellow]warning:[/] {f.input.name}: {warning}")
    if json_report is not None:
        write_report(json_report, result.to_dict())
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
        fail(str(stopped), stopped.exit_code)
    if result.failed:
        fail(f"{len(result.failed)} of {len(result.files)} file(s) failed", 1)


def write_report(path: Path, report: dict) -> None:
    """A JSON report, written atomically; a report that cannot be written is an error (exit 1)."""
    import json

    from ..files import write_atomically

    try:
        write_atomically(path, (json.dumps(report, indent=2) + "\n").encode())
    except OSError as e:
        fail(f"cannot write the --json report {path}: {e.strerror or e}")
