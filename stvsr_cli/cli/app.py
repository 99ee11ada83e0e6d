"""The Typer application, the option value enums, and the one-line failure every command uses."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer

from .. import __version__

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


# the --precision option of every command that runs the model
PrecisionOption = Annotated[
    Precision, typer.Option(help="Model arithmetic. auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")
]


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


def fail(message: str, code: int = 1) -> None:
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


def main() -> None:
    from ..allocator import keep_freed_memory

    keep_freed_memory()  # before any tensor: each frame then reuses the last one's memory
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
