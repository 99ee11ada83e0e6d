"""Package attributes imported on first use, so that a package's light parts (configs, names)
load without its heavy ones (torch): ``__getattr__ = lazy_attributes(__name__, {"name": "module"})``."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that takes ``name`` from ``package.where[name]``."""

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(import_module(f".{where[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
