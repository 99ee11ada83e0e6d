"""``stvsr bench`` and its table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..bench.protocol import BenchConfig
from ..errors import StvsrError
from .app import Device, Precision, PrecisionOption, app, fail

_CFG = BenchConfig(dataset="", data="")  # the defaults below are its own


@app.command()
def bench(
    dataset: Annotated[str, typer.Option(help="vimeo90k, ucf101, middlebury, fisr or videos.")],
    data: Annotated[Path, typer.Option(help="The dataset's folder, in its native layout.")],
    methods: Annotated[
        str,
        typer.Option(
            help="Comma list of bicubic_blend, mci_lanczos, model_st, model_ts, model_fused, model_refined, or all."
        ),
    ] = "all",  # parse_methods: BenchConfig.methods, every method
    model: Annotated[
        Path | None, typer.Option(help="Weights (.safetensors) or a bundled model by name for the model rows.")
    ] = None,
    device: Annotated[Device, typer.Option(help="Where the model runs (baselines run on the CPU).")] = Device.auto,
    precision: PrecisionOption = Precision.auto,
    degradation: Annotated[
        str, typer.Option(help="bicubic_aa (antialiased, our protocol) or bicubic (the paper's).")
    ] = _CFG.degradation,
    metric: Annotated[str, typer.Option(help="rgb, or y to add BT.601 luma PSNR.")] = _CFG.metric,
    limit: Annotated[int, typer.Option(min=0, help="Score only the first N sequences (0: all).")] = _CFG.limit,
    max_frames: Annotated[
        int, typer.Option(min=0, help="videos: use the first N frames of each clip (0: all).")
    ] = _CFG.max_frames,
    multi: Annotated[
        int,
        typer.Option(
            min=2,
            help="videos: inputs N frames apart, every frame between them scored (per position k/N too); "
            "the upscale option --multi N's frames.",
        ),
    ] = _CFG.multi,
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
    from ..bench import parse_methods, run_bench, write_csv, write_json, write_markdown
    from ..progress import ProgressReporter

    for out in (json_out, csv_out, markdown_out):
        if out is not None and (out.is_dir() or not out.parent.is_dir()):
            fail(f"cannot write {out}: {'it is a folder' if out.is_dir() else 'its folder does not exist'}")
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
            multi=multi,
        )
        result = run_bench(config, progress=reporter)
    except StvsrError as e:
        reporter.close()
        fail(str(e), e.exit_code)
    reporter.close()
    try:
        if json_out is not None:
            write_json(result, json_out)
        if csv_out is not None:
            write_csv(result, csv_out)
        if markdown_out is not None:
            write_markdown(result, markdown_out)
    except OSError as e:
        fail(f"cannot write results: {e.strerror or e}")
    print_bench(result)


def print_bench(result) -> None:
    """The protocol, any warnings, and the summary as a Rich table (stdout)."""
    from rich.console import Console
    from rich.table import Table

    from ..bench import format_value, summary_columns

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
    cols = summary_columns(p.get("metric") == "y", p.get("multi", 2))
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
