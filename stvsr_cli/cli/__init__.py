"""The ``stvsr`` command line: a thin Typer layer over the library.

Each command validates its options, calls one library function, and turns ``StvsrError``
into a red one-line message with exit code 1 (130 when interrupted). Heavy imports (torch,
av) happen inside the commands so that ``--help`` stays instant.
"""

from . import bench, tools, train, upscale  # noqa: F401 (each registers its command on the app)
from .app import app, main

__all__ = ["app", "main"]
