"""Files: their order as people number them (``natural_key``), and writing small ones so that
readers see the old one or the new one, never half of one."""

from __future__ import annotations

import os
import re
from pathlib import Path


def natural_key(name: str | os.PathLike) -> list:
    """Sort key for file names (or relative paths): digit runs compare as numbers and letters
    without case (``shot2.png`` before ``Shot10.png``)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", os.fspath(name))]


def write_atomically(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to a hidden file beside ``path``, sync it, and rename it over ``path``.
    Raises ``OSError``; the hidden file never stays behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
